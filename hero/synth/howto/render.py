"""Render a tutorial to frames: a workspace seen from above, its materials, and a gloved arm bringing each step's
tool in from the bottom edge, working the material in the action's own motion, and taking it away again.

A step's effect builds up while the tool works and stays afterwards (``MaterialState``), so each step is visible
both as motion (the tool) and as a lasting change (the material).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from hero.synth.howto.script import Step, Tutorial
from hero.synth.howto.world import ARM, GLOVE, MATERIALS, PAINTS, PENCIL, PROJECTS, SPICE, TOOL_LOOK
from hero.synth.render import fill_rect, resize_nearest

W, H = 160, 120
_MAT = {m.name: m for m in MATERIALS}
_PROJECT = {p.name: p for p in PROJECTS}
_YY, _XX = np.mgrid[:H, :W].astype(np.float32)
_SPECKS = (np.mgrid[:H, :W] * np.array([13, 7])[:, None, None]).sum(0) % 11 == 0
ENTER, LEAVE = 0.15, 0.85
"""Fractions of a step spent bringing the tool in and taking it away; the effect builds up in between."""


@dataclass
class MaterialState:
    """How far each action has gone on one material, 0..1 (``paint``: the colour name of a paint step)."""

    chop: float = 0.0
    peel: float = 0.0
    season: float = 0.0
    roll: float = 0.0
    saw: float = 0.0
    sand: float = 0.0
    drill: float = 0.0
    paint: float = 0.0
    trim: float = 0.0
    measure: float = 0.0
    colour: str | None = None


def workspace(project: str) -> np.ndarray:
    """[120, 160, 3] uint8: the project's work surface (a board on a counter, a bench, a cutting mat)."""
    p = _PROJECT[project]
    img = np.empty((H, W, 3), np.uint8)
    if project == "cooking":
        img[:] = p.pattern
        fill_rect(img, 6, 4, W - 6, H - 4, p.surface)
    elif project == "woodworking":
        img[:] = p.surface
        img[::20] = p.pattern
        img[1::20] = p.pattern
    else:
        img[:] = p.surface
        img[::10] = p.pattern
        img[:, ::10] = p.pattern
    return img


def _progress(step: Step, t: float) -> float:
    """How far the step's effect has gone at time ``t`` (0 before the tool arrives, 1 once it leaves)."""
    p = (t - step.start) / max(step.end - step.start, 1e-6)
    return min(max((p - ENTER) / (LEAVE - ENTER), 0.0), 1.0)


def _extent(name: str, st: MaterialState) -> tuple[float, float]:
    """Current (w, h): rolling spreads the material, trimming takes its edges off."""
    w, h = _MAT[name].size
    grow = 1 + 0.5 * st.roll
    return w * grow - 6 * st.trim, h * grow - 4 * st.trim


def _draw_material(img: np.ndarray, name: str, cx: float, cy: float, st: MaterialState, surface: np.ndarray) -> None:
    m = _MAT[name]
    w, h = _extent(name, st)
    x0, y0 = cx - w / 2, cy - h / 2
    win = (slice(max(int(y0) - 1, 0), min(int(y0 + h) + 2, H)), slice(max(int(x0) - 1, 0), min(int(x0 + w) + 2, W)))
    img, surface, xx, yy = img[win], surface[win], _XX[win], _YY[win]  # views: only the material's box is touched
    if m.shape == "round":
        mask = ((xx + 0.5 - cx) / (w / 2)) ** 2 + ((yy + 0.5 - cy) / (h / 2)) ** 2 <= 1
    else:
        mask = (xx >= round(x0)) & (xx < round(x0 + w)) & (yy >= round(y0)) & (yy < round(y0 + h))
    xf = (xx + 0.5 - x0) / w
    base = np.array(m.color, np.float32) * (1 - 0.8 * st.sand) + np.array(m.inner, np.float32) * 0.8 * st.sand
    img[mask] = base.round().astype(np.uint8)
    img[mask & (xf < st.peel)] = m.inner
    if st.colour is not None:
        img[mask & (xf < st.paint)] = PAINTS[st.colour]
    if st.season > 0:  # specks where the shaker has passed
        img[mask & (xf < st.season) & _SPECKS[win]] = SPICE
    if st.measure > 0:  # pencil ticks along the top edge, left to right
        ticks = mask & (yy < y0 + max(0.4 * h, 4)) & (np.abs(xf * 6 - np.round(xf * 6)) * w / 6 < 1.0)
        img[ticks & (xf < st.measure) & (xf > 0.05) & (xf < 0.95)] = PENCIL
    for k in range(int(st.drill * 3 + 1e-6)):  # holes show the surface through them
        hole = mask & ((xx + 0.5 - (x0 + w * (k + 1) / 4)) ** 2 + (yy + 0.5 - cy) ** 2 <= 5)
        img[hole] = surface[hole]
    if st.chop > 0:  # cuts appear where the knife has passed
        for k in range(1, 5):
            if k / 5 < st.chop:
                cut = mask & (np.abs(xf - k / 5) * w < 1.0)
                img[cut] = surface[cut]
    if st.saw > 0:  # the kerf widens as the saw goes through
        kerf = mask & (np.abs(xf - 0.5) * w < 0.5 + 2.0 * st.saw) & (yy < y0 + h * min(1.0, 1.5 * st.saw))
        img[kerf] = surface[kerf]


def _work_point(step: Step, q: float, t: float, cx: float, cy: float, w: float, h: float) -> tuple[float, float]:
    """Where the tool works on the material at effect progress ``q``: each action moves in its own pattern."""
    left, top, tau = cx - w / 2, cy - h / 2, 2 * math.pi
    a = step.action
    if a == "chop":
        return left + q * w, cy - 3 * abs(math.sin(tau * 6 * q))
    if a == "peel":
        return left + q * w + 3 * math.sin(tau * 8 * q), cy
    if a == "season":
        return left + q * w, cy - 0.5 * h - 4 + 3 * math.sin(tau * 10 * q)
    if a == "roll":
        return cx, cy + 0.4 * h * math.sin(tau * 3 * q)
    if a == "saw":
        return cx, cy + 6 * math.sin(tau * 5 * q)
    if a == "sand":
        return cx + 0.3 * w * math.cos(tau * 4 * q), cy + 0.3 * h * math.sin(tau * 4 * q)
    if a == "drill":
        k = min(int(q * 3), 2)
        return left + w * (k + 1) / 4 + math.sin(t * 40), cy
    if a == "paint":
        return left + q * w, cy + 0.35 * h * math.sin(tau * 6 * q)
    if a == "trim":
        return left + q * w, top
    return cx + 2 * math.sin(tau * 2 * q), top - 3  # measure: the ruler lies along the top edge


_GRIP = {"knife": 18, "peeler": 12, "shaker": 8, "roller": 0, "saw": 22, "sandpaper": 0, "drill": 14, "brush": 12,
         "scissors": 12, "ruler": 0}
"""How far below the work point the glove holds each tool."""


def _draw_tool(img: np.ndarray, step: Step, wx: float, wy: float) -> None:
    """The step's tool, top-down, with its working part at (wx, wy)."""
    main, grip = TOOL_LOOK[step.tool]
    tool = step.tool
    if tool == "knife":
        fill_rect(img, wx - 2, wy - 8, wx + 2, wy + 8, main)
        fill_rect(img, wx - 3, wy + 8, wx + 3, wy + 20, grip)
    elif tool == "peeler":
        fill_rect(img, wx - 4, wy - 4, wx + 4, wy + 4, main)
        fill_rect(img, wx - 1, wy + 4, wx + 2, wy + 16, grip)
    elif tool == "shaker":
        fill_rect(img, wx - 5, wy - 5, wx + 5, wy + 7, main)
        fill_rect(img, wx - 4, wy - 8, wx + 4, wy - 5, grip)
    elif tool == "roller":
        fill_rect(img, wx - 17, wy - 4, wx + 17, wy + 4, main)
        fill_rect(img, wx - 22, wy - 2, wx - 17, wy + 2, grip)
        fill_rect(img, wx + 17, wy - 2, wx + 22, wy + 2, grip)
    elif tool == "saw":
        fill_rect(img, wx - 3, wy - 10, wx + 3, wy + 16, main)
        fill_rect(img, wx - 5, wy + 16, wx + 5, wy + 26, grip)
    elif tool == "sandpaper":
        fill_rect(img, wx - 9, wy - 9, wx + 9, wy + 9, main)
    elif tool == "drill":
        fill_rect(img, wx - 1, wy - 3, wx + 1, wy + 5, main)
        fill_rect(img, wx - 6, wy + 5, wx + 6, wy + 21, grip)
    elif tool == "brush":
        fill_rect(img, wx - 4, wy - 4, wx + 4, wy + 4, PAINTS[step.paint] if step.paint else main)
        fill_rect(img, wx - 1, wy + 4, wx + 2, wy + 20, grip)
    elif tool == "scissors":
        fill_rect(img, wx - 1, wy - 6, wx + 2, wy + 8, main)
        fill_rect(img, wx - 6, wy + 8, wx, wy + 14, grip)
        fill_rect(img, wx + 1, wy + 8, wx + 7, wy + 14, grip)
    else:  # ruler, with its scale
        fill_rect(img, wx - 35, wy - 4, wx + 35, wy + 3, main)
        for x in range(-33, 34, 6):
            fill_rect(img, wx + x, wy - 4, wx + x + 1, wy - 1, PENCIL)


def _draw_arm(img: np.ndarray, gx: float, gy: float) -> None:
    """A gloved arm reaching in from the bottom edge to (gx, gy)."""
    fill_rect(img, gx - 3, gy + 4, gx + 4, H, ARM)
    fill_rect(img, gx - 5, gy - 4, gx + 6, gy + 5, GLOVE)


def frames(tut: Tutorial, fps: int, size: tuple[int, int] = (W, H)) -> Iterator[np.ndarray]:
    """Yield the tutorial's frames, [H, W, 3] uint8, at ``fps``."""
    bg = workspace(tut.project)
    for i in range(round(tut.duration * fps)):
        yield resize_nearest(frame_at(tut, (i + 0.5) / fps, bg), size)


def frame_at(tut: Tutorial, t: float, bg: np.ndarray | None = None) -> np.ndarray:
    """The 160x120 frame at time ``t`` (s); ``bg``: the project's `workspace`, when the caller has it."""
    bg = workspace(tut.project) if bg is None else bg
    img = bg.copy()
    state = {m: MaterialState() for m in tut.layout}
    active: Step | None = None
    for s in sorted(tut.steps, key=lambda s: s.start):
        if s.start > t:
            break
        st = state[s.obj]
        setattr(st, s.action, _progress(s, t))
        if s.action == "paint":
            st.colour = s.paint
        if t < s.end:
            active = s
    for name, (cx, cy) in tut.layout.items():
        _draw_material(img, name, cx, cy, state[name], bg)
    if active is not None:
        _draw_active(img, active, t, tut.layout[active.obj], state[active.obj])
    return img


def _draw_active(img: np.ndarray, step: Step, t: float, centre: list[float], st: MaterialState) -> None:
    """The step's tool in the glove: sliding in from below, working, sliding out."""
    cx, cy = centre
    w, h = _extent(step.obj, st)
    p = (t - step.start) / max(step.end - step.start, 1e-6)
    wx, wy = _work_point(step, _progress(step, t), t, cx, cy, w, h)
    if p < ENTER:  # coming in from below the bottom edge
        wy += (1 - p / ENTER) * (H + 30 - wy)
    elif p > LEAVE:
        wy += (p - LEAVE) / (1 - LEAVE) * (H + 30 - wy)
    if _GRIP[step.tool]:  # held by its handle: the tool lies over the glove
        _draw_arm(img, wx, wy + _GRIP[step.tool])
        _draw_tool(img, step, wx, wy)
    else:  # pressed flat (sandpaper, roller, ruler): the glove lies on top
        _draw_tool(img, step, wx, wy)
        _draw_arm(img, wx, wy)
