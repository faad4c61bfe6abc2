"""Finetune nodes: one job per (task, initialisation), each an MLflow child run of the pipeline's run."""

from __future__ import annotations

import logging
from typing import Any

from hero.config import merge
from pipelines import tracking
from pipelines.pretrain.nodes import corpus_run_config, run_job

log = logging.getLogger(__name__)


def finetune_task(finetune: dict[str, Any], launch: dict[str, Any], manifest_info: dict[str, Any],
                  features_info: dict[str, Any], pretrain_info: dict[str, Any], *, dataset: str) -> dict[str, Any]:
    """Finetune ``dataset``'s task from the pretrained checkpoint and, for comparison, from scratch.

    Args:
        finetune: ``params:finetune``: ``run`` (the shared job config), ``tasks`` (per-dataset overrides),
            ``inits`` (which of ``pretrained`` / ``scratch`` to train).
        pretrain_info: the pretraining run whose latest checkpoint initialises the ``pretrained`` job.

    Returns:
        ``{init: {"run_dir", "key", "final", "mlflow_run_id"}}``.
    """
    run = merge(finetune["run"], finetune.get("tasks", {}).get(dataset) or {})
    out: dict[str, Any] = {}
    for init in finetune.get("inits", ["pretrained", "scratch"]):
        cfg = corpus_run_config(run, manifest_info, features_info)
        cfg = merge(cfg, {"task": dataset, "train": {"init_from": pretrain_info["run_dir"] if init == "pretrained" else None}})
        keys = {"manifest": manifest_info["key"], "features": features_info["key"],
                "pretrain": pretrain_info["key"] if init == "pretrained" else None}
        with tracking.child_run(f"finetune/{dataset}/{init}", tags={"task": dataset, "init": init}) as run_id:
            info = run_job(f"finetune/{dataset}-{init}", cfg, launch, keys)
        out[init] = {**info, "mlflow_run_id": run_id}
    return out
