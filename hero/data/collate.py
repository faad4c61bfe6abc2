"""Collate video examples into the model's `VideoBatch`.

A video example (what `hero.data.datasets` yields per video; the same mapping the downstream collates in
`hero.data.task_collate` take)::

    {"video_id": str,
     "frame_feats": [T, Df] float tensor,
     "sub_ids":    list of token-id lists, each starting with the separator token,
     "sub_frames": list of ascending video-level frame-index lists (same length; [] = a subtitle with no frame),
     "region_feats": [T, R, Dr] float tensor, "region_boxes": [T, R, 4]   (optional: region features, `model.regions`;
                     every example of a batch has them or none does)}

Datasets already truncate to the model's max_frames (HERO d.3), so this only pads.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

import numpy as np
import torch

from hero.data.batch import VideoBatch


def collate_videos(items: Sequence[Mapping], pad_id: int = 0) -> VideoBatch:
    """Pad B video examples into one `VideoBatch` (subtitles stacked in video order).

    frame_feats [B, T, Df] (zeros past each video's end), frame_mask [B, T], sub_ids / sub_mask [S, Lt]
    (``pad_id`` past each subtitle's end), sub_video [S], sub_frames [S, F] (-1 padding, F >= 1).
    """
    if not items:
        raise ValueError("collate_videos needs at least one video")
    feats = [torch.as_tensor(it["frame_feats"], dtype=torch.float32) for it in items]
    B, T, D = len(items), max(f.shape[0] for f in feats), feats[0].shape[1]
    frame_feats = torch.zeros(B, T, D)
    frame_mask = torch.zeros(B, T, dtype=torch.bool)
    ids, frames, owner = [], [], []
    for b, (it, f) in enumerate(zip(items, feats)):
        if f.shape[1] != D:
            raise ValueError(f"video {it.get('video_id', b)!r}: feature dim {f.shape[1]} != {D}")
        frame_feats[b, : f.shape[0]] = f
        frame_mask[b, : f.shape[0]] = True
        if len(it["sub_ids"]) != len(it["sub_frames"]):
            raise ValueError(f"video {it.get('video_id', b)!r}: sub_ids and sub_frames differ in length")
        for toks, fr in zip(it["sub_ids"], it["sub_frames"]):
            ids.append(toks)
            frames.append(fr)
            owner.append(b)
    S = len(ids)
    sub_ids, sub_mask = _pad(ids, S, pad_id)
    sub_frames, _ = _pad(frames, S, -1)
    return VideoBatch(frame_feats=frame_feats, frame_mask=frame_mask, sub_ids=sub_ids, sub_mask=sub_mask,
                      sub_video=torch.tensor(owner, dtype=torch.long), sub_frames=sub_frames,
                      video_ids=tuple(str(it.get("video_id", b)) for b, it in enumerate(items)),
                      **collate_regions(items, T))


def collate_regions(items: Sequence[Mapping], T: int) -> dict:
    """``{"region_feats": [B, T, R, Dr], "region_boxes": [B, T, R, 4]}`` (zeros past each video's end) when the
    examples carry region features, ``{}`` when none does; some but not all is an error naming a video."""
    have = ["region_feats" in it for it in items]
    if not any(have):
        return {}
    if not all(have):
        b = have.index(False)
        raise ValueError(f"video {items[b].get('video_id', b)!r} has no region features, other videos of its batch do")
    regs = [torch.as_tensor(it["region_feats"], dtype=torch.float32) for it in items]
    boxes = [torch.as_tensor(it["region_boxes"], dtype=torch.float32) for it in items]
    R, Dr = regs[0].shape[1:]
    out_r, out_b = torch.zeros(len(items), T, R, Dr), torch.zeros(len(items), T, R, 4)
    for b, (it, r, x) in enumerate(zip(items, regs, boxes)):
        if r.shape[1:] != (R, Dr) or x.shape != (*r.shape[:2], 4):
            raise ValueError(f"video {it.get('video_id', b)!r}: regions {tuple(r.shape)} / boxes {tuple(x.shape)}, "
                             f"the batch's are [T, {R}, {Dr}] / [T, {R}, 4]")
        n = min(r.shape[0], T)
        out_r[b, :n], out_b[b, :n] = r[:n], x[:n]
    return {"region_feats": out_r, "region_boxes": out_b}


def _pad(rows: Sequence[Sequence[int]], n: int, fill: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` integer lists -> [n, L] long padded with ``fill`` and its [n, L] bool mask (L = longest, >= 1); one
    numpy fill rather than a tensor per row (a batch holds ~1,000 subtitles)."""
    lens = np.fromiter((len(r) for r in rows), dtype=np.int64, count=n)
    width = max(int(lens.max()) if n else 0, 1)
    mask = np.arange(width)[None, :] < lens[:, None]
    out = np.full((n, width), fill, dtype=np.int64)
    out[mask] = np.fromiter(itertools.chain.from_iterable(rows), dtype=np.int64, count=int(lens.sum()))
    return torch.from_numpy(out), torch.from_numpy(mask)
