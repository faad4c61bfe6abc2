"""Subtitle -> clip alignment exactly as HERO's preprocessing does it (docs/hero-fidelity.md d.3).

Times are in clip units (t / clip_len). Subtitle s covers clips [floor(start), ceil(end)); a subtitle starting at or
after the video end is dropped; the last subtitle, if longer than 16 s (its end clipped to the video), keeps only its
first 11 clips; each clip covered by at least one subtitle goes to the ONE with the largest temporal IoU against
[c, c + 1] (the earliest on ties); clips covered by none are "unmatched". A subtitle may end with no clips.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Alignment:
    """sub_clips[i]: ascending clip indices of kept subtitle i; kept[j]: whether input subtitle j was kept."""

    num_clips: int
    sub_clips: tuple[tuple[int, ...], ...]
    unmatched: tuple[int, ...]
    kept: tuple[bool, ...]


def count_clips(duration: float, clip_len: float) -> int:
    """Clips of ``clip_len`` seconds in a video of ``duration`` seconds; a partial last clip counts (>= 1)."""
    return max(1, math.ceil(round(duration / clip_len, 6)))


def _iou(a0: float, a1: float, b0: float, b1: float) -> float:
    inter = min(a1, b1) - max(a0, b0)
    if inter <= 0:
        return 0.0
    return inter / (max(a1, b1) - min(a0, b0))


def align_subtitles(
    spans: Sequence[tuple[float, float]],
    num_clips: int,
    clip_len: float = 1.5,
    *,
    long_last_sub_s: float = 16.0,
    long_last_sub_clips: int = 11,
) -> Alignment:
    """Align subtitle ``spans`` ([start, end] seconds, sorted by start) to the ``num_clips`` clips of a video.

    HERO quirk kept: a clip covered only by zero-IoU subtitles (e.g. an instantaneous one) still goes to the
    first covering subtitle (the original assigns it to subtitle 0, a bug we do not copy).
    """
    video_end = clip_len * num_clips
    covered: list[list[int] | None] = []
    for j, (start, end) in enumerate(spans):
        if start >= video_end:
            covered.append(None)
            continue
        clips = list(range(math.floor(start / clip_len), math.ceil(end / clip_len)))
        if j == len(spans) - 1 and min(end, video_end) - start > long_last_sub_s:
            clips = clips[:long_last_sub_clips]
        covered.append([c for c in clips if 0 <= c < num_clips])
    owner = [-1] * num_clips
    best = [-1.0] * num_clips
    for j, clips in enumerate(covered):
        if not clips:
            continue
        s0, s1 = spans[j][0] / clip_len, spans[j][1] / clip_len
        for c in clips:
            iou = _iou(c, c + 1, s0, s1)
            if iou > best[c]:
                best[c], owner[c] = iou, j
    kept_idx = [j for j, c in enumerate(covered) if c is not None]
    new_index = {j: i for i, j in enumerate(kept_idx)}
    sub_clips: list[list[int]] = [[] for _ in kept_idx]
    for c, j in enumerate(owner):
        if j >= 0:
            sub_clips[new_index[j]].append(c)
    return Alignment(
        num_clips=num_clips,
        sub_clips=tuple(tuple(c) for c in sub_clips),
        unmatched=tuple(c for c, j in enumerate(owner) if j < 0),
        kept=tuple(c is not None for c in covered),
    )
