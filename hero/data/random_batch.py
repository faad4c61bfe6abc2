"""Random but well-formed `VideoBatch`es: for unit tests, smoke runs and benchmarks (no corpus needed)."""

from __future__ import annotations

from typing import Protocol

import torch

from hero.data.batch import VideoBatch
from hero.text.tokenizer import SpecialTokens


class BatchShape(Protocol):
    """The sizes a random batch must respect; a `hero.model.ModelConfig` has them (the data layer does not import
    the model's config)."""

    @property
    def max_frames(self) -> int: ...
    @property
    def feature_dim(self) -> int: ...
    @property
    def vocab_size(self) -> int: ...


def random_video_batch(
    cfg: BatchShape,
    tokens: SpecialTokens,
    *,
    num_videos: int = 2,
    frames: tuple[int, int] = (6, 12),
    frames_per_sub: tuple[int, int] = (1, 4),
    sub_len: tuple[int, int] = (3, 10),
    unmatched_prob: float = 0.15,
    empty_sub_prob: float = 0.1,
    generator: torch.Generator | None = None,
    num_regions: int = 0,
) -> VideoBatch:
    """A batch in the layout HERO's alignment produces: consecutive runs of frames per subtitle, some
    frames matched to no subtitle, some subtitles with no frames.

    Args:
        frames: inclusive range of frames per video (capped at ``cfg.max_frames``).
        frames_per_sub: inclusive range of frames aligned to one subtitle.
        sub_len: inclusive range of subtitle length in tokens, the leading separator included.
        num_regions: R > 0 adds R random region features per clip (``cfg.region_dim``-d) with random boxes
            (drawn after everything else, so the rest of the batch is the one ``num_regions=0`` gives).
    """
    g = generator if generator is not None else torch.Generator().manual_seed(0)

    def randint(lo: int, hi: int) -> int:
        return int(torch.randint(lo, hi + 1, (), generator=g))

    lengths = [min(randint(*frames), cfg.max_frames) for _ in range(num_videos)]
    T = max(lengths)
    feats = torch.zeros(num_videos, T, cfg.feature_dim)
    frame_mask = torch.zeros(num_videos, T, dtype=torch.bool)
    subs: list[tuple[int, list[int], list[int]]] = []  # (video, frame indices, token ids)
    for b, n in enumerate(lengths):
        feats[b, :n] = torch.randn(n, cfg.feature_dim, generator=g)
        frame_mask[b, :n] = True
        t = 0
        while t < n:
            if float(torch.rand((), generator=g)) < unmatched_prob:
                t += 1  # an unmatched frame
                continue
            k = 0 if float(torch.rand((), generator=g)) < empty_sub_prob else min(randint(*frames_per_sub), n - t)
            text = [tokens.sep] + torch.randint(tokens.random_low, min(tokens.random_high, cfg.vocab_size),
                                                (randint(*sub_len) - 1,), generator=g).tolist()
            subs.append((b, list(range(t, t + k)), text))
            t += k
        if not any(s[0] == b for s in subs):  # every video has at least one subtitle
            subs.append((b, [], [tokens.sep, tokens.random_low]))
    subs.sort(key=lambda s: s[0])
    S = len(subs)
    Lt = max(len(s[2]) for s in subs)
    F = max(1, max(len(s[1]) for s in subs))
    sub_ids = torch.full((S, Lt), tokens.pad, dtype=torch.long)
    sub_mask = torch.zeros(S, Lt, dtype=torch.bool)
    sub_frames = torch.full((S, F), -1, dtype=torch.long)
    for i, (_, fr, text) in enumerate(subs):
        sub_ids[i, : len(text)] = torch.tensor(text)
        sub_mask[i, : len(text)] = True
        if fr:
            sub_frames[i, : len(fr)] = torch.tensor(fr)
    regions = {}
    if num_regions:
        mask = frame_mask[:, :, None, None].float()
        xy = torch.rand(num_videos, T, num_regions, 2, generator=g) * 0.5
        wh = torch.rand(num_videos, T, num_regions, 2, generator=g) * 0.5
        regions = {"region_feats": torch.randn(num_videos, T, num_regions, cfg.region_dim, generator=g) * mask,
                   "region_boxes": torch.cat([xy, wh], -1) * mask}
    return VideoBatch(
        frame_feats=feats, frame_mask=frame_mask, sub_ids=sub_ids, sub_mask=sub_mask,
        sub_video=torch.tensor([s[0] for s in subs]), sub_frames=sub_frames,
        video_ids=tuple(f"random_{b}" for b in range(num_videos)), **regions,
    )
