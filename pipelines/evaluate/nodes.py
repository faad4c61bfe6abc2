"""Evaluate nodes: predictions in the public formats, official-definition metrics, the results table."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from pipelines import tracking
from pipelines.datasets import open_manifest, open_store
from pipelines.paths import layer, resolve
from pipelines.reporting import plot_retrieved_moments, results_table

log = logging.getLogger(__name__)


def evaluate_task(finetune_info: dict[str, Any], evaluate: dict[str, Any], manifest_info: dict[str, Any],
                  features_info: dict[str, Any], *, dataset: str, out_root: Path | None = None) -> dict[str, Any]:
    """Predict ``evaluate.split`` with each finetuned model, write the predictions and score them; the metrics,
    the prediction file and the pictures go to each job's MLflow run.

    Returns:
        ``{init: {"<dataset>/<split>/<metric>": value, …}}``; predictions go to
        ``data/07_model_output/<dataset>/<init>/<split>_predictions.json[l]``.
    """
    torch.set_num_threads(max(1, torch.get_num_threads()))
    manifest, store = open_manifest(manifest_info), open_store(features_info)
    out: dict[str, Any] = {}
    for init, info in finetune_info.items():
        out_dir = (out_root or layer("07_model_output")) / dataset / init
        metrics, files = evaluate_run(info["run_dir"], dataset, manifest, store, evaluate, out_dir, init)
        run = tracking.current().run(info.get("mlflow_run_id"))
        run.log_metrics(metrics)
        for folder, path in files.items():
            run.log_artifact(path, folder)
        out[init] = metrics
        log.info("%s (%s): %s", dataset, init, ", ".join(f"{k}={v:.2f}" for k, v in metrics.items()))
    return out


def evaluate_run(run_dir: str, dataset: str, manifest, store, evaluate: dict[str, Any], out_dir: Path,
                 init: str) -> tuple[dict[str, float], dict[str, Path]]:
    """One finetuned run's metrics on ``evaluate.split``, and its files by kind (predictions; for moment retrieval a
    picture of the top moments of a few queries and the HTML search page)."""
    from hero.eval.predict import predict_split, retrieval_examples
    from hero.presets import preset_tokenizer
    from hero.train.finetune import load_task_model

    split = evaluate.get("split", "val")
    model, preset = load_task_model(resolve(run_dir))
    tokenizer = preset_tokenizer(preset)
    res = predict_split(model, dataset, manifest, store, tokenizer, split, out_dir,
                        **evaluate.get("options", {}).get(dataset, {}))
    files = {"predictions": res["predictions"]}
    if dataset in ("tvr", "how2r", "didemo"):  # a picture of what the model retrieves for a few queries
        examples = retrieval_examples(res["predictions"], manifest, dataset, split, num_queries=6, top_k=5)
        files["plots"] = plot_retrieved_moments(examples, out_dir / f"{split}_retrieved_moments.png",
                                                title=f"{dataset} {split}: top moments ({init})")
        files["reports"] = search_report(model, manifest, store, tokenizer, dataset, split, out_dir, init)
    return res["metrics"], {k: v for k, v in files.items() if v}


def search_report(model, manifest, store, tokenizer, dataset: str, split: str, out_dir: Path, init: str) -> Path | None:
    """The HTML search page (query, ranked moments, highlighted spans, thumbnails) for the split's first query."""
    from hero.eval.search import MomentSearcher
    from hero.eval.search_report import write_search_report

    examples = manifest.tasks.get(dataset, {}).get(split, [])
    if not examples:
        return None
    query = examples[0]["desc"]
    searcher = MomentSearcher.from_model(model, manifest, store, tokenizer, videos=manifest.split_videos(split) or None)
    page = write_search_report(out_dir / f"{split}_search.html", query, searcher.search(query, top_k=10), manifest,
                               store, title=f"{dataset} {split}: moment search ({init})")
    return without_project_root(page)


def without_project_root(path: Path) -> Path:
    """``path`` (a text file) rewritten with the project folder's path taken out of the paths it shows (the page
    names the corpus it searched): an output DVC tracks holds the same bytes in any clone."""
    from hero.corpus.atomic import write_text_atomic
    from pipelines.settings import project_root

    text = path.read_text(encoding="utf-8")
    prefix = project_root().as_posix().rstrip("/") + "/"
    if prefix in text:
        write_text_atomic(path, text.replace(prefix, ""))
    return path


HEADLINES = {  # the metrics each task is judged by in the summary: HERO's headline number first
    "tvr": ("vcmr_r1_iou0.7", "svmr_r1_iou0.5"), "tvqa": ("acc",), "violin": ("acc",), "tvc": ("cider",),
    "retrieval": ("r1",),
}
"""TVR also shows SVMR R@1 at tIoU 0.5: at the demo budget VCMR R@1 at tIoU 0.7 is near zero for every model."""


def summarize(evaluate: dict[str, Any], **task_metrics: dict[str, Any]) -> dict[str, Any]:
    """The pretrained-vs-scratch table and the metrics, in four outputs.

    Returns:
        ``results_table`` (markdown: data/08_reporting/results.md, also an MLflow artifact); ``metrics``: every
        metric, ``{"<dataset>/<split>/<metric>": value}`` for the pretrained models and ``scratch/…`` for the
        others (data/08_reporting/metrics.json); ``headline_metrics``: the headline metrics per task and init, the
        small file DVC and git track (reports/metrics.json: ``dvc metrics diff``, ``dvc exp show``);
        ``headline``: one number per task, the pretrained model's headline metric, for the pipeline's MLflow run.
    """
    split = evaluate.get("split", "val")
    flat: dict[str, float] = {}
    headlines: dict[str, dict[str, dict[str, float]]] = {}
    parent: dict[str, dict[str, float]] = {}
    rows = []
    for dataset, per_init in sorted(task_metrics.items()):
        dataset = dataset.removesuffix("_metrics")
        for init, metrics in per_init.items():
            for k, v in metrics.items():
                flat[k if init == "pretrained" else f"{init}/{k}"] = float(v)
        for metric in HEADLINES.get(dataset, ()):
            pre = per_init.get("pretrained", {}).get(f"{dataset}/{split}/{metric}")
            scr = per_init.get("scratch", {}).get(f"{dataset}/{split}/{metric}")
            rows.append({"task": dataset, "metric": metric, "pretrained": pre if pre is not None else "",
                         "scratch": scr if scr is not None else "",
                         "gain": (pre - scr) if pre is not None and scr is not None else ""})
            found = {init: float(m[f"{dataset}/{split}/{metric}"]) for init, m in per_init.items()
                     if f"{dataset}/{split}/{metric}" in m}
            if found:
                headlines.setdefault(dataset, {})[metric] = found
            if pre is not None and not any(k.startswith(f"{dataset}/") for k in parent):  # the first: HERO's number
                parent[tracking.metric_name(f"{dataset}/{metric}")] = {"value": float(pre), "step": 0}
    table = results_table(rows, ["task", "metric", "pretrained", "scratch", "gain"])
    print(f"\nDownstream results ({split}):\n{table}\n"  # the run's answer, on the console whatever the log level
          "MLflow: make ui (one run per pipeline run, named for it; a child run per training job)")
    return {"results_table": table + "\n", "metrics": flat, "headline_metrics": headlines, "headline": parent}
