"""Finetuning through the same `Trainer`: a downstream task behind the pretraining model's interface.

`FinetuneModel` wraps a `hero.tasks.DownstreamTask` so the trainer drives it exactly like `PretrainModel`
(``prepare(name, batch, generator, step)``, ``forward(name, inputs) -> TaskOutput``, an ``encoder`` and a
``heads`` ModuleDict for per-head learning rates). `build_task_dataset` joins a task's annotations with
the video features; `load_task_model` rebuilds a finished job's task model for inference.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from pathlib import Path
from collections.abc import Sequence
from typing import Any, Callable

import torch
from safetensors.torch import load_file
from torch import nn

from hero.config import ConfigError, did_you_mean, from_dict
from hero.data.batch import VideoBatch
from hero.presets import Preset, preset_tokenizer
from hero.tasks.base import TaskOutput
from hero.tasks.downstream import DownstreamTask
from hero.tasks.registry import task_of_dataset

log = logging.getLogger(__name__)


class FinetuneModel(nn.Module):
    """A downstream task (``task``) whose encoder is ``self.encoder`` and whose other parts are ``self.heads``.

    Parameters are registered once, under ``encoder.*`` and ``heads.<part>.*`` (the task's own child names,
    e.g. ``head``, ``decoder``), so `hero.train.optim` applies ``optim.head_lr_mult`` to them by name.
    """

    def __init__(self, task: DownstreamTask, dataset: str) -> None:
        super().__init__()
        self.dataset = dataset
        # A plain reference, not a submodule: the task's modules are registered below under encoder.* / heads.*
        # (the parameter names per-head learning rates and the checkpoint layout use), so not twice.
        object.__setattr__(self, "task", task)
        self.encoder = task.encoder
        self.heads = nn.ModuleDict({name: child for name, child in task.named_children() if name != "encoder"})
        self.model_cfg, self.tokens = task.model_cfg, task.tokens

    def lr_mults(self) -> dict[str, float]:
        """The task's own learning-rate multipliers (`DownstreamTask.lr_mults`) under this model's names."""
        return {(p if p.split(".")[0] == "encoder" else f"heads.{p}"): m for p, m in self.task.lr_mults().items()}

    def prepare(self, objective: str, inputs: Any, generator: torch.Generator, step: int) -> Any:
        self._check(objective)
        return self.task.prepare(inputs, generator, step)

    def forward(self, objective: str, inputs: Any) -> TaskOutput:
        self._check(objective)
        return self.task(inputs)

    def _check(self, objective: str) -> None:
        """The trainer names the objective of each step; a finetuning run has one: its dataset."""
        if objective != self.dataset:
            raise ValueError(f"{self.dataset} finetuning was asked to run objective {objective!r}")

    def load_pretrained(self, path: str | Path, fresh: Sequence[str] = ()) -> list[str]:
        """Initialise from a pretraining checkpoint (a step directory, a run directory, or a .safetensors file)
        through the task's key mapping (``encoder.*``, and e.g. ``heads.vsm.*`` for moment retrieval), except the
        parameters under the ``fresh`` prefixes (``train.init_fresh``), which keep their fresh initialisation."""
        path = Path(path)
        if path.is_dir():
            from hero.train.checkpoint import find_latest

            latest = find_latest(path) if not (path / "model.safetensors").exists() else None
            path = (latest.path if latest else path) / "model.safetensors"
        if not path.exists():
            raise FileNotFoundError(f"train.init_from: no weights at {path}")
        missing = self.task.load_pretrained_state(load_file(str(path)), fresh=fresh_prefixes(self.task, fresh))
        log.info("initialised %s from %s (%d keys start from scratch%s)", self.task.name, path, len(missing),
                 f"; fresh by train.init_fresh: {', '.join(fresh)}" if fresh else "")
        return missing


def fresh_prefixes(module: nn.Module, prefixes: Sequence[str]) -> tuple[str, ...]:
    """``prefixes`` checked against ``module``'s parameter names (each must name one at least, as a whole dotted
    component: ``encoder.temporal`` names ``encoder.temporal.layers.0…``, not ``encoder.temporal_embed``)."""
    names = [n for n, _ in module.named_parameters()]
    out = []
    for p in prefixes:
        p = p.rstrip(".")
        if not any(n == p or n.startswith(p + ".") for n in names):
            parts = sorted({".".join(n.split(".")[:k]) for n in names for k in (1, 2)})
            raise ConfigError(f"train.init_fresh: {p!r} names no parameter of the {getattr(module, 'name', 'task')} "
                              f"model ({did_you_mean(p, parts)}e.g. {', '.join(x for x in parts if '.' in x)})")
        out.append(p)
    return tuple(out)


def build_task_model(dataset: str, task_cfg: Any, preset: Preset,
                     all_gather: Callable[[torch.Tensor], torch.Tensor] | None = None) -> FinetuneModel:
    """The task model for ``dataset`` (tvr, tvqa, violin, tvc, retrieval, …) with its config from ``task_cfg``;
    ``all_gather`` (under torchrun) for tasks that gather negatives across ranks."""
    cls = task_of_dataset(dataset)
    cfg = task_cfg if isinstance(task_cfg, cls.config_cls) else from_dict(cls.config_cls, task_cfg, _path="finetune")
    task = cls(preset.model, cfg, preset.tokens)
    task.all_gather = all_gather
    return FinetuneModel(task, dataset)


def build_task_dataset(data_cfg, dataset: str, model: FinetuneModel, preset: Preset) -> tuple[Any, Callable]:
    """``dataset``'s ``data.split`` examples over the corpus (manifest + feature store) and the task's collate,
    with the input channels of ``data.channels`` (`hero.data.channels`; predict with the same setting)."""
    from hero.corpus.manifest import Manifest
    from hero.data.datasets import TaskDataset, VideoFeatures
    from hero.features.store import FeatureStore

    if data_cfg.corpora:
        raise ConfigError("data.corpora: finetuning reads one corpus (data.source=corpus, data.path, data.features)")
    if data_cfg.source != "corpus":
        raise ConfigError("data.source: finetuning reads a corpus (data.source=corpus, data.path, data.features)")
    if not data_cfg.features:
        raise ConfigError("data.features: required when data.source is 'corpus' (the feature store folder)")
    path = Path(data_cfg.path)
    manifest = Manifest.load(path / "manifest.json" if path.is_dir() else path)
    tokenizer = preset_tokenizer(preset, data_cfg.tokenizer)
    store = FeatureStore(data_cfg.features)
    videos = VideoFeatures(manifest, store, tokenizer, video_ids=manifest.split_videos(data_cfg.split) or list(manifest.videos),
                           max_frames=preset.model.max_frames, channels=data_cfg.channels,
                           regions=preset.model.regions)
    if len(videos) and videos.feature_dim != preset.model.feature_dim:
        raise ConfigError(f"model.feature_dim: the feature store at {data_cfg.features} holds {videos.feature_dim}-d "
                          f"features, the model expects {preset.model.feature_dim}")
    from hero.train.data import check_region_dim

    check_region_dim(videos, preset, data_cfg.features)
    ds = TaskDataset(manifest, dataset, data_cfg.split, videos, window=getattr(model.task.cfg, "window", None))
    if len(ds) == 0:
        raise ConfigError(f"task: {manifest.root}/annotations/{dataset}_{data_cfg.split}.jsonl has no usable example")
    task = model.task
    collate = functools.partial(type(task).collate, tokens=preset.tokens, cfg=task.cfg, clip_len=manifest.clip_len,
                                max_frames=preset.model.max_frames)
    return ds, collate


def batch_videos(batch: Any) -> VideoBatch:
    """The `VideoBatch` inside a pretraining batch or a task's inputs."""
    return batch if isinstance(batch, VideoBatch) else batch.batch


def load_task_model(run_dir: str | Path, step: int | None = None, *,
                    which: str = "selected") -> tuple[nn.Module, Preset]:
    """The task model of a finished finetuning job, in eval mode, and its preset with the job's own tokenizer
    choice (``data.tokenizer``, when it named one) as ``preset.tokenizer``: `hero.presets.preset_tokenizer(preset)`
    then reads the vocabulary the job was trained with.

    ``which``: ``selected`` (default) = the checkpoint model selection kept (``<run_dir>/best/``), or the last one
    when the run selected nothing; ``last`` = the newest checkpoint. ``step`` names one checkpoint instead."""
    model, preset, _ = load_task_checkpoint(run_dir, step, which=which)
    return model, preset


def load_task_checkpoint(run_dir: str | Path, step: int | None = None, *,
                         which: str = "selected") -> tuple[nn.Module, Preset, int]:
    """`load_task_model`, and the step of the checkpoint it loaded (what evaluation reports it scored)."""
    from hero.train.checkpoint import find_latest, load_step
    from hero.train.config import RunConfig

    if which not in ("selected", "last"):
        raise ValueError(f"which: 'selected' or 'last', got {which!r}")
    run_dir = Path(run_dir)
    best = find_latest(run_dir / "best") if which == "selected" and step is None and (run_dir / "best").is_dir() else None
    ck = best or (load_step(run_dir / f"step-{step:08d}") if step is not None else find_latest(run_dir))
    if ck is None:
        raise FileNotFoundError(f"{run_dir}: no checkpoint")
    cfg = RunConfig.from_dict(ck.meta["config"])
    preset = cfg.build_preset()
    if cfg.data.tokenizer:
        preset = dataclasses.replace(preset, tokenizer=cfg.data.tokenizer)
    model = build_task_model(cfg.task, cfg.finetune, preset)
    ck.load_weights(model, strict=True)
    log.info("loaded %s (%s, step %d%s)", run_dir, cfg.task, ck.step, ", selected on " + cfg.train.select.split if best else "")
    return model.task.eval(), preset, ck.step


