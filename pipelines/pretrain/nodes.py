"""Pretrain nodes: params -> a validated job config (`TrainingJob`); `pipelines.datasets.RunDirDataset` runs it under
torchrun unless its run directory is already done; then the loss curves as a picture for `dvc plots`."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hero.config import merge
from pipelines.datasets import TrainingJob, read_metrics
from pipelines.paths import relative
from pipelines.sweep.space import flat

log = logging.getLogger(__name__)


def corpus_run_config(run: dict[str, Any], manifest_info: dict[str, Any], features_info: dict[str, Any],
                      text: dict[str, Any] | None = None) -> dict[str, Any]:
    """The job's config: ``run`` with the corpus and the feature store filled in (the trainer reads the feature
    dimension from the store), and the tokenizer of ``params:text`` (``text.tokenizer``; a relative path is taken from the project root, where jobs run)
    as ``data.tokenizer`` when it names one (None keeps the run's own choice, by default the preset's)."""
    data = {"source": "corpus", "path": manifest_info["path"], "features": features_info["path"]}
    tokenizer = (text or {}).get("tokenizer")
    if tokenizer:
        data["tokenizer"] = tokenizer_location(str(tokenizer))
    return merge(run, {"data": data})


def tokenizer_location(tokenizer: str) -> str:
    """``minilm`` as given; a path as the project records it (relative to the project root when inside it)."""
    return tokenizer if tokenizer == "minilm" else relative(Path(tokenizer).expanduser())


def tuned_run(run: dict[str, Any], sweep_best: dict[str, Any] | None) -> dict[str, Any]:
    """``run`` with the best values of the last sweep merged in (the ``sweep_best`` dataset: the file that
    globals.yml's ``sweep_best_file`` names, written by the sweep pipeline; empty until a sweep completes a trial)."""
    if not sweep_best:
        return run
    log.info("pretrain: tuned values from the last sweep applied: %s",
             ", ".join(f"{k}={v}" for k, v in flat(sweep_best).items()))
    return merge(run, sweep_best)


def job_title(kind: str, cfg: dict[str, Any]) -> str:
    """``pretrain hero-mini 200 steps``: what a job is, for its MLflow run's name."""
    steps = (cfg.get("train") or {}).get("max_steps")
    return " ".join(str(p) for p in (kind, cfg.get("preset"), f"{steps} steps" if steps else None) if p)


def pretrain(pretrain: dict[str, Any], launch: dict[str, Any], manifest_info: dict[str, Any],
             features_info: dict[str, Any], sweep_best: dict[str, Any] | None = None,
             text: dict[str, Any] | None = None) -> TrainingJob:
    """The pretraining job on the corpus: the task mix of ``params:pretrain.run`` (plus the sweep's tuned values) and
    the tokenizer of ``params:text``."""
    cfg = corpus_run_config(tuned_run(pretrain["run"], sweep_best), manifest_info, features_info, text)
    return TrainingJob(name="", title=job_title("pretrain", cfg), config=cfg, launch=launch,
                       inputs={"manifest": manifest_info["key"], "features": features_info["key"]},
                       tags={"task": "pretrain"}, data=(manifest_info, features_info))


def plot_pretrain_loss(pretrain_info: dict[str, Any]):
    """The pretraining run's loss per objective against step (a matplotlib figure; `dvc plots show` shows it)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_metrics(pretrain_info["run_dir"])
    objectives = sorted({k for r in rows for k in r if k.startswith("train/") and k.endswith("/loss") and k.count("/") == 2})
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    for name in ["train/loss_mean", *objectives]:  # the total (averaged over each log window), then each objective
        pts = [(r["step"], r[name]) for r in rows if isinstance(r.get(name), (int, float))]
        if pts:
            label = "total (mean)" if name == "train/loss_mean" else name.split("/")[1]
            ax.plot(*zip(*pts), lw=2.0 if name == "train/loss_mean" else 1.1, label=label)
    ax.set(xlabel="step", ylabel="loss", title=f"pretraining loss ({pretrain_info['key']})")
    ax.grid(alpha=0.3)
    if ax.lines:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
