"""Masking, shuffling and query sampling for the pretraining objectives.

Pure functions: each takes an explicit ``torch.Generator`` (same seed, same batch) and knows nothing about
ranks or devices. They run on CPU tensors, in the data loader or the trainer.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _bernoulli(shape: torch.Size, prob: float, generator: torch.Generator) -> Tensor:
    return torch.rand(shape, generator=generator) < prob


def _force_one(selected: Tensor, candidates: Tensor, generator: torch.Generator) -> Tensor:
    """Make sure every row with any candidate has at least one selected position (chosen at random)."""
    need = candidates.any(1) & ~(selected & candidates).any(1)
    if need.any():
        noise = torch.rand(candidates.shape, generator=generator).masked_fill(~candidates, -1.0)
        pick = noise.argmax(1)
        rows = need.nonzero(as_tuple=True)[0]
        selected = selected.clone()
        selected[rows, pick[rows]] = True
    return selected & candidates


def mask_tokens(
    ids: Tensor,
    maskable: Tensor,
    *,
    prob: float,
    mask_id: int,
    random_range: tuple[int, int],
    generator: torch.Generator,
) -> tuple[Tensor, Tensor]:
    """BERT masking with at least one masked token per row (HERO MLM: 15%, 80% [MASK] / 10% random / 10% kept).

    ids:      [N, L] long
    maskable: [N, L] bool  positions that may be masked (real tokens, not special ones)
    returns:  (masked ids [N, L], labels [N, L] with the original id at masked positions and -1 elsewhere)
    """
    selected = _force_one(_bernoulli(ids.shape, prob, generator), maskable, generator)
    action = torch.rand(ids.shape, generator=generator)
    random_ids = torch.randint(random_range[0], random_range[1], ids.shape, generator=generator)
    out = ids.clone()
    out = torch.where(selected & (action < 0.8), torch.full_like(ids, mask_id), out)
    out = torch.where(selected & (action >= 0.8) & (action < 0.9), random_ids, out)
    labels = torch.where(selected, ids, torch.full_like(ids, -1))
    return out, labels


def mask_frames(frame_mask: Tensor, *, prob: float, generator: torch.Generator) -> Tensor:
    """Frames hidden for MFM: each real frame w.p. ``prob``, at least one per video.

    frame_mask: [B, T] bool -> [B, T] bool (never True at padding)
    """
    return _force_one(_bernoulli(frame_mask.shape, prob, generator), frame_mask, generator)


def shuffle_frames(frame_mask: Tensor, *, prob: float, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """FOM reordering: pick ~``prob`` of each video's frames (at least two) and permute them among themselves.

    frame_mask: [B, T] bool
    returns: (permutation [B, T] long: slot p holds frame perm[p]; identity outside the selection and at padding,
              targets [B, T] long: the original index of the frame now at slot p, -1 where not selected)
    """
    B, T = frame_mask.shape
    selected = _force_one(_bernoulli(frame_mask.shape, prob, generator), frame_mask, generator)
    few = (selected.sum(1) < 2).unsqueeze(1)
    selected = selected | _force_one(torch.zeros_like(selected), frame_mask & ~selected & few, generator)
    perm = torch.arange(T).repeat(B, 1)
    targets = torch.full((B, T), -1, dtype=torch.long)
    for b in range(B):
        slots = selected[b].nonzero(as_tuple=True)[0]
        if len(slots) == 0:
            continue
        order = slots[torch.randperm(len(slots), generator=generator)]
        perm[b, slots] = order
        targets[b, slots] = order
    return perm, targets


def sample_queries(
    sub_video: Tensor,
    has_frames: Tensor,
    num_videos: int,
    *,
    per_video: int,
    generator: torch.Generator,
) -> Tensor:
    """VSM query subtitles: up to ``per_video`` subtitles with aligned frames per video, padded to exactly
    ``per_video`` by repeating the last one (as HERO does). Videos with no such subtitle get none.

    sub_video:  [S] long, has_frames: [S] bool
    returns:    [Q] long indices into the subtitles, grouped by video in order
    """
    chosen = []
    for b in range(num_videos):
        cands = ((sub_video == b) & has_frames).nonzero(as_tuple=True)[0]
        if len(cands) == 0:
            continue
        pick = cands[torch.randperm(len(cands), generator=generator)[:per_video]].sort().values
        if len(pick) < per_video:
            pick = torch.cat([pick, pick[-1:].repeat(per_video - len(pick))])
        chosen.append(pick)
    return torch.cat(chosen) if chosen else torch.zeros(0, dtype=torch.long)
