"""Training data for the trainer: datasets by config, a collate that joins videos, and resumable samplers.

The sampler fixes which videos every micro-batch of every step sees as a function of (seed, step) only,
so the same global batch is split identically whatever the world size, and resuming at step k needs only k.

A mixture of corpora (``data.corpora``) is sampled per optimizer step, as HERO mixes TV and HowTo100M per
batch: step ``s`` draws one corpus from (seed, s) in proportion to the weights, identically on every rank with
no collective, and its whole global batch comes from that corpus's own sample stream (`MixtureBatchSampler`).
Per step rather than per sample, so every batch has one corpus's text and features, and each step's loss is
one corpus's loss (logged per corpus).
"""

from __future__ import annotations

import bisect
import functools
import importlib
import itertools
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from hero.config import ConfigError
from hero.data.batch import VideoBatch
from hero.data.channels import apply_channels, check_channels
from hero.data.collate import collate_videos
from hero.data.random_batch import random_video_batch
from hero.data.task_collate import video_examples
from hero.presets import Preset, preset_tokenizer
from hero.train.config import BatchLayout, DataConfig, SourceConfig


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
                 sub_len: tuple[int, int] = (3, 10), channels: str = "both") -> None:
        self.model_cfg, self.tokens = preset.model, preset.tokens
        self.size, self.seed, self.frames, self.sub_len = size, seed, tuple(frames), tuple(sub_len)
        self.channels = check_channels(channels)
        self.num_regions = RANDOM_REGIONS if preset.model.regions else 0

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> VideoBatch:
        g = torch.Generator().manual_seed(mix_seed(self.seed, index))
        b = random_video_batch(self.model_cfg, self.tokens, num_videos=1, frames=self.frames, sub_len=self.sub_len,
                               generator=g, num_regions=self.num_regions).replace(video_ids=(f"random_{index}",))
        if self.channels != "both":
            example = apply_channels(video_examples(b)[0], self.channels, self.tokens.sep)
            b = collate_videos([example], pad_id=self.tokens.pad)
        return b


RANDOM_REGIONS = 8
"""Region vectors per clip of a random video when the model reads regions (a 2×2 grid + the top 4 moving cells)."""


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
    regions = {}
    if items[0].has_regions:   # region axis: padded along T like the frames
        regions = {"region_feats": torch.cat([F.pad(b.region_feats, (0, 0, 0, 0, 0, T - b.num_frames)) for b in items]),
                   "region_boxes": torch.cat([F.pad(b.region_boxes, (0, 0, 0, 0, 0, T - b.num_frames)) for b in items])}
    return VideoBatch(frame_feats=torch.cat(feats), frame_mask=torch.cat(fmask), sub_ids=torch.cat(ids),
                      sub_mask=torch.cat(smask), sub_video=torch.cat(svid), sub_frames=torch.cat(sfr),
                      video_ids=tuple(names), **regions)


def build_dataset(cfg: DataConfig, preset: Preset) -> tuple[torch.utils.data.Dataset, Callable[[list], Any]]:
    """The map-style dataset and its collate function for ``data``: one source, or a `MixtureDataset` over the
    corpora of ``data.corpora`` with a positive weight (in name order)."""
    if not cfg.corpora:
        return build_source(cfg, preset, "data.")
    parts = {name: build_source(c, preset, f"data.corpora.{name}.") for name, c in sorted(cfg.corpora.items())
             if c.weight > 0}
    ds = MixtureDataset({n: p[0] for n, p in parts.items()}, {n: cfg.corpora[n].weight for n in parts})
    return ds, MixtureCollate([p[1] for p in parts.values()])


def build_source(cfg: SourceConfig, preset: Preset,
                 prefix: str) -> tuple[torch.utils.data.Dataset, Callable[[list], Any]]:
    """One source's dataset and collate (``prefix`` is its dotted config path, for errors).

    ``random``: `RandomVideoDataset`. ``corpus``: hero.data.datasets.PretrainDataset over the manifest at
    ``path`` (a manifest.json, or a folder holding one), the feature store at ``features`` and the
    preset's tokenizer (imported lazily, so the trainer works without the corpus stack).
    """
    if cfg.source == "random":
        ds = RandomVideoDataset(preset, cfg.size, cfg.seed, cfg.frames, cfg.sub_len, channels=cfg.channels)
        return ds, functools.partial(concat_videos, pad_id=preset.tokens.pad)
    try:
        datasets = importlib.import_module("hero.data.datasets")
        manifest_mod = importlib.import_module("hero.corpus.manifest")
        store_mod = importlib.import_module("hero.features.store")
    except ImportError as err:
        raise RuntimeError(f"{prefix}source 'corpus' needs hero.data.datasets and the corpus stack ({err}); "
                           f"use {prefix}source=random meanwhile") from err
    if not cfg.features:
        raise ConfigError(f"{prefix}features: required when {prefix}source is 'corpus' (the feature store folder)")
    tokenizer = preset_tokenizer(preset, cfg.tokenizer, key=f"{prefix}tokenizer")
    path = Path(cfg.path)
    manifest = manifest_mod.Manifest.load(path / "manifest.json" if path.is_dir() else path)
    options = {"channels": cfg.channels, "regions": preset.model.regions, **cfg.options}
    ds = datasets.PretrainDataset.from_split(manifest, store_mod.FeatureStore(cfg.features),
                                             tokenizer, split=cfg.split,
                                             max_frames=preset.model.max_frames, **options)
    dim = ds.videos.feature_dim
    if len(ds) and dim != preset.model.feature_dim:
        raise ConfigError(f"model.feature_dim: the feature store at {cfg.features} holds {dim}-d features, "
                          f"the model expects {preset.model.feature_dim}")
    check_region_dim(ds.videos, preset, cfg.features)
    return ds, ds.collate


def check_region_dim(videos, preset: Preset, store: str | None) -> None:
    """With ``model.regions``, the store's region feature dim must be the model's ``region_dim``."""
    if preset.model.regions and len(videos) and videos.region_dim != preset.model.region_dim:
        raise ConfigError(f"model.region_dim: the feature store at {store} holds {videos.region_dim}-d region "
                          f"features, the model expects {preset.model.region_dim}")


class MixtureDataset(torch.utils.data.Dataset):
    """The corpora of a mixture end to end: index ``offsets[k] + i`` is item ``i`` of corpus ``k``, returned as
    ``(k, item)`` so `MixtureCollate` can use that corpus's collate (its own tokenizer's padding)."""

    def __init__(self, parts: Mapping[str, torch.utils.data.Dataset], weights: Mapping[str, float]) -> None:
        self.names = list(parts)
        self.parts = [parts[n] for n in self.names]
        self.weights = [float(weights[n]) for n in self.names]
        self.sizes = [len(p) for p in self.parts]
        for name, n in zip(self.names, self.sizes, strict=True):
            if n < 1:
                raise ValueError(f"data.corpora.{name}: the corpus has no video")
        self.offsets = [0, *itertools.accumulate(self.sizes)][:-1]

    def __len__(self) -> int:
        return sum(self.sizes)

    def __getitem__(self, index: int) -> tuple[int, Any]:
        k = bisect.bisect_right(self.offsets, index) - 1
        return k, self.parts[k][index - self.offsets[k]]


class MixtureCollate:
    """Collates a micro-batch of `MixtureDataset` items, which all come from one corpus, with its collate."""

    def __init__(self, collates: Sequence[Callable[[list], Any]]) -> None:
        self.collates = list(collates)

    def __call__(self, items: list[tuple[int, Any]]) -> Any:
        corpora = {k for k, _ in items}
        if len(corpora) != 1:
            raise ValueError(f"a micro-batch mixes corpora {sorted(corpora)}; the mixture sampler draws one per step")
        return self.collates[items[0][0]]([item for _, item in items])


class _StepSampler(torch.utils.data.Sampler[list[int]]):
    """Yields ``micro_batches(step)`` for ``start_step <= step < max_steps`` (None: forever); a subclass says
    what a step's micro-batches are. ``layout``, ``start_step`` and ``max_steps`` are set by the subclass."""

    layout: BatchLayout
    start_step: int
    max_steps: int | None

    def micro_batches(self, step: int) -> list[list[int]]:
        raise NotImplementedError

    def __iter__(self) -> Iterator[list[int]]:
        step = self.start_step
        while self.max_steps is None or step < self.max_steps:
            yield from self.micro_batches(step)
            step += 1

    def __len__(self) -> int:
        if self.max_steps is None:
            raise TypeError(f"an unbounded {type(self).__name__} has no length")
        return max(0, self.max_steps - self.start_step) * self.layout.accum


class StepBatchSampler(_StepSampler):
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

    def corpus_at(self, step: int) -> str | None:
        """The corpus of step ``step``: None, a single source has no name."""
        return None

    def state_dict(self) -> dict[str, int]:
        return {"seed": self.seed, "num_samples": self.n, "global_batch": self.layout.global_batch,
                "start_step": self.start_step}

    def load_state_dict(self, state: dict[str, int], step: int) -> None:
        """Continue at optimizer step ``step``; the data order must be the checkpoint's (same seed and size)."""
        if "corpora" in state:
            raise ValueError("data order changed since the checkpoint: it mixed data.corpora "
                             f"{sorted(state['corpora'])}, this run reads a single source")
        for key, mine in (("seed", self.seed), ("num_samples", self.n), ("global_batch", self.layout.global_batch)):
            if int(state[key]) != mine:
                raise ValueError(f"data order changed since the checkpoint: sampler {key} {state[key]} -> {mine}")
        self.start_step = step


_CORPUS_DRAW = 0xC0A905
"""Salt of the corpus draw, so it is independent of the task draw and of the data order of the same step."""


class MixtureBatchSampler(_StepSampler):
    """`StepBatchSampler` for a `MixtureDataset`: one corpus per optimizer step, drawn from (seed, step).

    Step ``s`` draws corpus ``c`` with probability ``weight_c / sum(weights)`` from a hash of (seed, s) alone,
    so every rank agrees without a collective, and a run resumed at step k continues the same stream. Each
    corpus has its own sample stream (a `StepBatchSampler` seeded by (seed, corpus name)), which advances one
    "corpus step" per step that draws it: the n-th step drawing ``c`` takes the n-th global batch of ``c``'s
    stream, split over ranks and micro-batches exactly as a single corpus is. So every corpus is still read
    epoch by epoch in permuted order, whatever the weights. Position n at step s is a count over steps < s,
    recomputed on resume (a hash per step: about 2 s per million steps on one CPU core).
    """

    def __init__(self, dataset: MixtureDataset, layout: BatchLayout, rank: int, seed: int, start_step: int = 0,
                 max_steps: int | None = None) -> None:
        self.names, self.weights, self.sizes = dataset.names, dataset.weights, dataset.sizes
        self.offsets = dataset.offsets
        self.layout, self.rank, self.seed = layout, rank, seed
        self.start_step, self.max_steps = start_step, max_steps
        self.streams = [StepBatchSampler(n, layout, rank, seed=mix_seed(seed, zlib.crc32(name.encode())))
                        for name, n in zip(self.names, self.sizes, strict=True)]
        self._bounds = list(itertools.accumulate(self.weights))
        self._pos = (0, [0] * len(self.names))  # (step, corpus steps taken by each corpus before it)

    def corpus_index(self, step: int) -> int:
        """Index (in name order) of the corpus that step ``step`` draws."""
        u = mix_seed(_CORPUS_DRAW, self.seed, step) / 2.0 ** 63
        return min(bisect.bisect_right(self._bounds, u * self._bounds[-1]), len(self.names) - 1)

    def corpus_at(self, step: int) -> str:
        return self.names[self.corpus_index(step)]

    def stream(self, start: int, count: int) -> list[str]:
        """The corpora of steps ``[start, start + count)``."""
        return [self.corpus_at(s) for s in range(start, start + count)]

    def position(self, step: int) -> tuple[int, int]:
        """(corpus index, how many earlier steps drew that corpus) for step ``step``."""
        at, taken = self._pos
        if step < at:
            at, taken = 0, [0] * len(self.names)
        taken = list(taken)
        for s in range(at, step):
            taken[self.corpus_index(s)] += 1
        self._pos = (step, taken)
        k = self.corpus_index(step)
        return k, taken[k]

    def micro_batches(self, step: int) -> list[list[int]]:
        """This rank's ``accum`` micro-batches of step ``step`` (indices into the `MixtureDataset`)."""
        k, n = self.position(step)
        return [[self.offsets[k] + i for i in mb] for mb in self.streams[k].micro_batches(n)]

    def state_dict(self) -> dict[str, Any]:
        return {"seed": self.seed, "global_batch": self.layout.global_batch, "start_step": self.start_step,
                "corpora": {n: {"num_samples": size, "weight": w}
                            for n, size, w in zip(self.names, self.sizes, self.weights, strict=True)}}

    def load_state_dict(self, state: Mapping[str, Any], step: int) -> None:
        """Continue at optimizer step ``step``; seed, batch, corpora, sizes and weights must be the checkpoint's."""
        if "corpora" not in state:
            raise ValueError("data order changed since the checkpoint: it was written by a single-source run, "
                             "this run mixes data.corpora")
        mine = self.state_dict()
        for key in ("seed", "global_batch", "corpora"):
            if state[key] != mine[key]:
                raise ValueError(f"data order changed since the checkpoint: sampler {key} {state[key]} -> {mine[key]}")
        self.start_step = step


def build_sampler(dataset: torch.utils.data.Dataset, layout: BatchLayout, rank: int, seed: int,
                  max_steps: int | None = None) -> StepBatchSampler | MixtureBatchSampler:
    """The trainer's batch sampler: per-step corpus draws for a `MixtureDataset`, else one stream."""
    if isinstance(dataset, MixtureDataset):
        return MixtureBatchSampler(dataset, layout, rank, seed, max_steps=max_steps)
    return StepBatchSampler(len(dataset), layout, rank, seed=seed, max_steps=max_steps)
