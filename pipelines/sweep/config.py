"""`SweepConfig`: ``params:sweep`` (conf/base/parameters_sweep.yml), typed and strict like every run config.

A bad value fails before any trial runs, with the dotted key of the offending entry
(``sweep.space.optim.lr.low: must be > 0 when log is true``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from hero.config import ConfigError, from_dict


@dataclass(frozen=True, kw_only=True)
class ParamSpec:
    """One dimension of the search space: a distribution for one dotted key of the pretrain run config."""

    type: Literal["float", "int", "categorical"]
    low: float | None = None
    high: float | None = None
    log: bool = False
    """Sample uniformly in log space (learning rates); needs ``low > 0``."""
    step: float | None = None
    """Grid spacing (float/int); None = continuous (float) or 1 (int). Not allowed with ``log``."""
    choices: list[Any] | None = None
    """categorical: the values to choose among (None, bool, int, float or str, as Optuna stores them)."""

    def __post_init__(self) -> None:
        if self.type == "categorical":
            if not self.choices:
                raise ConfigError("choices: a categorical parameter needs a non-empty list of choices")
            for c in self.choices:
                if c is not None and not isinstance(c, (bool, int, float, str)):
                    raise ConfigError(f"choices: {c!r} is not None, bool, int, float or str")
            if self.low is not None or self.high is not None or self.log or self.step is not None:
                raise ConfigError("type: categorical takes only choices (not low/high/log/step)")
            return
        if self.choices is not None:
            raise ConfigError(f"choices: only for type categorical, not {self.type}")
        if self.low is None or self.high is None:
            raise ConfigError(f"low: a {self.type} parameter needs low and high")
        if not (math.isfinite(self.low) and math.isfinite(self.high)) or self.low >= self.high:
            raise ConfigError(f"low: must be finite and < high, got low={self.low}, high={self.high}")
        if self.log and self.low <= 0:
            raise ConfigError(f"low: must be > 0 when log is true, got {self.low}")
        if self.log and self.step is not None:
            raise ConfigError("step: cannot be combined with log: true")
        if self.step is not None and self.step <= 0:
            raise ConfigError(f"step: must be > 0, got {self.step}")
        if self.type == "int":
            for name in ("low", "high", "step"):
                v = getattr(self, name)
                if v is not None and v != int(v):
                    raise ConfigError(f"{name}: an int parameter needs whole numbers, got {v}")


@dataclass(frozen=True, kw_only=True)
class SamplerConfig:
    type: Literal["tpe", "random"] = "tpe"
    seed: int = 0
    """Trial ``n`` samples with seed ``seed + n``: reproducible with one worker, distinct across workers."""
    n_startup_trials: int = 5
    """tpe: random trials before the model takes over."""
    constant_liar: bool = True
    """tpe: count other workers' running trials as bad, so parallel workers do not propose the same point."""

    def __post_init__(self) -> None:
        if self.n_startup_trials < 0:
            raise ConfigError(f"n_startup_trials: must be >= 0, got {self.n_startup_trials}")


@dataclass(frozen=True, kw_only=True)
class PrunerConfig:
    type: Literal["median", "successive_halving", "none"] = "median"
    n_startup_trials: int = 3
    """median: trials that run to the end before any trial is pruned."""
    n_warmup_steps: int = 0
    """median: a trial is not pruned before this step (finetuning steps, the unit of the rungs)."""
    min_resource: int | None = None
    """successive_halving: steps of the first rung (None = Optuna's "auto")."""
    reduction_factor: int = 3
    """successive_halving: keep the best 1/reduction_factor at each rung."""

    def __post_init__(self) -> None:
        for key in ("n_startup_trials", "n_warmup_steps"):
            if getattr(self, key) < 0:
                raise ConfigError(f"{key}: must be >= 0, got {getattr(self, key)}")
        if self.min_resource is not None and self.min_resource < 1:
            raise ConfigError(f"min_resource: must be >= 1, got {self.min_resource}")
        if self.reduction_factor < 2:
            raise ConfigError(f"reduction_factor: must be >= 2, got {self.reduction_factor}")


@dataclass(frozen=True, kw_only=True)
class RecoveryConfig:
    """How trials of a dead worker are found and run again (pipelines.sweep.study)."""

    heartbeat_interval: float = 30.0
    """Seconds between two heartbeats of a running trial (written into the study's storage)."""
    grace_period: float = 300.0
    """A running trial whose heartbeat is older than this is failed and re-enqueued with the same params.
    Must exceed the heartbeat interval plus any clock skew between machines. On the worker's own host a
    trial whose process is gone is recovered at once."""
    max_retry: int = 2
    """Times one set of params is re-run after its workers died; then a fresh trial takes the slot."""
    poll: float = 10.0
    """Seconds between checks while the study's last trials run on other workers."""

    def __post_init__(self) -> None:
        for key in ("heartbeat_interval", "poll"):
            if getattr(self, key) <= 0:
                raise ConfigError(f"{key}: must be > 0 seconds, got {getattr(self, key)}")
        if self.grace_period <= self.heartbeat_interval:
            raise ConfigError(f"grace_period: must exceed heartbeat_interval={self.heartbeat_interval}, "
                              f"got {self.grace_period}")
        if self.max_retry < 0:
            raise ConfigError(f"max_retry: must be >= 0, got {self.max_retry}")


@dataclass(frozen=True, kw_only=True)
class ObjectiveConfig:
    """The proxy: a short pretraining, then finetuning ``dataset`` with the val metric read at each rung."""

    dataset: str = "retrieval"
    """The downstream dataset finetuned and validated (tvr, tvqa, violin, tvc, retrieval)."""
    metric: str = "r5"
    """Metric name as hero.eval.predict reports it (``<dataset>/<split>/<metric>``)."""
    split: str = "val"
    direction: Literal["maximize", "minimize"] = "maximize"
    rungs: tuple[int, ...] = (20, 40, 60)
    """Finetuning steps at which the metric is measured and reported to the pruner; the last one is the
    finetuning length (a pruned trial stops training at its rung)."""
    pretrain: dict[str, Any] = field(default_factory=dict)
    """Overrides of ``params:pretrain.run`` for the proxy (e.g. a shorter ``train.max_steps``)."""
    finetune: dict[str, Any] = field(default_factory=dict)
    """Overrides of the dataset's finetuning run (``params:finetune``)."""
    predict: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments of hero.eval.predict.predict_split (default: ``params:evaluate.options.<dataset>``)."""
    corpora: dict[str, Any] = field(default_factory=dict)
    """Pretrain the proxy on a mixture of corpora instead of the main corpus: ``name -> "main" | a mapping of
    params:corpus values`` (as ``data_ablation.corpora``; built by the corpus and features nodes). The space may
    then hold ``data.corpora.<name>.weight``. Finetuning and validation stay on the main corpus."""
    weights: dict[str, float] = field(default_factory=dict)
    """Mixture weights of ``corpora`` where the space does not sample them (default 1 each)."""

    def __post_init__(self) -> None:
        if not self.rungs or any(r < 1 for r in self.rungs) or list(self.rungs) != sorted(set(self.rungs)):
            raise ConfigError(f"rungs: need strictly increasing steps >= 1, got {list(self.rungs)}")
        unknown = sorted(set(self.weights) - set(self.corpora))
        if unknown:
            raise ConfigError(f"weights: {', '.join(unknown)} not in objective.corpora ({', '.join(self.corpora) or 'none'})")

    @property
    def metric_key(self) -> str:
        return f"{self.dataset}/{self.split}/{self.metric}"


@dataclass(frozen=True, kw_only=True)
class SweepConfig:
    study: str = "hero-sweep"
    storage: str = "sqlite:///data/06_models/sweep/optuna.db"
    """``sqlite:///PATH`` (default; one machine), any SQLAlchemy URL (``postgresql://user@host/db``: many
    machines), ``journal:PATH`` (an append-only file, e.g. on a shared file system) or ``env:VAR`` (the URL
    is read from that environment variable, so a password never lands in a params file or in MLflow).
    Relative paths are relative to the project root."""
    n_trials: int = 20
    """Trials of the whole study (every worker together, across restarts): COMPLETE + PRUNED ends at this."""
    timeout: float | None = None
    """Seconds after which this worker starts no new trial (None: no limit)."""
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    pruner: PrunerConfig = field(default_factory=PrunerConfig)
    recovery: RecoveryConfig = field(default_factory=RecoveryConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    space: dict[str, ParamSpec] = field(default_factory=dict)
    """Dotted key of the pretrain run config (``pretrain.tasks.mlm``, ``optim.lr``) -> its distribution."""

    def __post_init__(self) -> None:
        if not self.study or "/" in self.study:
            raise ConfigError(f"study: must be a non-empty name without '/', got {self.study!r}")
        if self.n_trials < 1:
            raise ConfigError(f"n_trials: must be >= 1, got {self.n_trials}")
        if self.timeout is not None and self.timeout <= 0:
            raise ConfigError(f"timeout: must be > 0 seconds or null, got {self.timeout}")
        if not self.space:
            raise ConfigError("space: needs at least one parameter to search")

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> SweepConfig:
        """From ``params:sweep``; errors name ``sweep.<dotted key>``."""
        return from_dict(cls, params, _path="sweep")
