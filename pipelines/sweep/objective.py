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

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import optuna

from hero.config import ConfigError, merge
from hero.train.config import RunConfig
from pipelines import tracking
from pipelines.datasets import (
    MLFLOW_SINK,
    TrainingJob,
    open_manifest,
    open_store,
    run_job,
)
from pipelines.fingerprint import params_hash
from pipelines.launch import launch_torchrun
from pipelines.paths import layer
from pipelines.pretrain.nodes import corpus_run_config
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
        with tracking.current().child(f"sweep {self.cfg.study} / trial {trial.number}", params=values, tags=tags,
                                      inputs=tracking.inputs_of([self.manifest_info, self.features_info])) as run:
            try:
                value = self.evaluate_point(trial, values, run)
            except optuna.TrialPruned as err:  # a pruned trial is a finished MLflow run, not a failed one
                pruned = err
                run.set_tags({"optuna.state": "PRUNED"})
            else:
                run.log_metrics({"trial_value": value})
                run.set_tags({"optuna.state": "COMPLETE"})
        if pruned is not None:
            raise pruned
        return value

    def evaluate_point(self, trial: optuna.Trial, values: dict[str, Any], run: tracking.Run | None = None) -> float:
        """Pretrain with ``values``, then finetune rung by rung, reporting the val metric at each rung; the jobs' curves
        and the val metrics go to the trial's MLflow run ``run``."""
        run = run or tracking.Run(None, None)
        root = self.trial_dir(trial)
        name = root.relative_to(layer("06_models")).as_posix()
        pre_job = TrainingJob(name="pretrain", title=f"{name}/pretrain", config=apply_values(self.pretrain_cfg, values),
                              inputs=self.keys, launch=self.launch)
        pre = run_job(pre_job, root, log_into=run, prefix="pretrain/")
        ft_cfg = merge(self.finetune_cfg, {"train": {"init_from": pre["run_dir"]}})
        sinks = list(ft_cfg.get("train", {}).get("sinks", ["hero.train.sinks:JsonlSink"]))
        if run.run_id is not None and MLFLOW_SINK not in sinks:
            ft_cfg = merge(ft_cfg, {"train": {"sinks": [*sinks, MLFLOW_SINK]}})  # live curves
        RunConfig.from_dict(ft_cfg)  # fails here, naming the key, rather than inside the job
        ft_dir = root / "finetune" / params_hash(ft_cfg)  # never resumes a run of another study of the same name

        def train_to(step: int) -> None:
            launch_torchrun(merge(ft_cfg, {"train": {"stop_after": step}}), ft_dir, self.launch,
                            extra_env=run.env("finetune/"))

        def validate(step: int) -> float:
            value, metrics = self.validate(ft_dir, root / "predictions", step)
            run.log_metrics(metrics, step=step)
            return value

        def on_value(step: int, value: float) -> None:
            run.log_metrics({"objective": value}, step=step)

        return rung_loop(trial, self.cfg.objective.rungs, train_to, validate, on_value)

    def validate(self, run_dir: Path, out_root: Path, step: int) -> tuple[float, dict[str, float]]:
        """The objective metric of the finetuning checkpoint at ``step``, and every val metric (``val/<metric>``)."""
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
        log.info("%s, finetuning step %d: %s = %.4g", out_root.parent.name, step, obj.metric_key, metrics[obj.metric_key])
        return metrics[obj.metric_key], {k.replace(f"{obj.dataset}/{obj.split}/", "val/"): v for k, v in metrics.items()}

    def _data(self) -> tuple[Any, Any]:
        """The manifest and the feature store, opened once per worker."""
        if self._loaded is None:
            self._loaded = open_manifest(self.manifest_info), open_store(self.features_info)
        return self._loaded
