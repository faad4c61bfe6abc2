"""The moment-search report: one self-contained HTML page (inline CSS, images as data: URIs, nothing external).

For each moment (`hero.eval.search.Moment`): its rank, video, span and score; a timeline of the whole video with
the span highlighted (the ``.hl`` element, colour `HIGHLIGHT`); a few frame thumbnails from the span decoded with
PyAV, or, when the video file is missing or unreadable, a feature timeline (the L2 norm of each clip's features as
a bar strip, the span's clips in a lighter tint of it); and the subtitles overlapping the span. All text is
escaped; the file is written atomically.
"""

from __future__ import annotations

import base64
import html
import logging
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from hero.corpus.manifest import Manifest
from hero.features.store import FeatureStore
from hero.storage.atomic import write_text_atomic

log = logging.getLogger(__name__)

HIGHLIGHT = (255, 122, 0)
"""RGB of the highlighted span on each timeline (used nowhere else on the page); a screenshot test looks for it."""
_HL = "#{:02x}{:02x}{:02x}".format(*HIGHLIGHT)

CSS = f"""
body {{ font-family: sans-serif; margin: 24px; color: #1d1d1f; background: #fff; }}
h1 {{ font-size: 22px; margin: 0 0 8px; }}
.query {{ font-size: 20px; margin: 0 0 4px; }} .query q {{ font-weight: bold; }}
.meta {{ color: #666; font-size: 13px; margin: 0 0 16px; }}
.moment {{ border: 1px solid #ddd; border-radius: 6px; padding: 10px 14px; margin: 0 0 12px; }}
.moment h2 {{ font-size: 16px; margin: 0 0 8px; font-weight: normal; }}
.rank {{ font-weight: bold; }} .video {{ font-family: monospace; }} .score {{ color: #666; }}
.timeline {{ position: relative; height: 14px; background: #e3e6ea; border-radius: 3px; }}
.hl {{ position: absolute; top: 0; bottom: 0; min-width: 4px; background: {_HL}; border-radius: 3px; }}
.axis {{ display: flex; justify-content: space-between; color: #888; font-size: 11px; margin: 2px 0 8px; }}
.thumbs {{ display: flex; gap: 8px; }} .thumbs figure {{ margin: 0; font-size: 11px; color: #666; }}
.thumbs img {{ display: block; height: 90px; border-radius: 3px; }}
.strip {{ display: flex; align-items: flex-end; gap: 1px; height: 48px; background: #f5f5f7; }}
.strip i {{ flex: 1; background: #9aa3ad; }} .strip i.on {{ background: #ffb46b; }}
.subs {{ margin: 8px 0 0; padding-left: 18px; font-size: 14px; }} .subs .t {{ color: #888; font-size: 12px; }}
.none {{ color: #888; font-size: 13px; }}
"""


def png_bytes(rgb: np.ndarray) -> bytes:
    """[H, W, 3] uint8 -> a PNG file's bytes (8-bit RGB, no filter), with no imaging library."""
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + np.ascontiguousarray(row).tobytes() for row in rgb.astype(np.uint8))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))


def span_thumbnails(path: str | Path, start: float, end: float, n: int = 3, width: int = 160) -> list[np.ndarray]:
    """``n`` frames evenly spread over [start, end) seconds of the video at ``path``, as [h, width, 3] uint8.

    Seeks to ``start`` and decodes forward; a video ending early repeats its last frame.
    Raises:
        FileNotFoundError: no file at ``path``. ValueError: PyAV cannot decode it or it has no frame.
    """
    import av

    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: video file not found")
    times = [start + (i + 0.5) * (end - start) / n for i in range(n)]
    picked, last = [], None
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            if start > 0 and stream.time_base:
                container.seek(int(start / stream.time_base), stream=stream, backward=True)
            rate = float(stream.average_rate or 25)
            for k, frame in enumerate(container.decode(stream)):
                t = frame.time if frame.time is not None else k / rate
                while len(picked) < n and t + 0.5 / rate >= times[len(picked)]:
                    picked.append(frame)
                last = frame
                if len(picked) == n:
                    break
            if last is None:
                raise ValueError("no decodable frame")
            picked += [picked[-1] if picked else last] * (n - len(picked))
            h = max(2, round(width * last.height / max(last.width, 1) / 2) * 2)
            return [f.reformat(width=width, height=h, format="rgb24").to_ndarray() for f in picked]
    except (av.FFmpegError, OSError) as err:
        raise ValueError(f"{path}: cannot decode ({type(err).__name__}: {err})") from None


def _fmt(t: float) -> str:
    return f"{t:.1f}"


def _thumbnails_html(path: str, start: float, end: float, n: int) -> str:
    frames = span_thumbnails(path, start, end, n)
    times = [start + (i + 0.5) * (end - start) / n for i in range(n)]
    figs = [f'<figure><img alt="frame at {_fmt(t)} s" src="data:image/png;base64,'
            f'{base64.b64encode(png_bytes(f)).decode()}"><figcaption>{_fmt(t)} s</figcaption></figure>'
            for f, t in zip(frames, times)]
    return f'<div class="thumbs">{"".join(figs)}</div>'


def _feature_strip_html(feats: np.ndarray, clip_len: float, start: float, end: float) -> str:
    """One bar per clip, height = the clip's feature norm relative to the largest; clips in the span highlighted."""
    norms = np.linalg.norm(np.asarray(feats, dtype=np.float32), axis=1)
    norms = norms / max(float(norms.max()), 1e-12)
    bars = []
    for c, v in enumerate(norms.tolist()):
        on = c * clip_len < end and (c + 1) * clip_len > start
        bars.append(f'<i{" class=on" if on else ""} style="height:{max(v, 0.04) * 100:.1f}%" '
                    f'title="clip {c}: norm {v:.2f}"></i>')
    return f'<div class="strip" title="feature norm per clip">{"".join(bars)}</div>'


def _preview_html(m, manifest: Manifest, store: FeatureStore | None, n: int) -> str:
    """Frame thumbnails, else the feature strip, else a note saying why there is no preview."""
    why = "thumbnails are off"
    if n > 0:
        try:
            return _thumbnails_html(manifest.video_path(m.video_id), m.start, m.end, n)
        except (FileNotFoundError, ValueError) as err:
            why = str(err)
            log.warning("%s: no frames (%s); showing the feature timeline", m.video_id, err)
    if store is not None and m.video_id in store:
        return _feature_strip_html(store[m.video_id], manifest.clip_len, m.start, m.end)
    return f'<p class="none">no preview: {html.escape(why)}</p>'


def _moment_html(m, manifest: Manifest, store: FeatureStore | None, n: int) -> str:
    e = html.escape
    dur = max(m.duration, 1e-9)
    left, width = 100 * m.start / dur, 100 * max(m.end - m.start, 0.0) / dur
    subs = "".join(f'<li><span class="t">{_fmt(s)}–{_fmt(t)} s</span> {e(text)}</li>' for text, s, t in m.subtitles)
    subs = f'<ul class="subs">{subs}</ul>' if subs else '<p class="none">no subtitle overlaps this span</p>'
    return (f'<section class="moment" id="m{m.rank}" data-rank="{m.rank}" data-video="{e(m.video_id)}">'
            f'<h2><span class="rank">#{m.rank}</span> <span class="video">{e(m.video_id)}</span> '
            f'<span class="span">{_fmt(m.start)}–{_fmt(m.end)} s</span> '
            f'<span class="score">score {m.score:.4g}</span>'
            f'</h2><div class="timeline" title="0–{_fmt(m.duration)} s"><div class="hl" data-start="{m.start:.3f}" '
            f'data-end="{m.end:.3f}" style="left:{left:.2f}%;width:{width:.2f}%"></div></div>'
            f'<div class="axis"><span>0 s</span><span>{_fmt(m.duration)} s</span></div>'
            f'{_preview_html(m, manifest, store, n)}{subs}</section>')


def render_search_report(query: str, moments: Sequence, manifest: Manifest, store: FeatureStore | None = None, *,
                         thumbnails: int = 3, title: str = "Moment search") -> str:
    """The report page as a string (see the module docstring); ``thumbnails`` frames per moment (0: none)."""
    e = html.escape
    body = "".join(_moment_html(m, manifest, store, thumbnails) for m in moments)
    body = body or '<p class="none">no moment found</p>'
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{e(title)}: {e(query)}</title>'
            f'<style>{CSS}</style></head><body><h1>{e(title)}</h1>'
            f'<p class="query">Query: <q id="query">{e(query)}</q></p>'
            f'<p class="meta">{len(moments)} moments over the corpus at {e(str(manifest.root))}</p>'
            f'<main id="moments">{body}</main></body></html>\n')


def write_search_report(path: str | Path, query: str, moments: Sequence, manifest: Manifest,
                        store: FeatureStore | None = None, **kwargs) -> Path:
    """Render the report and write it to ``path`` atomically; returns the path."""
    path = Path(path)
    page = render_search_report(query, moments, manifest, store, **kwargs)
    write_text_atomic(path, page)
    log.info("wrote the search report %s (%d moments)", path, len(moments))
    return path
