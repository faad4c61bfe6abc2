"""Collate video examples into the model's `VideoBatch`.

A video example (what `hero.data.datasets` yields per video; the same mapping the downstream collates in
`hero.data.task_collate` take)::

    {"video_id": str,
     "frame_feats": [T, Df] float tensor,
     "sub_ids":    list of token-id lists, each starting with the separator token,
     "sub_frames": list of ascending video-level frame-index lists (same length; [] = a subtitle with no frame)}

Datasets already truncate to the model's max_frames (HERO d.3), so this only pads.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

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
    Lt = max([len(t) for t in ids] + [1])
    F = max([len(fr) for fr in frames] + [1])
    sub_ids = torch.full((S, Lt), pad_id, dtype=torch.long)
    sub_mask = torch.zeros(S, Lt, dtype=torch.bool)
    sub_frames = torch.full((S, F), -1, dtype=torch.long)
    for i, (toks, fr) in enumerate(zip(ids, frames)):
        sub_ids[i, : len(toks)] = torch.as_tensor(toks, dtype=torch.long)
        sub_mask[i, : len(toks)] = True
        if len(fr):
            sub_frames[i, : len(fr)] = torch.as_tensor(fr, dtype=torch.long)
    return VideoBatch(frame_feats=frame_feats, frame_mask=frame_mask, sub_ids=sub_ids, sub_mask=sub_mask,
                      sub_video=torch.tensor(owner, dtype=torch.long), sub_frames=sub_frames,
                      video_ids=tuple(str(it.get("video_id", b)) for b, it in enumerate(items)))
