"""Which input channels a model sees: frames and subtitles (``both``), frames only (``video``), or subtitles only.

docs/hero-fidelity.md a.5: a video without subtitles (DiDeMo / MSR-VTT "video only") still goes through the cross-modal
level, as groups of 5 consecutive frames, each with an empty subtitle that holds only the separator token
(HERO's ``scripts/prepro_sub.py --allow_empty_sub``). The VALUE benchmark ablates the channels of the same data:

- ``video``: every video becomes such a subtitle-less video. Both the text and the subtitle timing go, so the frame
  grouping cannot leak where someone speaks, and a video with subtitles looks exactly like one without.
- ``subtitles``: subtitles and their frame alignment stay, every frame feature is zero. The frames stay on the
  timeline (same count, same mask), so span and frame-level heads still have positions to point at.

Applied to video examples (the mapping `hero.data.collate` documents) where a dataset yields them, so training
and prediction see the same input for the same setting.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

CHANNELS: tuple[str, ...] = ("both", "video", "subtitles")
VIDEO_ONLY_GROUP = 5
"""Frames per empty subtitle of a video-only video (HERO's prepro_sub.py)."""


def check_channels(channels: str) -> str:
    """``channels`` itself, or a ValueError naming the allowed values."""
    if channels not in CHANNELS:
        raise ValueError(f"channels: {channels!r} is not one of {list(CHANNELS)}")
    return channels


def empty_subtitles(num_frames: int, sep: int,
                    group: int = VIDEO_ONLY_GROUP) -> tuple[list[list[int]], list[list[int]]]:
    """(sub_ids, sub_frames) of a video-only video: one separator-only subtitle per ``group`` consecutive frames."""
    starts = range(0, num_frames, group)
    return [[sep] for _ in starts], [list(range(s, min(s + group, num_frames))) for s in starts]


def apply_channels(example: Mapping[str, Any], channels: str, sep: int) -> Mapping[str, Any]:
    """The video example as the model sees it with ``channels`` (the example itself for ``both``)."""
    if check_channels(channels) == "both":
        return example
    out = dict(example)
    feats = torch.as_tensor(example["frame_feats"], dtype=torch.float32)
    if channels == "video":
        out["sub_ids"], out["sub_frames"] = empty_subtitles(feats.shape[0], sep)
    else:
        out["frame_feats"] = torch.zeros_like(feats)
        if "region_feats" in example:   # the regions are frame content too
            out["region_feats"] = torch.zeros_like(torch.as_tensor(example["region_feats"], dtype=torch.float32))
    return out
