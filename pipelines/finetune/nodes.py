"""Finetune nodes: one job per (task, initialisation), each an MLflow child run of the pipeline's run."""

from __future__ import annotations

import concurrent.futures
import functools
import logging
import os
from collections.abc import Callable
from typing import Any, TypeVar

from hero.config import merge
from pipelines import tracking
from pipelines.pretrain.nodes import corpus_run_config, run_job

log = logging.getLogger(__name__)
T = TypeVar("T")


def job_launch(launch: dict[str, Any], parallel: int) -> dict[str, Any]:
    """``launch`` for one of ``parallel`` jobs sharing this machine: the CPU threads split between them.

    Two 1-thread jobs side by side do ~1.7x the work of one 2-thread job on a 2-core CPU (small matmuls scale
    badly across threads), which is why the pretrained and from-scratch jobs of a task run together.
    """
    if parallel <= 1 or launch.get("omp_num_threads"):
        return launch
    per_job = max(1, (os.cpu_count() or 1) // (parallel * int(launch.get("nproc_per_node", 1))))
    return merge(launch, {"omp_num_threads": per_job})


def finetune_task(finetune: dict[str, Any], launch: dict[str, Any], manifest_info: dict[str, Any],
                  features_info: dict[str, Any], pretrain_info: dict[str, Any], text: dict[str, Any] | None = None,
                  *, dataset: str) -> dict[str, Any]:
    """Finetune ``dataset``'s task from the pretrained checkpoint and, for comparison, from scratch.

    Args:
        finetune: ``params:finetune``: ``run`` (the shared job config), ``tasks`` (per-dataset overrides),
            ``inits`` (which of ``pretrained`` / ``scratch`` to train), ``parallel_jobs`` (how many of those
            jobs run at once; 1 = one after the other), ``datasets`` (which datasets to finetune at all; absent:
            every one the pipeline has a namespace for).
        pretrain_info: the pretraining run whose latest checkpoint initialises the ``pretrained`` job.
        text: ``params:text``: the tokenizer of every job (`pipelines.pretrain.nodes.corpus_run_config`).

    Returns:
        ``{init: {"run_dir", "key", "final", "mlflow_run_id"}}``; ``{}`` for a dataset left out of ``datasets``.
    """
    selected = finetune.get("datasets")
    if selected is not None and dataset not in selected:
        log.info("%s: not in finetune.datasets %s; not finetuned", dataset, list(selected))
        return {}
    inits = list(finetune.get("inits", ["pretrained", "scratch"]))
    parallel = max(1, min(int(finetune.get("parallel_jobs", 1)), len(inits)))
    parent = tracking.active_run_id()
    job_launch_cfg = job_launch(launch, parallel)

    def one(init: str) -> dict[str, Any]:
        cfg = finetune_run_config(finetune, dataset, init, manifest_info, features_info, pretrain_info, text)
        keys = {"manifest": manifest_info["key"], "features": features_info["key"],
                "pretrain": pretrain_info["key"] if init == "pretrained" else None}
        with tracking.child_run(f"finetune/{dataset}/{init}", tags={"task": dataset, "init": init},
                                parent_run_id=parent if parallel > 1 else None) as run_id:
            # the job's resolved config as params, so MLflow's compare view sets pretrained against scratch
            tracking.log_params({"init": init, **cfg})
            info = run_job(f"finetune/{dataset}-{init}", cfg, job_launch_cfg, keys)
        return {**info, "mlflow_run_id": run_id}

    return side_by_side({init: functools.partial(one, init) for init in inits}, parallel)


def finetune_run_config(finetune: dict[str, Any], dataset: str, init: str, manifest_info: dict[str, Any],
                        features_info: dict[str, Any], pretrain_info: dict[str, Any],
                        text: dict[str, Any] | None = None) -> dict[str, Any]:
    """The config of ``dataset``'s ``init`` job (``pretrained`` starts from ``pretrain_info``'s run, ``scratch``
    from the preset): ``finetune.run`` with ``finetune.tasks.<dataset>`` merged in, on the corpus."""
    run = merge(finetune["run"], finetune.get("tasks", {}).get(dataset) or {})
    cfg = corpus_run_config(run, manifest_info, features_info, text)
    return merge(cfg, {"task": dataset, "train": {"init_from": pretrain_info["run_dir"] if init == "pretrained" else None}})


def side_by_side(jobs: dict[str, Callable[[], T]], parallel: int) -> dict[str, T]:
    """Run ``jobs`` (name -> thunk), at most ``parallel`` at once; results by name, in the given order.

    Each thunk launches a torchrun subprocess, so threads suffice. A failure is raised once every started
    job has ended (the other job's work is kept: it is cached by content address).
    """
    if parallel <= 1:
        return {name: job() for name, job in jobs.items()}
    log.info("%d jobs side by side: %s", min(parallel, len(jobs)), ", ".join(jobs))
    with concurrent.futures.ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="job") as pool:
        futures = {name: pool.submit(job) for name, job in jobs.items()}
        return {name: fut.result() for name, fut in futures.items()}
