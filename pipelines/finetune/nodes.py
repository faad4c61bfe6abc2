"""Finetune nodes: one job per (task, initialisation), asked of `pipelines.datasets.RunDirDataset`, which runs them
side by side and gives each its MLflow child run (``tvr / pretrained``)."""

from __future__ import annotations

import logging
import os
from typing import Any

from hero.config import merge
from pipelines.datasets import JobSet, TrainingJob
from pipelines.pretrain.nodes import corpus_run_config

log = logging.getLogger(__name__)


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
                  *, dataset: str) -> JobSet:
    """Finetune ``dataset``'s task from the pretrained checkpoint and, for comparison, from scratch.

    Args:
        finetune: ``params:finetune``: ``run`` (the shared job config), ``tasks`` (per-dataset overrides),
            ``inits`` (which of ``pretrained`` / ``scratch`` to train), ``parallel_jobs`` (how many of those
            jobs run at once; 1 = one after the other), ``datasets`` (which datasets to finetune at all; absent:
            every one the pipeline has a namespace for), ``seeds`` (finetuning seeds per init, default 1: the
            results table's intervals then cover examples and seeds; the jobs of seed k > 0 are named
            ``<init>@seed<k>``).
        pretrain_info: the pretraining run whose latest checkpoint initialises the ``pretrained`` job.
        text: ``params:text``: the tokenizer of every job (`pipelines.pretrain.nodes.corpus_run_config`).

    Returns:
        the jobs by init (the record is ``{init: {"run_dir", "key", "final", "mlflow_run_id"}}``); none for a
        dataset left out of ``datasets``.
    """
    selected = finetune.get("datasets")
    if selected is not None and dataset not in selected:
        log.info("%s: not in finetune.datasets %s; not finetuned", dataset, list(selected))
        return JobSet({})
    inits = list(finetune.get("inits", ["pretrained", "scratch"]))
    parallel = max(1, min(int(finetune.get("parallel_jobs", 1)), len(inits)))
    launch = job_launch(launch, parallel)
    seeds = int(finetune.get("seeds", 1))
    if seeds < 1:
        raise ValueError(f"finetune.seeds: must be >= 1, got {seeds}")
    jobs = {}
    for k in range(seeds):
        for init in inits:
            job, config = with_seed(init, finetune_run_config(finetune, dataset, init, manifest_info, features_info,
                                                              pretrain_info, text), k)
            jobs[job] = TrainingJob(
                name=f"{dataset}-{job.replace('@', '-')}", title=f"{dataset} / {job}", launch=launch, config=config,
                inputs={"manifest": manifest_info["key"], "features": features_info["key"],
                        "pretrain": pretrain_info["key"] if init == "pretrained" else None},
                params={"init": init, "seed_index": k}, tags={"task": dataset, "init": init},
                data=(manifest_info, features_info))
    return JobSet(jobs, parallel)


def seeded_name(name: str, k: int) -> str:
    """The name of finetuning seed ``k`` of job ``name``: ``<name>@seed<k>``; seed 0 keeps the job's own name."""
    return f"{name}@seed{k}" if k else name


def with_seed(name: str, config: dict[str, Any], k: int) -> tuple[str, dict[str, Any]]:
    """Finetuning seed ``k`` of job ``name``: `seeded_name` with the run's ``train.seed`` + k; seed 0 is the job
    itself (its name and config, so its content key is the single-seed job's)."""
    if not k:
        return name, config
    seed = int(config.get("train", {}).get("seed", 0)) + k
    return seeded_name(name, k), merge(config, {"train": {"seed": seed}})


def finetune_run_config(finetune: dict[str, Any], dataset: str, init: str, manifest_info: dict[str, Any],
                        features_info: dict[str, Any], pretrain_info: dict[str, Any],
                        text: dict[str, Any] | None = None) -> dict[str, Any]:
    """The config of ``dataset``'s ``init`` job (``pretrained`` starts from ``pretrain_info``'s run, ``scratch``
    from the preset): ``finetune.run`` with ``finetune.tasks.<dataset>`` merged in, on the corpus."""
    run = merge(finetune["run"], finetune.get("tasks", {}).get(dataset) or {})
    cfg = corpus_run_config(run, manifest_info, features_info, text)
    return merge(cfg, {"task": dataset, "train": {"init_from": pretrain_info["run_dir"] if init == "pretrained" else None}})
