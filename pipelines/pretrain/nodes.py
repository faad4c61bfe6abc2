"""Pretrain node: params -> a validated run config -> `torchrun -m hero.train` -> checkpoint + metric history."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hero.config import merge
from hero.presets import preset_tokenizer
from hero.storage.atomic import write_text_atomic
from hero.train.config import RunConfig
from pipelines import tracking
from pipelines.fingerprint import params_hash
from pipelines.launch import launch_torchrun
from pipelines.paths import layer
from pipelines.settings import project_root
from pipelines.reporting import plot_curves, read_metrics_jsonl
from pipelines.sweep.space import flat

log = logging.getLogger(__name__)

DONE = "done.json"


def corpus_run_config(run: dict[str, Any], manifest_info: dict[str, Any], features_info: dict[str, Any],
                      text: dict[str, Any] | None = None) -> dict[str, Any]:
    """The job's config: ``run`` with the corpus and the feature store filled in (the model's feature dimension is
    read from the store by the trainer), and the tokenizer of ``params:text`` (``text.tokenizer``; a relative path is taken from the project root) as
    ``data.tokenizer`` when it names one (None keeps the run's own choice, by default the preset's)."""
    data = {"source": "corpus", "path": manifest_info["path"], "features": features_info["path"]}
    tokenizer = (text or {}).get("tokenizer")
    if tokenizer:
        data["tokenizer"] = tokenizer_location(str(tokenizer))
    return merge(run, {"data": data})


def tokenizer_location(tokenizer: str) -> str:
    """``minilm`` or an absolute path as given; a relative path from the project root (jobs run elsewhere)."""
    if tokenizer == "minilm" or Path(tokenizer).is_absolute():
        return tokenizer
    return str(project_root() / tokenizer)


def run_job(name: str, cfg: dict[str, Any], launch: dict[str, Any], key_parts: dict[str, Any],
            mlflow_prefix: str = "") -> dict[str, Any]:
    """Launch one training job in ``data/06_models/<name>/<key>/`` unless that run already finished.

    The key hashes the resolved config and the data it reads, so a re-run with unchanged inputs costs nothing,
    and an interrupted run resumes from its latest checkpoint (hero.train does that by itself).
    """
    checked = RunConfig.from_dict(cfg)  # a bad config fails here, in the Kedro process, naming its dotted key
    if checked.data.source == "corpus" and not checked.data.corpora:   # and a tokenizer that does not fit the preset
        preset_tokenizer(checked.build_preset(), checked.data.tokenizer)
    key = params_hash({"cfg": cfg, **key_parts})
    run_dir = layer("06_models") / name / key
    done = run_dir / DONE
    if done.exists():
        log.info("%s: finished run %s found; not retraining", name, run_dir)
    else:
        sinks = list(cfg.get("train", {}).get("sinks", ["hero.train.sinks:JsonlSink"]))
        if "pipelines.tracking:MlflowSink" not in sinks:
            sinks.append("pipelines.tracking:MlflowSink")
        cfg = merge(cfg, {"train": {"sinks": sinks}})
        launch_torchrun(cfg, run_dir, launch, extra_env=tracking.job_env(prefix=mlflow_prefix), label=name)
        done.write_text('{"finished": true}\n')
    rows = read_metrics_jsonl(run_dir / "metrics.jsonl") if (run_dir / "metrics.jsonl").exists() else []
    picture = plot_curves(rows, run_dir / "curves.png", title=f"{name} ({run_dir.name})")
    if picture:
        tracking.log_artifact(picture, "plots")
    tracking.log_artifact(run_dir / "config.yaml", "config")
    last = rows[-1] if rows else {}
    return {"run_dir": str(run_dir), "key": key, "final": {k: v for k, v in last.items() if isinstance(v, (int, float))}}


def tuned_run(run: dict[str, Any], sweep_best: dict[str, Any] | None) -> dict[str, Any]:
    """``run`` with the best values of the last sweep merged in (``params:sweep_best``, written by the sweep
    pipeline into conf/base/parameters_sweep_best.yml; empty until a sweep completes a trial)."""
    if not sweep_best:
        return run
    log.info("pretrain: tuned values from params:sweep_best applied: %s",
             ", ".join(f"{k}={v}" for k, v in flat(sweep_best).items()))
    return merge(run, sweep_best)


def pretrain(pretrain: dict[str, Any], launch: dict[str, Any], manifest_info: dict[str, Any],
             features_info: dict[str, Any], sweep_best: dict[str, Any] | None = None,
             text: dict[str, Any] | None = None) -> dict[str, Any]:
    """Pretrain on the corpus with the task mix of ``params:pretrain.run`` (plus the sweep's tuned values) and the
    tokenizer of ``params:text``.

    Returns:
        ``{"run_dir", "key", "final"}``: where the checkpoints are, and the last logged metrics.
    """
    cfg = corpus_run_config(tuned_run(pretrain["run"], sweep_best), manifest_info, features_info, text)
    tracking.set_tags({"corpus": manifest_info["key"], "features": features_info["key"]})
    info = run_job("pretrain", cfg, launch, {"manifest": manifest_info["key"], "features": features_info["key"]},
                   mlflow_prefix="pretrain/")
    write_loss_csv(Path(info["run_dir"]) / "metrics.jsonl", layer("08_reporting") / "pretrain_loss.csv")
    return info


def write_loss_csv(metrics_jsonl: Path, out: Path) -> None:
    """step,loss rows for `dvc plots show` (the per-step training loss of the pretraining run)."""
    rows = read_metrics_jsonl(metrics_jsonl) if metrics_jsonl.exists() else []
    write_text_atomic(out, "step,loss\n" + "".join(f"{r['step']},{r['train/loss']}\n" for r in rows if "train/loss" in r))


