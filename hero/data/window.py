"""An example's clip: the part of its video around the annotated span ``ts`` (TVQA's "with timestamps" setting).

A TVQA question or a VIOLIN statement is about one moment of a longer video: VIOLIN's statements are written for
a clip and TVQA ships the span ``ts`` each question is about (the TVQA leaderboard has a "w/ ts" track). On our
synthetic episodes the same person waves at 0 s and someone else at 10 s, so "Bob waves." is true of one window
and false of another: over the whole video the label is undecidable. With ``window`` set, a task sees only the
frames that overlap ``[ts[0] - window, ts[1] + window]`` and the subtitles aligned to them, and ``ts`` is shifted
to the clip's start (span targets stay on the frames they were on). Training and prediction crop the same way,
because the setting lives in the task's config.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from hero.data.channels import empty_subtitles


def window_frames(ts: Sequence[float], num_frames: int, clip_len: float, window: float) -> tuple[int, int]:
    """Frames [st, ed) that overlap ``[ts[0] - window, ts[1] + window]`` (frame f covers
    ``[f * clip_len, (f + 1) * clip_len)``); at least one frame, always inside the video."""
    if window < 0:
        raise ValueError(f"window: must be >= 0 seconds, got {window}")
    t0, t1 = float(ts[0]) - window, float(ts[1]) + window
    st = min(max(math.floor(t0 / clip_len), 0), num_frames - 1)
    ed = min(max(math.ceil(t1 / clip_len), st + 1), num_frames)
    return st, ed


def crop_example(example: Mapping[str, Any], ts: Sequence[float], clip_len: float, window: float,
                 sep: int) -> tuple[dict[str, Any], list[float]]:
    """(the video example cut to ``ts`` +- ``window`` seconds, ``ts`` relative to the clip's first frame).

    Subtitles keep their frames inside the clip (renumbered) and are dropped when none is left; a clip left with
    no subtitle at all becomes a video-only one (separator-only subtitles over groups of frames, as a video
    without subtitles is). The clip's ``video_id`` names the video and its frames, so two clips of one video are
    two videos to the collates (which encode each distinct video once).
    """
    feats = example["frame_feats"]
    st, ed = window_frames(ts, int(feats.shape[0]), clip_len, window)
    sub_ids, sub_frames = [], []
    for ids, frames in zip(example["sub_ids"], example["sub_frames"]):
        inside = [f - st for f in frames if st <= f < ed]
        if inside:
            sub_ids.append(ids)
            sub_frames.append(inside)
    if not sub_ids:
        sub_ids, sub_frames = empty_subtitles(ed - st, sep)
    clip = {**example, "video_id": f"{example['video_id']}[{st}:{ed}]", "frame_feats": feats[st:ed],
            "sub_ids": sub_ids, "sub_frames": sub_frames}
    if "region_feats" in example:
        clip.update(region_feats=example["region_feats"][st:ed], region_boxes=example["region_boxes"][st:ed])
    offset = st * clip_len
    return clip, [round(float(ts[0]) - offset, 3), round(float(ts[1]) - offset, 3)]
