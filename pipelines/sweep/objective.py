"""The proxy objective of one trial: a short pretraining, then finetuning one dataset in rungs, scored on val.

Both jobs are real `torchrun` jobs launched like every other (`run_job`, `launch_torchrun`). The finetuning
job runs rung by rung: ``train.stop_after`` ends it at the rung's step with a checkpoint, the val metric of
that checkpoint is reported to the pruner, and the next rung resumes the same run directory exactly (the
schedule always spans the last rung). So the intermediate values are the objective itself measured after
less finetuning, and a pruned trial really stops training at its rung.

Artifacts go under ``data/06_models/sweep/<study>/trial_<n>/`` (``pretrain/<key>/``, ``finetune/<key>/``,
``predictions/step-<k>/``). Each trial is an MLflow child run of the sweep's run: its sampled params, the
jobs' live loss curves (``pretrain/…``, ``finetune/…``), the val metrics at every rung
(``val/<metric>`` and ``objective`` against the finetuning step) and the value Optuna got (``trial_value``).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import optuna

from hero.config import ConfigError, merge
from hero.train.config import RunConfig
from pipelines import tracking
from pipelines.fingerprint import params_hash
from pipelines.launch import launch_torchrun
from pipelines.paths import layer
from pipelines.pretrain.nodes import corpus_run_config, run_job
from pipelines.sweep.config import SweepConfig
from pipelines.sweep.space import apply_values, suggest

log = logging.getLogger(__name__)


def proxy_pretrain_config(cfg: SweepConfig, pretrain_run: dict[str, Any], manifest_info: dict[str, Any],
                          features_info: dict[str, Any], corpora: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """``params:pretrain.run`` with the proxy's overrides, reading the main corpus or, when ``corpora`` (built from
    ``sweep.objective.corpora``) is given, their mixture with ``sweep.objective.weights`` (default 1 each)."""
    from pipelines.data_ablation.nodes import mixture_run_config

    run = merge(pretrain_run, cfg.objective.pretrain)
    if not corpora:
        return corpus_run_config(run, manifest_info, features_info)
    return mixture_run_config(run, corpora, {name: cfg.objective.weights.get(name, 1.0) for name in corpora})


def rung_loop(trial: optuna.Trial, rungs: Sequence[int], train_to: Callable[[int], None],
              validate: Callable[[int], float], on_value: Callable[[int, float], None] | None = None) -> float:
    """Train to each rung, measure, report; stop as soon as the pruner says so.

    Raises:
        optuna.TrialPruned: at the first rung where ``trial.should_prune()``; no further training happens.
    """
    value = float("nan")
    for step in rungs:
        train_to(step)
        value = validate(step)
        trial.report(value, step)
        if on_value is not None:
            on_value(step, value)
        if trial.should_prune():
            raise optuna.TrialPruned(f"trial {trial.number} pruned at finetuning step {step} ({value:.4g})")
    return value


class ProxyObjective:
    """``objective(trial) -> val metric`` for `pipelines.sweep.study.run_worker`.

    Args:
        pretrain_cfg: the proxy's pretraining job config with its data filled in (`proxy_pretrain_config`), the
            base the sampled values are merged into.
        finetune: ``params:finetune`` (its ``run`` and ``tasks.<dataset>`` give the finetuning job).
        evaluate: ``params:evaluate`` (``options.<dataset>``: predict_split's arguments).
    """

    def __init__(self, cfg: SweepConfig, pretrain_cfg: dict[str, Any], finetune: dict[str, Any],
                 evaluate: dict[str, Any], launch: dict[str, Any], manifest_info: dict[str, Any],
                 features_info: dict[str, Any]) -> None:
        from hero.tasks import datasets

        obj = cfg.objective
        if obj.dataset not in datasets():
            raise ConfigError(f"sweep.objective.dataset: {obj.dataset!r} is not one of {sorted(datasets())}")
        self.cfg, self.launch = cfg, launch
        self.manifest_info, self.features_info = manifest_info, features_info
        self.pretrain_cfg = pretrain_cfg
        ft_run = merge(merge(finetune["run"], finetune.get("tasks", {}).get(obj.dataset) or {}), obj.finetune)
        self.finetune_cfg = merge(corpus_run_config(ft_run, manifest_info, features_info),
                                  {"task": obj.dataset, "train": {"max_steps": obj.rungs[-1]}})
        self.predict_opts = {**evaluate.get("options", {}).get(obj.dataset, {}), **obj.predict}
        self.keys = {"manifest": manifest_info["key"], "features": features_info["key"]}
        self._loaded: tuple[Any, Any] | None = None

    def trial_dir(self, trial: optuna.Trial) -> Path:
        return layer("06_models") / "sweep" / self.cfg.study / f"trial_{trial.number}"

    def __call__(self, trial: optuna.Trial) -> float:
        values = suggest(trial, self.cfg.space)
        tags = {"optuna.study": self.cfg.study, "optuna.trial": str(trial.number)}
        if "retry_of" in trial.user_attrs:
            tags["optuna.retry_of"] = str(trial.user_attrs["retry_of"])
        pruned: optuna.TrialPruned | None = None
        with tracking.child_run(f"sweep/{self.cfg.study}/trial_{trial.number}", tags=tags):
            tracking.log_params(values)
            try:
                value = self.evaluate_point(trial, values)
            except optuna.TrialPruned as err:  # a pruned trial is a finished MLflow run, not a failed one
                pruned = err
                tracking.set_tags({"optuna.state": "PRUNED"})
            else:
                tracking.log_metrics({"trial_value": value})
                tracking.set_tags({"optuna.state": "COMPLETE"})
        if pruned is not None:
            raise pruned
        return value

    def evaluate_point(self, trial: optuna.Trial, values: dict[str, Any]) -> float:
        """Pretrain with ``values``, then finetune rung by rung, reporting the val metric at each rung."""
        root = self.trial_dir(trial)
        name = root.relative_to(layer("06_models")).as_posix()
        pre_cfg = apply_values(self.pretrain_cfg, values)
        pre = run_job(f"{name}/pretrain", pre_cfg, self.launch, self.keys, mlflow_prefix="pretrain/")
        ft_cfg = merge(self.finetune_cfg, {"train": {"init_from": pre["run_dir"]}})
        sinks = list(ft_cfg.get("train", {}).get("sinks", ["hero.train.sinks:JsonlSink"]))
        if tracking.active_run_id() is not None and "pipelines.tracking:MlflowSink" not in sinks:
            ft_cfg = merge(ft_cfg, {"train": {"sinks": [*sinks, "pipelines.tracking:MlflowSink"]}})  # live curves
        RunConfig.from_dict(ft_cfg)  # fails here, naming the key, rather than inside the job
        ft_dir = root / "finetune" / params_hash(ft_cfg)  # never resumes a run of another study of the same name

        def train_to(step: int) -> None:
            launch_torchrun(merge(ft_cfg, {"train": {"stop_after": step}}), ft_dir, self.launch,
                            extra_env=tracking.job_env(prefix="finetune/"))

        def on_value(step: int, value: float) -> None:
            tracking.log_metrics({"objective": value}, step=step)

        return rung_loop(trial, self.cfg.objective.rungs, train_to,
                         functools.partial(self.validate, ft_dir, root / "predictions"), on_value)

    def validate(self, run_dir: Path, out_root: Path, step: int) -> float:
        """The objective metric of the finetuning checkpoint at ``step``; every val metric goes to the trial's run."""
        from hero.eval.predict import predict_split
        from hero.presets import preset_tokenizer
        from hero.train.finetune import load_task_model

        obj = self.cfg.objective
        model, preset = load_task_model(run_dir, step=step)
        manifest, store = self._data()
        res = predict_split(model, obj.dataset, manifest, store, preset_tokenizer(preset), obj.split,
                            out_root / f"step-{step}", **self.predict_opts)
        metrics = res["metrics"]
        if obj.metric_key not in metrics:
            raise ConfigError(f"sweep.objective.metric: {obj.metric_key} is not among the metrics of "
                              f"{obj.dataset}/{obj.split}: {sorted(metrics)}")
        tracking.log_metrics({k.replace(f"{obj.dataset}/{obj.split}/", "val/"): v for k, v in metrics.items()}, step=step)
        log.info("%s, finetuning step %d: %s = %.4g", out_root.parent.name, step, obj.metric_key, metrics[obj.metric_key])
        return metrics[obj.metric_key]

    def _data(self) -> tuple[Any, Any]:
        """The manifest and the feature store, opened once per worker."""
        if self._loaded is None:
            from hero.corpus.manifest import Manifest
            from hero.features.store import FeatureStore

            self._loaded = Manifest.load(self.manifest_info["path"]), FeatureStore(self.features_info["path"])
        return self._loaded
