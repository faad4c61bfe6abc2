"""`VideoBatch`: the only input type the encoder accepts.

A batch holds B videos of up to T clip features and S subtitles in total (all videos' subtitles stacked,
ordered by video). Each subtitle knows its video and the video-level indices of the frames aligned to it
(docs/hero-fidelity.md d.3: each frame belongs to at most one subtitle; frames of no subtitle are "unmatched").
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class VideoBatch:
    """A padded batch of videos with their subtitles.

    frame_feats:     [B, T, Df] float  clip features
    frame_mask:      [B, T]     bool   True for real frames
    sub_ids:         [S, Lt]    long   token ids; position 0 holds the separator token ([SEP]/</s>)
    sub_mask:        [S, Lt]    bool   True for real tokens (always True at position 0)
    sub_video:       [S]        long   index in 0..B-1 of each subtitle's video (non-decreasing)
    sub_frames:      [S, F]     long   video-level frame indices aligned to each subtitle, -1 = none (F >= 1)
    video_ids:       names of the B videos (for predictions and debugging)
    region_feats:    [B, T, R, Dr] float  optional: R region features per clip (`model.regions`), zeros at padding
    region_boxes:    [B, T, R, 4]  float  their boxes (x, y, w, h), normalised to the frame
    """

    frame_feats: Tensor
    frame_mask: Tensor
    sub_ids: Tensor
    sub_mask: Tensor
    sub_video: Tensor
    sub_frames: Tensor
    video_ids: tuple[str, ...] = ()
    region_feats: Tensor | None = None
    region_boxes: Tensor | None = None

    def __post_init__(self) -> None:
        B, T, _ = self.frame_feats.shape
        S = self.sub_ids.shape[0]
        if self.frame_mask.shape != (B, T):
            raise ValueError(f"frame_mask {tuple(self.frame_mask.shape)} != {(B, T)}")
        if self.sub_mask.shape != self.sub_ids.shape:
            raise ValueError(f"sub_mask {tuple(self.sub_mask.shape)} != sub_ids {tuple(self.sub_ids.shape)}")
        if self.sub_video.shape != (S,) or self.sub_frames.shape[0] != S or self.sub_frames.dim() != 2:
            raise ValueError("sub_video must be [S] and sub_frames [S, F] for the S subtitles")
        if self.sub_frames.shape[1] < 1:
            raise ValueError("sub_frames needs at least one column (use -1 for a subtitle with no frames)")
        if (self.region_feats is None) != (self.region_boxes is None):
            raise ValueError("region_feats and region_boxes go together")
        if self.region_feats is not None:
            R = self.region_feats.shape[2] if self.region_feats.dim() == 4 else -1
            if self.region_feats.shape[:2] != (B, T) or R < 1 or self.region_boxes.shape != (B, T, R, 4):
                raise ValueError(f"region_feats {tuple(self.region_feats.shape)} / region_boxes "
                                 f"{tuple(self.region_boxes.shape)} must be [{B}, {T}, R, Dr] / [{B}, {T}, R, 4]")

    @property
    def has_regions(self) -> bool:
        return self.region_feats is not None

    def regions_at(self, index) -> dict:
        """The region fields indexed along the video axis (``{}`` without regions): for building a sub-batch."""
        if self.region_feats is None:
            return {}
        return {"region_feats": self.region_feats[index], "region_boxes": self.region_boxes[index]}

    @property
    def num_videos(self) -> int:
        return self.frame_feats.shape[0]

    @property
    def num_frames(self) -> int:
        return self.frame_feats.shape[1]

    @property
    def num_subs(self) -> int:
        return self.sub_ids.shape[0]

    def replace(self, **changes) -> "VideoBatch":
        return dataclasses.replace(self, **changes)

    def to(self, device: torch.device | str, non_blocking: bool = False) -> "VideoBatch":
        return tensors_to(self, device, non_blocking)

    def trimmed(self) -> "VideoBatch":
        """The same batch with T, Lt and F cut to the longest real video, subtitle and frame group."""
        T = max(1, int(self.frame_mask.sum(1).max()))
        Lt = max(1, int(self.sub_mask.sum(1).max())) if self.num_subs else self.sub_ids.shape[1]
        F = max(1, int((self.sub_frames >= 0).sum(1).max())) if self.num_subs else 1
        regions = {}
        if self.region_feats is not None:
            regions = {"region_feats": self.region_feats[:, :T], "region_boxes": self.region_boxes[:, :T]}
        return self.replace(frame_feats=self.frame_feats[:, :T], frame_mask=self.frame_mask[:, :T],
                            sub_ids=self.sub_ids[:, :Lt], sub_mask=self.sub_mask[:, :Lt], sub_frames=self.sub_frames[:, :F],
                            **regions)

    def frame_owner(self) -> Tensor:
        """[B, T] long: the subtitle (row of sub_ids) each frame is aligned to, -1 for unmatched frames."""
        owner = torch.full(self.frame_mask.shape, -1, dtype=torch.long, device=self.sub_frames.device)
        s_idx, f_idx = (self.sub_frames >= 0).nonzero(as_tuple=True)
        owner[self.sub_video[s_idx], self.sub_frames[s_idx, f_idx]] = s_idx
        return owner


def tensors_to(obj, device: torch.device | str, non_blocking: bool = False):
    """A copy of a (frozen) dataclass with every tensor field moved to ``device`` (nested dataclasses too)."""
    changes = {}
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        if isinstance(v, Tensor):
            changes[f.name] = v.to(device, non_blocking=non_blocking)
        elif dataclasses.is_dataclass(v) and not isinstance(v, type):
            changes[f.name] = tensors_to(v, device, non_blocking)
    return dataclasses.replace(obj, **changes)
