"""Render an episode to frames (numpy, 160x120 by default) and encode them as H.264 MP4 with PyAV."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

from hero.synth.script import Episode, Event
from hero.synth.world import CHARACTERS, PLACES, THINGS

_CHAR = {c.name: c for c in CHARACTERS}
_THING = {t.name: t for t in THINGS}
_PLACE = {p.name: p for p in PLACES}
SKIN, HAIR = (230, 190, 150), (50, 35, 25)
BASE_W, BASE_H, FLOOR_Y = 160, 120, 104


def fill_rect(img: np.ndarray, x0: float, y0: float, x1: float, y1: float, color) -> None:
    """Paint the pixels of ``[x0, x1) x [y0, y1)`` (rounded, clipped to the image): the renderers' one primitive."""
    h, w = img.shape[:2]
    a, b = max(int(round(x0)), 0), min(int(round(x1)), w)
    c, d = max(int(round(y0)), 0), min(int(round(y1)), h)
    if a < b and c < d:
        img[c:d, a:b] = color


def background(place: str) -> np.ndarray:
    """[120, 160, 3] uint8: wall, floor and the place's furniture."""
    p = _PLACE[place]
    img = np.empty((BASE_H, BASE_W, 3), np.uint8)
    img[:78] = p.wall
    img[78:] = p.floor
    for x0, y0, x1, y1, col in p.props:
        fill_rect(img, x0, y0, x1, y1, col)
    return img


def _draw_thing(img: np.ndarray, name: str, cx: float, bottom: float) -> None:
    t = _THING[name]
    if t.shape == "tall":
        fill_rect(img, cx - 3, bottom - 12, cx + 3, bottom, t.color)
    elif t.shape == "flat":
        fill_rect(img, cx - 6, bottom - 5, cx + 6, bottom, t.color)
    elif t.shape == "disc":
        yy, xx = np.ogrid[:img.shape[0], :img.shape[1]]
        img[(yy - (bottom - 5)) ** 2 + (xx - cx) ** 2 <= 25] = t.color
    elif t.shape == "cup":
        fill_rect(img, cx - 4, bottom - 9, cx + 4, bottom, t.color)
        fill_rect(img, cx + 4, bottom - 7, cx + 6, bottom - 3, t.color)
    else:
        fill_rect(img, cx - 5, bottom - 10, cx + 5, bottom, t.color)
        fill_rect(img, cx - 5, bottom - 10, cx + 5, bottom - 8, (60, 60, 60))


def _draw_person(img: np.ndarray, name: str, x: float, lift: float, bend: float, arm: float | None) -> None:
    """A person centred at x, feet on the floor minus ``lift``; ``bend`` in [0, 1]; ``arm``: wave phase or None."""
    c = _CHAR[name]
    feet = FLOOR_Y - lift
    legs, torso = 14 * (1 - 0.4 * bend), 16 * (1 - 0.3 * bend)
    fill_rect(img, x - 6, feet - legs, x - 1, feet, c.pants)
    fill_rect(img, x + 1, feet - legs, x + 6, feet, c.pants)
    top = feet - legs - torso
    fill_rect(img, x - 7, top, x + 7, feet - legs, c.shirt)
    fill_rect(img, x - 5, top - 10, x + 5, top, SKIN)
    fill_rect(img, x - 5, top - 12, x + 5, top - 8, HAIR)
    if arm is not None:
        dx = 3 * math.sin(arm)
        fill_rect(img, x + 7 + dx, top - 12, x + 10 + dx, top + 2, c.shirt)
    else:
        fill_rect(img, x + 7, top + 1, x + 10, top + 14, c.shirt)


def _phase(e: Event, t: float) -> float:
    return min(max((t - e.start) / max(e.end - e.start, 1e-6), 0.0), 1.0)


def frames(ep: Episode, fps: int, size: tuple[int, int] = (160, 120)) -> Iterator[np.ndarray]:
    """Yield the episode's frames, [H, W, 3] uint8, at ``fps``."""
    bg = background(ep.place)
    n = int(round(ep.duration * fps))
    x = dict(ep.start_x)
    floor = dict(ep.floor)
    held: dict[str, str] = {}
    events = sorted(ep.events, key=lambda e: e.start)
    k = 0
    for i in range(n):
        t = (i + 0.5) / fps
        while k < len(events) and events[k].end <= t:  # commit finished events
            e = events[k]
            x[e.actor] = e.x1
            if e.kind == "pick_up":
                floor.pop(e.obj, None)
                held[e.actor] = e.obj
            elif e.kind == "put_down":
                held.pop(e.actor, None)
                floor[e.obj] = min(max(e.x1 + 9, 16), 144)
            elif e.kind == "give":
                held[e.target] = held.pop(e.actor, e.obj)
            k += 1
        cur = events[k] if k < len(events) and events[k].start <= t else None
        img = bg.copy()
        pose = {c: (x[c], 0.0, 0.0, None) for c in ep.cast}
        carried: dict[str, tuple[float, float]] = {}
        if cur is not None:
            p, a = _phase(cur, t), cur.actor
            if cur.kind in ("enter", "leave", "walk"):
                pose[a] = (cur.x0 + (cur.x1 - cur.x0) * p, 2 * abs(math.sin(p * 12)), 0.0, None)
            elif cur.kind == "pick_up":
                walk = min(p / 0.6, 1.0)
                bend = math.sin(math.pi * max(p - 0.6, 0) / 0.4)
                pose[a] = (cur.x0 + (cur.x1 - cur.x0) * walk, 0.0, bend, None)
                if p >= 0.8:
                    floor.pop(cur.obj, None)
                    held[a] = cur.obj
            elif cur.kind == "put_down":
                pose[a] = (cur.x0, 0.0, math.sin(math.pi * p), None)
                if p >= 0.5 and cur.obj in held.values():
                    held.pop(a, None)
                    floor[cur.obj] = min(max(cur.x1 + 9, 16), 144)
            elif cur.kind == "give":
                walk = min(p / 0.5, 1.0)
                pose[a] = (cur.x0 + (cur.x1 - cur.x0) * walk, 0.0, 0.0, None)
                if p >= 0.5:
                    q = min((p - 0.5) / 0.4, 1.0)
                    held.pop(a, None)
                    sx, ex = cur.x1 + 8, x[cur.target] + 8
                    carried[cur.obj] = (sx + (ex - sx) * q, FLOOR_Y - 18)
                    if q >= 1.0:
                        held[cur.target] = cur.obj
                        carried.clear()
            elif cur.kind == "wave":
                pose[a] = (x[a], 0.0, 0.0, t * 2 * math.pi * 2.5)
            elif cur.kind == "jump":
                pose[a] = (x[a], 14 * abs(math.sin(math.pi * 2 * p)), 0.0, None)
        for obj, ox in floor.items():
            _draw_thing(img, obj, ox, FLOOR_Y)
        for c in ep.cast:
            cx, lift, bend, arm = pose[c]
            _draw_person(img, c, cx, lift, bend, arm)
            if c in held and held[c] not in carried:
                _draw_thing(img, held[c], cx + 10, FLOOR_Y - lift - 14 * (1 - 0.4 * bend))
        for obj, (ox, oy) in carried.items():
            _draw_thing(img, obj, ox, oy)
        yield resize_nearest(img, size)


def resize_nearest(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``img`` drawn at the 160x120 base size, resampled (nearest pixel) to ``size`` = (width, height)."""
    if size == (img.shape[1], img.shape[0]):
        return img
    ys = np.arange(size[1]) * img.shape[0] // size[1]
    xs = np.arange(size[0]) * img.shape[1] // size[0]
    return img[ys][:, xs]


X264_PARAMS = "cpu-independent=1:threads=1:lookahead-threads=1"
"""Pinned x264 settings that make the bytes a function of the frames alone. ``cpu-independent`` makes x264 use its
portable C code for the macroblock-tree rate control (``mbtree_propagate_cost`` / ``_list``); its SIMD versions
round differently per CPU family, and on AVX-512 machines they made the bytes change from one encode to the next
within one process (x264's other kernels are bit-exact with their C versions). One thread: the frame order of
threaded lookahead would be another source of difference, and the thread count is written into the stream's
settings header."""


def rgb_to_yuv420p(img: np.ndarray) -> np.ndarray:
    """[H, W, 3] uint8 RGB (H, W even) -> the [H * 3 / 2, W] uint8 yuv420p planes (Y, then U, then V) in BT.601
    limited range, as decoders assume for a stream that names no colour space.

    Integer arithmetic in numpy, so the encoder's input is the same on every CPU (FFmpeg's own converter picks SIMD
    code by CPU and by buffer alignment). Chroma is taken from the 2x2 block's mean RGB.
    """
    h, w = img.shape[:2]
    if h % 2 or w % 2:
        raise ValueError(f"rgb_to_yuv420p: height and width must be even, got {w}x{h}")
    rgb = img.astype(np.int32)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = ((66 * r + 129 * g + 25 * b + 128) >> 8) + 16
    q = rgb.reshape(h // 2, 2, w // 2, 2, 3).sum(axis=(1, 3))  # 4 x the block's mean
    r, g, b = q[..., 0], q[..., 1], q[..., 2]
    u = ((-38 * r - 74 * g + 112 * b + 512) >> 10) + 128
    v = ((112 * r - 94 * g - 18 * b + 512) >> 10) + 128
    return np.concatenate([y.ravel(), u.ravel(), v.ravel()]).astype(np.uint8).reshape(h * 3 // 2, w)


def encode_mp4(images: Iterator[np.ndarray], path: str, fps: int, crf: int = 23, *, x264_asm: str = "auto") -> int:
    """Encode ``images`` ([H, W, 3] uint8 RGB) as H.264 (yuv420p) MP4; returns the frame count.

    The bytes depend on the frames, ``fps`` and ``crf`` only (with the pinned PyAV and its bundled x264): not on the
    CPU, the process or what else is in memory (`X264_PARAMS`, `rgb_to_yuv420p`). ``x264_asm``: the CPU feature set
    x264 may use ("auto": what the CPU has; "0": its portable C code, as on a CPU without SIMD); the output is the
    same for every value, and the tests check that. The file is written beside ``path`` and renamed into place.
    """
    import av

    from hero.storage.atomic import atomic_path

    n = 0
    with atomic_path(path) as tmp, av.open(str(tmp), "w", format="mp4") as container:
        stream = None
        for img in images:
            if stream is None:
                stream = container.add_stream("libx264", rate=fps)
                stream.height, stream.width = img.shape[:2]
                stream.pix_fmt = "yuv420p"
                stream.options = {"preset": "veryfast", "crf": str(crf), "x264-params": f"{X264_PARAMS}:asm={x264_asm}"}
                stream.codec_context.thread_count = 1
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb_to_yuv420p(img), format="yuv420p")):
                container.mux(packet)
            n += 1
        if stream is not None:
            for packet in stream.encode():
                container.mux(packet)
    return n
