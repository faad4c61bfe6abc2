"""Building blocks of the downstream-task collates: per-example videos -> `VideoBatch`, video copies, labels.

A *video example* is a plain mapping (what a dataset yields for one video):

    {"video_id": str,
     "frame_feats": [T, Df] float tensor or array,
     "sub_ids": list of token-id lists (each starting with the separator token),
     "sub_frames": list of frame-index lists (same length as sub_ids; [] = subtitle with no frame),
     "region_feats", "region_boxes": optional region features [T, R, Dr] and boxes [T, R, 4] (`hero.data.collate`)}

Each task module (hero/tasks/<task>.py) has a ``collate_<task>`` that adds its own fields on top of these.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from hero.data.batch import VideoBatch
from hero.data.collate import collate_videos as _collate
from hero.text.tokenizer import SpecialTokens


def pad_token_lists(seqs: Sequence[Sequence[int]], pad_id: int, max_len: int | None = None) -> tuple[Tensor, Tensor]:
    """Right-pad token lists. returns ids [N, L] long, mask [N, L] bool (L >= 1; truncated to ``max_len``)."""
    seqs = [list(s)[:max_len] if max_len is not None else list(s) for s in seqs]
    L = max([len(s) for s in seqs] + [1])
    ids = torch.full((len(seqs), L), pad_id, dtype=torch.long)
    mask = torch.zeros(len(seqs), L, dtype=torch.bool)
    for i, s in enumerate(seqs):
        if s:
            ids[i, : len(s)] = torch.tensor(s, dtype=torch.long)
            mask[i, : len(s)] = True
    return ids, mask


def collate_videos(videos: Sequence[Mapping], tokens: SpecialTokens, max_frames: int | None = None) -> VideoBatch:
    """Video examples (see the module docstring) -> one padded `VideoBatch` (`hero.data.collate.collate_videos`).

    Frames at or beyond ``max_frames`` are cut, and so are their alignments (HERO d.3). A video with no
    subtitle gets one separator-only subtitle with no frame, so every video has a cross-modal sequence.
    """
    items = []
    for v in videos:
        feats = torch.as_tensor(v["frame_feats"], dtype=torch.float32)[:max_frames]
        pairs = list(zip(v.get("sub_ids", []), v.get("sub_frames", []))) or [([tokens.sep], [])]
        items.append({"video_id": v.get("video_id", len(items)), "frame_feats": feats,
                      "sub_ids": [list(ids) or [tokens.sep] for ids, _ in pairs],
                      "sub_frames": [[i for i in fr if i < feats.shape[0]] for _, fr in pairs]})
        if "region_feats" in v:
            items[-1].update(region_feats=torch.as_tensor(v["region_feats"])[:max_frames],
                             region_boxes=torch.as_tensor(v["region_boxes"])[:max_frames])
    return _collate(items, pad_id=tokens.pad)


def video_examples(batch: VideoBatch) -> list[dict]:
    """The inverse of `collate_videos` (tests, tools): one video example per video of ``batch``."""
    out = []
    for b in range(batch.num_videos):
        rows = (batch.sub_video == b).nonzero(as_tuple=True)[0].tolist()
        n = int(batch.frame_mask[b].sum())
        out.append({
            "video_id": batch.video_ids[b] if batch.video_ids else str(b),
            "frame_feats": batch.frame_feats[b, :n].clone(),
            "sub_ids": [batch.sub_ids[r][batch.sub_mask[r]].tolist() for r in rows],
            "sub_frames": [[i for i in batch.sub_frames[r].tolist() if i >= 0] for r in rows],
        })
        if batch.has_regions:
            out[-1].update(region_feats=batch.region_feats[b, :n].clone(), region_boxes=batch.region_boxes[b, :n].clone())
    return out


def unique_videos(videos: Sequence[Mapping]) -> tuple[list[Mapping], Tensor]:
    """Deduplicate videos by ``video_id`` (first occurrence kept). returns (videos, index [N] of each input)."""
    seen: dict[str, int] = {}
    kept: list[Mapping] = []
    index = []
    for v in videos:
        key = str(v["video_id"])
        if key not in seen:
            seen[key] = len(kept)
            kept.append(v)
        index.append(seen[key])
    return kept, torch.tensor(index, dtype=torch.long)


def select_videos(batch: VideoBatch, index: Tensor) -> VideoBatch:
    """A batch whose video i is video ``index[i]`` of ``batch`` (repeats allowed: video QA's answer copies).

    index: [N] long -> VideoBatch with N videos, the same T, and each selected video's subtitles in order.
    """
    index = index.to(batch.sub_video.device)
    counts = torch.bincount(batch.sub_video, minlength=batch.num_videos)          # [B] subtitles per video
    first = counts.cumsum(0) - counts                                              # row of each video's first subtitle
    n_sub = counts[index]                                                          # [N]
    new_video = torch.repeat_interleave(torch.arange(len(index), device=index.device), n_sub)
    offset = torch.arange(int(n_sub.sum()), device=index.device) - torch.repeat_interleave(n_sub.cumsum(0) - n_sub, n_sub)
    rows = torch.repeat_interleave(first[index], n_sub) + offset
    ids = tuple(batch.video_ids[i] for i in index.tolist()) if batch.video_ids else ()
    return VideoBatch(frame_feats=batch.frame_feats[index], frame_mask=batch.frame_mask[index],
                      sub_ids=batch.sub_ids[rows], sub_mask=batch.sub_mask[rows], sub_video=new_video,
                      sub_frames=batch.sub_frames[rows], video_ids=ids, **batch.regions_at(index))


def span_labels(ts: Sequence[float] | None, num_frames: int, clip_len: float) -> tuple[int, int]:
    """Start/end frame targets of a moment (HERO c.1, inclusive end); (-1, -1) when ``ts`` is None.

    st = min(floor(t0 / clip_len), T - 1); ed = min(max(ceil(t1 / clip_len) - 1, st + 1), T - 1)
    """
    if ts is None:
        return -1, -1
    st = min(math.floor(ts[0] / clip_len), num_frames - 1)
    ed = min(max(math.ceil(ts[1] / clip_len) - 1, st + 1), num_frames - 1)
    return max(st, 0), max(ed, 0)


def moment_frames(ts: Sequence[float], num_frames: int, clip_len: float) -> tuple[int, int]:
    """Frames [st, ed) of a captioned moment (HERO c.5): st = floor(t0/clip), ed = max(round(t1/clip), st + 1),
    both clipped to the video (the original silently drops frames past max_frames; here st < ed always holds)."""
    st = min(max(math.floor(ts[0] / clip_len), 0), num_frames - 1)
    ed = min(max(round(ts[1] / clip_len), st + 1), num_frames)
    return st, ed
