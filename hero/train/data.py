"""Training data for the trainer: datasets by config, a collate that joins videos, and a resumable sampler.

The sampler fixes which videos every micro-batch of every step sees as a function of (seed, step) only,
so the same global batch is split identically whatever the world size, and resuming at step k needs only k.
"""

from __future__ import annotations

import functools
import importlib
from pathlib import Path
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from hero.data.batch import VideoBatch
from hero.data.random_batch import random_video_batch
from hero.presets import Preset
from hero.config import ConfigError
from hero.train.config import BatchLayout, DataConfig


def mix_seed(*parts: int) -> int:
    """A 63-bit seed from integers (SplitMix-style), stable across processes and Python versions."""
    h = 0x9E3779B97F4A7C15
    for p in parts:
        h = (h ^ (int(p) & 0xFFFFFFFFFFFFFFFF)) * 0xBF58476D1CE4E5B9 & 0xFFFFFFFFFFFFFFFF
        h ^= h >> 31
    return h & 0x7FFFFFFFFFFFFFFF


class RandomVideoDataset(torch.utils.data.Dataset):
    """``size`` random videos; video ``i`` is a one-video `VideoBatch` generated from (seed, i), so any index
    can be regenerated at any time (epochs repeat, resumption needs no state)."""

    def __init__(self, preset: Preset, size: int, seed: int = 0, frames: tuple[int, int] = (6, 12),
                 sub_len: tuple[int, int] = (3, 10)) -> None:
        self.model_cfg, self.tokens = preset.model, preset.tokens
        self.size, self.seed, self.frames, self.sub_len = size, seed, tuple(frames), tuple(sub_len)

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> VideoBatch:
        g = torch.Generator().manual_seed(mix_seed(self.seed, index))
        b = random_video_batch(self.model_cfg, self.tokens, num_videos=1, frames=self.frames, sub_len=self.sub_len,
                               generator=g)
        return b.replace(video_ids=(f"random_{index}",))


def concat_videos(items: Sequence[VideoBatch], pad_id: int = 1) -> VideoBatch:
    """Join one-or-more-video batches into one batch: frames padded to the longest, subtitles stacked in order.

    items:   N batches with B_i videos, T_i frames, S_i subtitles of Lt_i tokens and F_i frame slots
    returns: sum(B_i) videos, max(T_i) frames, sum(S_i) subtitles, max(Lt_i) tokens, max(F_i) slots
    """
    if len(items) == 1:
        return items[0]
    T = max(b.num_frames for b in items)
    Lt = max(b.sub_ids.shape[1] for b in items)
    Fs = max(b.sub_frames.shape[1] for b in items)
    feats, fmask, ids, smask, svid, sfr, names = [], [], [], [], [], [], []
    offset = 0
    for b in items:
        dt, dl, df = T - b.num_frames, Lt - b.sub_ids.shape[1], Fs - b.sub_frames.shape[1]
        feats.append(F.pad(b.frame_feats, (0, 0, 0, dt)))
        fmask.append(F.pad(b.frame_mask, (0, dt)))
        ids.append(F.pad(b.sub_ids, (0, dl), value=pad_id))
        smask.append(F.pad(b.sub_mask, (0, dl)))
        sfr.append(F.pad(b.sub_frames, (0, df), value=-1))
        svid.append(b.sub_video + offset)
        names.extend(b.video_ids or [f"video_{offset + i}" for i in range(b.num_videos)])
        offset += b.num_videos
    return VideoBatch(frame_feats=torch.cat(feats), frame_mask=torch.cat(fmask), sub_ids=torch.cat(ids),
                      sub_mask=torch.cat(smask), sub_video=torch.cat(svid), sub_frames=torch.cat(sfr),
                      video_ids=tuple(names))


def build_dataset(cfg: DataConfig, preset: Preset) -> tuple[torch.utils.data.Dataset, Callable[[list], Any]]:
    """The map-style dataset and its collate function for ``data.source``.

    ``random``: `RandomVideoDataset`. ``corpus``: hero.data.datasets.PretrainDataset over the manifest at
    ``data.path`` (a manifest.json, or a folder holding one), the feature store at ``data.features`` and the
    preset's tokenizer (imported lazily, so the trainer works without the corpus stack).
    """
    if cfg.source == "random":
        ds = RandomVideoDataset(preset, cfg.size, cfg.seed, cfg.frames, cfg.sub_len)
        return ds, functools.partial(concat_videos, pad_id=preset.tokens.pad)
    try:
        datasets = importlib.import_module("hero.data.datasets")
        manifest_mod = importlib.import_module("hero.corpus.manifest")
        store_mod = importlib.import_module("hero.features.store")
        tokenizer_mod = importlib.import_module("hero.text.tokenizer")
    except ImportError as err:
        raise RuntimeError(f"data.source 'corpus' needs hero.data.datasets and the corpus stack ({err}); "
                           "use data.source=random meanwhile") from err
    if not cfg.features:
        raise ConfigError("data.features: required when data.source is 'corpus' (the feature store folder)")
    tokenizer = cfg.tokenizer or preset.tokenizer
    if tokenizer is None:
        raise ConfigError(f"data.tokenizer: preset {preset.name} names no tokenizer; give a tokenizer.json path")
    path = Path(cfg.path)
    manifest = manifest_mod.Manifest.load(path / "manifest.json" if path.is_dir() else path)
    ds = datasets.PretrainDataset.from_split(manifest, store_mod.FeatureStore(cfg.features),
                                             tokenizer_mod.load_tokenizer(tokenizer), split=cfg.split,
                                             max_frames=preset.model.max_frames, **cfg.options)
    dim = ds.videos.feature_dim
    if len(ds) and dim != preset.model.feature_dim:
        raise ConfigError(f"model.feature_dim: the feature store at {cfg.features} holds {dim}-d features, "
                          f"the model expects {preset.model.feature_dim}")
    return ds, ds.collate


class StepBatchSampler(torch.utils.data.Sampler[list[int]]):
    """Yields this rank's micro-batches of dataset indices, step after step, from ``start_step`` on.

    The global sample stream is the concatenation of per-epoch permutations (seeded by (seed, epoch)); step
    ``s`` takes stream positions ``[s * G, (s + 1) * G)`` and splits them into ``world * accum`` micro-batches;
    rank ``r`` gets micro-batches ``r * accum ... r * accum + accum - 1``. So one rank with accum=2 sees
    exactly the two micro-batches that two ranks with accum=1 see between them.
    """

    def __init__(self, num_samples: int, layout: BatchLayout, rank: int, seed: int, start_step: int = 0,
                 max_steps: int | None = None) -> None:
        if num_samples < 1:
            raise ValueError("the dataset is empty")
        self.n, self.layout, self.rank, self.seed = num_samples, layout, rank, seed
        self.start_step, self.max_steps = start_step, max_steps
        self._perm: tuple[int, torch.Tensor] | None = None

    def _epoch_perm(self, epoch: int) -> torch.Tensor:
        if self._perm is None or self._perm[0] != epoch:
            g = torch.Generator().manual_seed(mix_seed(self.seed, epoch, 0xDA7A))
            self._perm = (epoch, torch.randperm(self.n, generator=g))
        return self._perm[1]

    def indices(self, start: int, count: int) -> list[int]:
        """Stream positions ``[start, start + count)`` as dataset indices."""
        out = []
        for pos in range(start, start + count):
            out.append(int(self._epoch_perm(pos // self.n)[pos % self.n]))
        return out

    def micro_batches(self, step: int) -> list[list[int]]:
        """This rank's ``accum`` micro-batches of step ``step``."""
        L = self.layout
        first = step * L.global_batch + self.rank * L.accum * L.micro_batch
        idx = self.indices(first, L.accum * L.micro_batch)
        return [idx[a * L.micro_batch : (a + 1) * L.micro_batch] for a in range(L.accum)]

    def __iter__(self) -> Iterator[list[int]]:
        step = self.start_step
        while self.max_steps is None or step < self.max_steps:
            yield from self.micro_batches(step)
            step += 1

    def __len__(self) -> int:
        if self.max_steps is None:
            raise TypeError("an unbounded StepBatchSampler has no length")
        return max(0, self.max_steps - self.start_step) * self.layout.accum

    def state_dict(self) -> dict[str, int]:
        return {"seed": self.seed, "num_samples": self.n, "global_batch": self.layout.global_batch,
                "start_step": self.start_step}

    def load_state_dict(self, state: dict[str, int], step: int) -> None:
        """Continue at optimizer step ``step``; the data order must be the checkpoint's (same seed and size)."""
        for key, mine in (("seed", self.seed), ("num_samples", self.n), ("global_batch", self.layout.global_batch)):
            if int(state[key]) != mine:
                raise ValueError(f"data order changed since the checkpoint: sampler {key} {state[key]} -> {mine}")
        self.start_step = step
