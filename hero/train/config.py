"""`RunConfig`: everything one training job needs, typed and strict.

Loaded from YAML plus dotted ``key=value`` overrides; an unknown key or bad value fails with its dotted
path. World size is deliberately absent: the config fixes the *global* batch (in videos), and the per-rank
micro-batch count and accumulation are derived at run time by `batch_layout` and checked there.

Example (``run.yaml``)::

    preset: hero-tiny
    model: {dropout: 0.0}            # overrides of the preset's ModelConfig fields
    pretrain: {tasks: {mlm: 2, mfm_nce: 2, fom: 1, vsm: 2}}
    data: {source: random, size: 256, frames: [6, 12]}
    optim: {lr: 1.0e-4, warmup_steps: 10, decay: linear, head_lr_mult: {vsm: 2.0}}
    train: {global_batch: 8, micro_batch: 4, max_steps: 100, ckpt_every: 50, run_dir: runs/tiny}
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal


import yaml

from hero.config import ConfigError, from_dict, load_yaml, merge, override, parse_overrides, to_dict
from hero.model.config import ModelConfig
from hero.presets import Preset, get_preset
from hero.storage import SCHEMES, scheme_of
from hero.tasks.config import OBJECTIVE_NAMES, PretrainConfig
from hero.tasks.registry import task_of_dataset


@dataclass(frozen=True, kw_only=True)
class SourceConfig:
    """Where one set of training videos comes from and how it is read (the fields `DataConfig` and every
    `CorpusConfig` of a mixture share)."""

    source: Literal["random", "corpus"] = "random"
    """`random`: deterministic random videos, one per sample index (tests, smoke runs, benchmarks);
    `corpus`: the real pretraining dataset (hero.data.datasets)."""
    size: int = 1024
    """random: videos per epoch."""
    seed: int = 0
    """random: video ``i`` is generated from (seed, i), so every epoch sees the same videos."""
    frames: tuple[int, int] = (6, 12)
    """random: inclusive range of clips per video."""
    sub_len: tuple[int, int] = (3, 10)
    """random: inclusive range of subtitle length in tokens."""
    path: str | None = None
    """corpus: the manifest (manifest.json, or the folder holding it)."""
    features: str | None = None
    """corpus: the feature store location."""
    split: str = "train"
    """corpus: the split trained on: pretraining reads the videos its annotations name (every video when none
    does), finetuning its examples."""
    tokenizer: str | None = None
    """corpus: ``minilm`` or a tokenizer.json path; None = the preset's tokenizer."""
    options: dict[str, Any] = field(default_factory=dict)
    """corpus: extra keyword arguments of PretrainDataset.from_split (e.g. max_sub_tokens)."""
    channels: Literal["both", "video", "subtitles"] = "both"
    """Input channels (VALUE's ablation, hero.data.channels): `video` drops the subtitles (every video becomes a
    video-only one: docs/hero-fidelity.md a.5), `subtitles` zeroes the frame features; the same in training and
    prediction."""

    def _check(self, prefix: str) -> None:
        """Validate the source fields; ``prefix`` is the dotted path of this config (``data.``, or empty)."""
        if self.size < 1:
            raise ConfigError(f"{prefix}size: must be >= 1, got {self.size}")
        for key in ("frames", "sub_len"):
            lo, hi = getattr(self, key)
            if not 1 <= lo <= hi:
                raise ConfigError(f"{prefix}{key}: need 1 <= low <= high, got {[lo, hi]}")


@dataclass(frozen=True, kw_only=True)
class CorpusConfig(SourceConfig):
    """One corpus of a pretraining mixture (``data.corpora.<name>``), e.g. TV shows or instructional videos."""

    source: Literal["random", "corpus"] = "corpus"
    """As `data.source`; a corpus of a mixture reads a manifest unless it says `random`."""
    weight: float = 1.0
    """Sampling weight: each optimizer step draws its corpus with probability weight / sum of weights (HERO mixes
    TV and HowTo100M per batch). 0 leaves the corpus out (an ablation), without reading it."""

    def __post_init__(self) -> None:
        self._check("")
        if not 0.0 <= self.weight < math.inf:
            raise ConfigError(f"weight: must be >= 0 and finite, got {self.weight}")
        if self.source == "corpus" and self.weight > 0 and not self.path:
            raise ConfigError("path: required when source is 'corpus'")


@dataclass(frozen=True, kw_only=True)
class DataConfig(SourceConfig):
    """Where training videos come from: one source (the fields below), or a mixture of named corpora.

    A mixture (``corpora``) replaces the single-source fields: each corpus has its own manifest, feature store,
    tokenizer, options and channels, and a sampling weight. Every optimizer step draws ONE corpus from (seed, step),
    the same on every rank, and takes its whole global batch from it (hero.train.data.MixtureBatchSampler); the
    losses of the steps that drew corpus ``c`` are logged as ``train/<c>/loss`` and ``train/<objective>/<c>/loss``.
    Keyed by name, so a weight is a dotted override (``data.corpora.howto.weight=0``) as task ratios are::

        data:
          corpora:
            tv:    {path: data/tv/manifest.json, features: data/tv/features, weight: 2}
            howto: {path: data/howto/manifest.json, features: data/howto/features, weight: 1, channels: video}
    """

    corpora: dict[str, CorpusConfig] = field(default_factory=dict)
    """Name -> corpus of a mixture; empty = the single source above."""
    num_workers: int = 0
    """DataLoader worker processes per rank (0 = load in the training process)."""

    def __post_init__(self) -> None:
        self._check("data.")
        if self.num_workers < 0:
            raise ConfigError(f"data.num_workers: must be >= 0, got {self.num_workers}")
        if not self.corpora:
            if self.source == "corpus" and not self.path:
                raise ConfigError("data.path: required when data.source is 'corpus'")
            return
        for key in ("path", "features", "tokenizer", "options"):
            if getattr(self, key):
                raise ConfigError(f"data.{key}: not used with data.corpora (give each corpus its own {key})")
        for name in self.corpora:
            if not _CORPUS_NAME.fullmatch(name) or name in OBJECTIVE_NAMES:
                raise ConfigError(f"data.corpora.{name}: a corpus name is letters, digits, '_' or '-' and not an "
                                  f"objective name ({', '.join(OBJECTIVE_NAMES)}): it names metrics train/<name>/loss")
        if not any(c.weight > 0 for c in self.corpora.values()):
            raise ConfigError("data.corpora: every weight is 0; give at least one corpus a weight > 0")


_CORPUS_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


@dataclass(frozen=True, kw_only=True)
class OptimConfig:
    """AdamW with warmup then decay (docs/hero-fidelity.md b.5 defaults: betas (0.9, 0.98), eps 1e-6, wd 0.01,
    clip 1.0)."""

    lr: float = 3e-5
    """Peak learning rate, reached after warmup (a head's is multiplied by ``head_lr_mult``)."""
    betas: tuple[float, float] = (0.9, 0.98)
    """AdamW's (beta1, beta2) (HERO: 0.9, 0.98)."""
    eps: float = 1e-6
    """AdamW's epsilon (HERO: 1e-6)."""
    weight_decay: float = 0.01
    """Applied to weight matrices only; never to biases, LayerNorm or embedding-norm parameters."""
    warmup_steps: int = 0
    """Linear warmup from 0 to ``lr`` over this many steps."""
    decay: Literal["linear", "cosine", "constant"] = "linear"
    """After warmup: to ``min_lr_ratio * lr`` at ``train.max_steps`` (HERO: linear to 0)."""
    min_lr_ratio: float = 0.0
    """Learning rate at the end of the decay, as a fraction of ``lr`` (0: decay to 0, as HERO does)."""
    grad_clip: float = 1.0
    """Max global gradient norm; 0 disables clipping."""
    head_lr_mult: dict[str, float] = field(default_factory=dict)
    """Learning-rate multiplier per top-level head (e.g. ``{vsm: 10}``); the encoder gets 1 unless ``lr_mult``
    names its parts."""
    lr_mult: dict[str, float] = field(default_factory=dict)
    """Learning-rate multiplier per parameter-name prefix, on a dot boundary (e.g. ``{encoder.text_embed: 0.1,
    encoder.cross: 0.1}``: the text side of the encoder at a tenth of the rate); the longest matching prefix wins
    and replaces a ``head_lr_mult``; a prefix that names no parameter is an error."""
    fused: bool = True
    """Use torch's fused AdamW kernel (CPU and CUDA; ~10x faster than the per-tensor loop on CPU for a
    50k-row embedding table); false selects the reference implementation."""

    def __post_init__(self) -> None:
        # comparisons are written so that NaN fails them too (NaN <= 0 and NaN > 1 are both False)
        if not 0.0 < self.lr <= 1.0:
            raise ConfigError(f"optim.lr: must be in (0, 1], got {self.lr}")
        if not all(0.0 <= b < 1.0 for b in self.betas):
            raise ConfigError(f"optim.betas: each must be in [0, 1), got {list(self.betas)}")
        if not 0.0 < self.eps < 1.0:
            raise ConfigError(f"optim.eps: must be in (0, 1), got {self.eps}")
        if not 0.0 <= self.weight_decay < math.inf:
            raise ConfigError(f"optim.weight_decay: must be finite and >= 0, got {self.weight_decay}")
        if self.warmup_steps < 0:
            raise ConfigError(f"optim.warmup_steps: must be >= 0, got {self.warmup_steps}")
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ConfigError(f"optim.min_lr_ratio: must be in [0, 1], got {self.min_lr_ratio}")
        if not 0.0 <= self.grad_clip < math.inf:
            raise ConfigError(f"optim.grad_clip: must be finite and >= 0, got {self.grad_clip}")
        for name, mult in self.head_lr_mult.items():
            if not 0.0 < mult < math.inf:
                raise ConfigError(f"optim.head_lr_mult.{name}: must be finite and > 0, got {mult}")
        for name, mult in self.lr_mult.items():
            if not 0.0 < mult < math.inf:
                raise ConfigError(f"optim.lr_mult.{name}: must be finite and > 0, got {mult}")


@dataclass(frozen=True, kw_only=True)
class SelectConfig:
    """Model selection for finetuning (`hero.train.selection`): score a held-out split during training, keep the
    best checkpoint (``<run_dir>/best/``), optionally stop early. Off by default (the last step's model)."""

    every: int = 0
    """Score ``split`` every this many optimizer steps, and at the last step (0 = no selection)."""
    split: str = "val"
    """The split selected on (never the one results are reported on)."""
    max_examples: int = 0
    """Score the split's first this many examples, a fixed subsample (0 = all of them)."""
    metric: str = ""
    """The metric selected on, a name the task's scorer returns (default: the task's headline metric)."""
    mode: Literal["max", "min"] = "max"
    """Whether a larger or a smaller ``metric`` is better."""
    tie_break: bool = True
    """When ``metric`` equals the best so far, the task's other headline metrics decide, in order (higher is
    better): at a small budget a strict metric sits at 0 for every evaluation (TVR's VCMR R@1 at tIoU 0.7), and
    without it the first evaluation's checkpoint would be kept whatever the others say. False: the first step
    reaching the best is kept (HERO's and TVRetrieval's rule)."""
    patience: int = 0
    """Stop after this many evaluations in a row without improvement (0 = train to max_steps)."""

    def __post_init__(self) -> None:
        for key in ("every", "max_examples", "patience"):
            if getattr(self, key) < 0:
                raise ConfigError(f"{key}: must be >= 0, got {getattr(self, key)}")
        if self.split == "test":
            raise ConfigError("split: selecting on the test split would report on what was tuned on; use val")


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """Loop length, batch geometry, cadence, precision and outputs."""

    global_batch: int = 8
    """Videos per optimizer step, summed over all ranks and accumulation micro-steps."""
    micro_batch: int = 0
    """Videos per forward pass on one rank; 0 = global_batch / world_size (no accumulation)."""
    max_steps: int = 100
    """Optimizer steps of the whole run; fixes the schedule length."""
    stop_after: int | None = None
    """Stop (after checkpointing) once this step is reached, as a preemption would; the schedule still
    spans ``max_steps``, so a later run with the same run_dir continues exactly."""
    log_every: int = 10
    """Log the step metrics (averaged over the steps since the last log line) every this many steps and at the
    last one: a metrics.jsonl row, the console line, MLflow when a sink sends them there."""
    eval_every: int = 0
    """Call the ``on_eval`` hook every this many steps (0 = only at the end, if given)."""
    ckpt_every: int = 0
    """Checkpoint every this many steps (0 = only at the end / at ``stop_after``)."""
    keep_last_k: int = 3
    """Checkpoints kept in run_dir; at least 2, since the newest may be half-written when a job dies."""
    precision: Literal["fp32", "bf16", "fp16", "auto"] = "fp32"
    """Autocast dtype; weights and optimizer state stay fp32. fp16 uses a GradScaler. `auto`: bf16 on a GPU that
    supports it and on a CPU with native bf16 matmul (avx512_bf16 or AMX), fp32 elsewhere."""
    seed: int = 0
    """Seeds initialisation, the task stream, the data order and every per-step random draw."""
    run_dir: str = "runs/default"
    """The run directory: config.yaml, the ``step-N/`` checkpoints, metrics.jsonl; one that holds a checkpoint is
    resumed (the pipelines give each job its own content-keyed folder under data/06_models)."""
    sinks: tuple[str, ...] = ("hero.train.sinks:JsonlSink",)
    """Metric sinks by import path (``module:Class``), built on rank 0 with the run_dir as argument."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """`auto`: cuda:LOCAL_RANK when CUDA is available, else cpu."""
    compile: bool = False
    """Wrap the model in torch.compile."""
    init_from: str | None = None
    """A checkpoint directory (or weights .safetensors) whose weights initialise a fresh run (finetuning);
    ignored when run_dir already holds a checkpoint to resume. An ``s3://`` URI names a published checkpoint,
    run folder (its newest step) or .safetensors file, fetched into the local cache first."""
    init_fresh: tuple[str, ...] = ()
    """Parts of the model that start from their fresh initialisation instead of from ``init_from``: prefixes of
    the task model's parameter names (``encoder.temporal``: the Temporal Transformer; ``encoder.frame_embed``,
    ``encoder.cross``, ``head``…). Each must name at least one parameter. Empty: everything ``init_from`` has."""
    select: SelectConfig = field(default_factory=SelectConfig)
    """Model selection on a held-out split (finetuning only)."""
    mirror_to: str | None = None
    """Where rank 0 publishes each checkpoint after saving it locally: ``<mirror_to>/step-N/`` (an ``s3://``
    URI or a folder; credentials from the AWS environment, never from here). None: local only."""

    def __post_init__(self) -> None:
        for key in ("global_batch", "max_steps", "log_every"):
            if getattr(self, key) < 1:
                raise ConfigError(f"train.{key}: must be >= 1, got {getattr(self, key)}")
        for key in ("micro_batch", "eval_every", "ckpt_every"):
            if getattr(self, key) < 0:
                raise ConfigError(f"train.{key}: must be >= 0, got {getattr(self, key)}")
        if self.micro_batch and self.global_batch % self.micro_batch:
            raise ConfigError(f"train.micro_batch: {self.micro_batch} must divide train.global_batch={self.global_batch}")
        if self.stop_after is not None and not 1 <= self.stop_after <= self.max_steps:
            raise ConfigError(f"train.stop_after: must be in [1, max_steps={self.max_steps}], got {self.stop_after}")
        if self.keep_last_k < 2:
            raise ConfigError(f"train.keep_last_k: must be >= 2 (the newest checkpoint may be half-written when "
                              f"a job dies), got {self.keep_last_k}")
        for s in self.sinks:
            if ":" not in s:
                raise ConfigError(f"train.sinks: {s!r} must look like 'package.module:ClassName'")
        for key in ("init_from", "mirror_to"):
            loc = getattr(self, key)
            if loc and scheme_of(loc) not in SCHEMES:
                raise ConfigError(f"train.{key}: {loc!r} has an unsupported scheme (a path, file:// or s3://)")


@dataclass(frozen=True, kw_only=True)
class RunConfig:
    """One training job. ``model`` holds overrides of the preset's ModelConfig (checked against it)."""

    preset: str = "hero-tiny"
    """Model preset (`hero.presets`): `hero-tiny`, `hero-mini`, `hero-small` or `hero-base`; it fixes the
    architecture, the special tokens and the default tokenizer."""
    task: str = "pretrain"
    """`pretrain` (the objective mix of ``pretrain``), or a downstream dataset to finetune on: tvr, how2r,
    didemo, tvqa, how2qa, violin, tvc, retrieval/msrvtt (any dataset a registered task reads,
    `hero.tasks.datasets()`)."""
    finetune: Any = None
    """The downstream task's typed config (its ``config_cls``, e.g. `MomentRetrievalConfig`), given as a mapping
    of its fields; built and checked for the task named by ``task`` (None: the task's defaults)."""
    model: dict[str, Any] = field(default_factory=dict)
    """Overrides of the preset's model fields (``{dropout: 0.0, cross_layers: 3}``; the `run.model` table), checked
    as the preset's own are."""
    text_init: bool = True
    """Apply the preset's pretrained text-side initialisation (MiniLM weights for hero-mini) to a fresh run."""
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    """The pretraining objectives and their sampling ratios (read when ``task`` is `pretrain`)."""
    data: DataConfig = field(default_factory=DataConfig)
    """Where the training videos (and, when finetuning, the examples) come from."""
    optim: OptimConfig = field(default_factory=OptimConfig)
    """AdamW and its learning-rate schedule."""
    train: TrainConfig = field(default_factory=TrainConfig)
    """Loop length, batch geometry, cadence, precision, checkpoints and outputs."""

    def __post_init__(self) -> None:
        self.build_preset()  # validates the preset name and every model override (dotted errors)
        if self.task != "pretrain":
            cls = task_of_dataset(self.task).config_cls
            if not isinstance(self.finetune, cls):
                if self.finetune is not None and not isinstance(self.finetune, Mapping):
                    raise ConfigError(f"finetune: expected a mapping of {cls.__name__} fields, "
                                      f"got {type(self.finetune).__name__}")
                object.__setattr__(self, "finetune", from_dict(cls, self.finetune or {}, _path="finetune"))
        elif self.finetune:
            raise ConfigError("finetune: only meaningful with a downstream task (task: tvr, tvqa, ...)")
        if self.train.select.every and self.task == "pretrain":
            raise ConfigError("train.select.every: model selection scores a downstream task; pretraining has none")
        if self.train.select.every and (self.data.source != "corpus" or self.data.corpora):
            raise ConfigError("train.select.every: selection reads a corpus's annotations (data.source=corpus)")

    def build_preset(self) -> Preset:
        """The preset with this config's model overrides applied."""
        return get_preset(self.preset, **self.model)

    @property
    def model_config(self) -> ModelConfig:
        return self.build_preset().model

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "RunConfig":
        return from_dict(cls, data)

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)

    def override(self, *items: str) -> "RunConfig":
        """A copy with dotted ``key=value`` overrides (``train.max_steps=6``) applied and re-validated."""
        return override(self, *items)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


def with_data_facts(cfg: RunConfig) -> RunConfig:
    """``cfg`` with what the data decides filled in: ``model.feature_dim`` is the dimension of the feature store(s)
    the run reads (every corpus of a mixture must agree). Set by hand and different, it is an error naming both.
    A run on random data keeps the preset's."""
    from hero.features.store import FeatureStore

    sources = ({name: c for name, c in cfg.data.corpora.items() if c.source == "corpus" and c.weight > 0}
               if cfg.data.corpora else ({"data": cfg.data} if cfg.data.source == "corpus" else {}))
    dims: dict[str, int] = {}
    region_dims: dict[str, int] = {}
    for src in sources.values():
        if src.features:
            entries = FeatureStore(src.features).videos.values()
            found = {int(e["dim"]) for e in entries}
            if len(found) > 1:
                raise ConfigError(f"{src.features}: the feature store mixes feature dims {sorted(found)}")
            dims.update({src.features: d for d in found})
            region_dims.update({src.features: int(e["region_dim"]) for e in entries if "region_dim" in e})
    if not dims:
        return cfg
    cfg = _with_region_dim(cfg, region_dims)
    if len(set(dims.values())) > 1:
        raise ConfigError(f"data: the feature stores disagree on the feature dim: {dims}")
    dim = next(iter(dims.values()))
    given = cfg.model.get("feature_dim")
    if given is not None and int(given) != dim:
        raise ConfigError(f"model.feature_dim: {given} in the run config, but the feature store at "
                          f"{next(iter(dims))} holds {dim}-d features (leave it unset: the store decides)")
    return cfg if given is not None else from_dict(RunConfig, merge(cfg.to_dict(), {"model": {"feature_dim": dim}}))


def _with_region_dim(cfg: RunConfig, region_dims: dict[str, int]) -> RunConfig:
    """With ``model.regions``, ``model.region_dim`` from the store(s), as ``feature_dim`` is (a store without
    region features is refused where the data is read: ``features.no_regions``)."""
    if not cfg.model_config.regions or not region_dims:
        return cfg
    if len(set(region_dims.values())) > 1:
        raise ConfigError(f"data: the feature stores disagree on the region feature dim: {region_dims}")
    dim = next(iter(region_dims.values()))
    given = cfg.model.get("region_dim")
    if given is not None and int(given) != dim:
        raise ConfigError(f"model.region_dim: {given} in the run config, but the feature store at "
                          f"{next(iter(region_dims))} holds {dim}-d region features (leave it unset: the store decides)")
    return cfg if given is not None else from_dict(RunConfig, merge(cfg.to_dict(), {"model": {"region_dim": dim}}))


@dataclass(frozen=True)
class BatchLayout:
    """How the global batch is split: world_size ranks x accum micro-steps x micro_batch videos."""

    global_batch: int
    micro_batch: int
    accum: int
    world_size: int


def batch_layout(train: TrainConfig, world_size: int) -> BatchLayout:
    """Derive and check the per-rank micro-batch and accumulation for ``world_size`` ranks.

    Raises:
        ConfigError: naming ``train.global_batch`` / ``train.micro_batch`` when they do not split evenly.
    """
    g = train.global_batch
    if g % world_size:
        raise ConfigError(f"train.global_batch: {g} videos cannot be split evenly over {world_size} ranks")
    per_rank = g // world_size
    micro = train.micro_batch or per_rank
    if per_rank % micro:
        raise ConfigError(f"train.micro_batch: {micro} must divide the per-rank batch {per_rank} "
                          f"(train.global_batch={g} / world_size={world_size})")
    return BatchLayout(global_batch=g, micro_batch=micro, accum=per_rank // micro, world_size=world_size)


def load_run_config(path: str | Path | None, overrides: Sequence[str] = ()) -> RunConfig:
    """RunConfig from a YAML file (or defaults when ``path`` is None) with dotted overrides applied."""
    data: dict[str, Any] = {}
    if path is not None:
        text = Path(path).read_text()
        loaded = load_yaml(text) or {}
        if not isinstance(loaded, Mapping):
            raise ConfigError(f"{path}: the top level must be a mapping, got {type(loaded).__name__}")
        data = dict(loaded)
    return from_dict(RunConfig, merge(data, parse_overrides(overrides)))
