"""The paper's ablations as experiments: one variant per run (encoder kind, pretraining objectives, with or
without pretraining), each pretrained, finetuned and evaluated on a few downstream tasks."""

from __future__ import annotations

import functools
import logging
from typing import Any

from hero.config import merge
from pipelines import tracking
from pipelines.datasets import TrainingJob, run_job, side_by_side
from hero.tasks import headlines
from pipelines.evaluate.nodes import evaluate_task
from pipelines.finetune.nodes import job_launch
from pipelines.paths import layer, reports
from pipelines.pretrain.nodes import corpus_run_config, job_title
from pipelines.reporting import read_json_file, results_table, write_json_atomic

log = logging.getLogger(__name__)

MLFLOW_UI = "http://127.0.0.1:5000"


def run_ablation(variant_name: str, ablation: dict[str, Any], pretrain: dict[str, Any], finetune: dict[str, Any],
                 evaluate: dict[str, Any], launch: dict[str, Any], manifest_info: dict[str, Any],
                 features_info: dict[str, Any]) -> dict[str, Any]:
    """Run the variant ``variant_name`` (``params:ablation_variant``) of ``ablation.variants``.

    A variant sets ``encoder`` (hierarchical | flat), ``tasks`` (the pretraining mix) or ``pretrain: false``
    (finetune from the text-initialised model only), and may list ``extra_tasks``: downstream datasets it also
    finetunes and evaluates (e.g. ``[tvc]`` for the decoder-pretraining pair). The result goes to
    ``reports/ablations/<variant>.json``: the headline metric of each task in ``ablation.tasks`` and its extras.
    """
    name = variant_name
    if name not in ablation["variants"]:
        raise ValueError(f"ablation_variant: {name!r} is not one of {sorted(ablation['variants'])}")
    variant = ablation["variants"][name]
    model = {"encoder": variant.get("encoder", "hierarchical")}
    tracker = tracking.current()
    tracker.parent.set_tags({"ablation": name})
    keys = {"manifest": manifest_info["key"], "features": features_info["key"]}
    data = (manifest_info, features_info)
    models = layer("06_models") / "ablation" / name
    pre_info = None
    if variant.get("pretrain", True):
        run = merge(pretrain["run"], {"model": model, "train": ablation.get("pretrain_train", {})})
        if "tasks" in variant:  # the variant's mix replaces the default one (a merge would keep its other tasks)
            run = {**run, "pretrain": {**run.get("pretrain", {}), "tasks": dict(variant["tasks"])}}
        cfg = corpus_run_config(run, manifest_info, features_info)
        pre_info = run_job(TrainingJob(name="pretrain", title=f"{name}: {job_title('pretrain', cfg)}", config=cfg,
                                       inputs=keys, launch=launch, tags={"task": "pretrain", "ablation": name},
                                       data=data), models)
    split = evaluate.get("split", "val")
    row: dict[str, Any] = {"variant": name, "split": split, "mlflow_run_id": tracker.parent.run_id,
                           "mlflow_experiment_id": tracker.experiment_id}
    datasets = variant_tasks(ablation, name)
    parallel = max(1, min(int(finetune.get("parallel_jobs", 1)), len(datasets)))
    task_launch = job_launch(launch, parallel)

    def one(dataset: str) -> dict[str, float]:
        run = merge(merge(finetune["run"], finetune.get("tasks", {}).get(dataset) or {}), {"model": model})
        # an ablation measures what each variant's pretraining learned: every part comes from its checkpoint (the
        # main recipe's train.init_fresh would discard e.g. the temporal level that FOM trains; a flat encoder has none)
        run = merge(run, {"train": {"init_fresh": []}})
        cfg = merge(corpus_run_config(run, manifest_info, features_info),
                    {"task": dataset, "train": {"init_from": pre_info["run_dir"] if pre_info else None}})
        job = TrainingJob(name=dataset, title=f"{name}: {dataset}", config=cfg, launch=task_launch, data=data,
                          inputs={**keys, "pretrain": pre_info and pre_info["key"]},
                          tags={"task": dataset, "ablation": name})
        info = run_job(job, models)
        return evaluate_task({"run": info}, evaluate, manifest_info, features_info, dataset=dataset,
                             out_root=models / "predictions")["run"]

    results = side_by_side({dataset: functools.partial(one, dataset) for dataset in datasets}, parallel)
    for dataset, metrics in results.items():
        for metric in headlines(dataset):
            row[f"{dataset}/{metric}"] = metrics.get(f"{dataset}/{split}/{metric}")
    write_json_atomic(reports("ablations", f"{name}.json"), row)
    return row


def variant_tasks(ablation: dict[str, Any], name: str) -> list[str]:
    """The datasets variant ``name`` finetunes: ``ablation.tasks``, then its own ``extra_tasks`` (once each)."""
    extra = ablation["variants"][name].get("extra_tasks") or []
    return list(dict.fromkeys([*ablation["tasks"], *extra]))


def table_tasks(ablation: dict[str, Any]) -> list[str]:
    """The table's datasets: ``ablation.tasks``, then every variant's extras in variant order (a variant without
    one leaves its cells empty)."""
    extra = [t for variant in ablation["variants"].values() for t in variant.get("extra_tasks") or []]
    return list(dict.fromkeys([*ablation["tasks"], *extra]))


def ablation_table(ablation: dict[str, Any], evaluate: dict[str, Any] | None = None) -> str:
    """The markdown table of every variant's results (rows link to their MLflow runs), then the reference baselines
    (rows ``chance`` and ``text-only`` and their section, when `kedro run --pipelines=baselines` has run), for
    docs/results.md."""
    from pipelines.baselines.nodes import ablation_rows, baselines_markdown

    split = (evaluate or {}).get("split", "val")
    rows = []
    for name in ablation["variants"]:
        r = read_json_file(reports("ablations", f"{name}.json"))
        if r is None:
            continue
        run, exp = r.get("mlflow_run_id"), r.get("mlflow_experiment_id")
        link = f"[{name}]({MLFLOW_UI}/#/experiments/{exp}/runs/{run})" if run and exp else name
        columns = [f"{t}/{m}" for t in table_tasks(ablation) for m in headlines(t)]
        setting = describe(ablation["variants"][name])
        if r.get("split", split) != split:  # a row scored on another split than the table's (older runs: val)
            setting += f" ({r.get('split')} split)"
        rows.append({"variant": link, **{c: r.get(c, "") for c in columns}, "setting": setting})
    cols = ["variant", *[f"{t}/{m}" for t in table_tasks(ablation) for m in headlines(t)], "setting"]
    rows += ablation_rows(cols[1:-1], split)
    header = (f"Per task and metric ({split} split, synthetic corpus, the demo budget). Regenerated by `dvc repro` "
              "(stage ablation_table); the links open each variant's run in `mlflow ui` (default address).\n\n")
    from hero.metrics.results import intervals_section

    return ("# Ablations\n\n" + header + results_table(rows, cols) + "\n" + baselines_markdown() + "\n"
            + intervals_section())


def describe(variant: dict[str, Any]) -> str:
    if not variant.get("pretrain", True):
        return "no video-language pretraining"
    mix = ", ".join(f"{k} {v:g}" for k, v in variant.get("tasks", {}).items()) or "default mix"
    extra = f"; also {', '.join(variant['extra_tasks'])}" if variant.get("extra_tasks") else ""
    return f"{variant.get('encoder', 'hierarchical')}; {mix}{extra}"
