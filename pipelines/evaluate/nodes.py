"""Evaluate nodes: predictions in the public formats, official-definition metrics, the results table."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from hero.tasks import headlines
from pipelines import tracking
from pipelines.paths import layer
from pipelines.reporting import baseline_columns, plot_retrieved_moments, results_table, write_json_atomic

log = logging.getLogger(__name__)


def evaluate_task(finetune_info: dict[str, Any], evaluate: dict[str, Any], manifest_info: dict[str, Any],
                  features_info: dict[str, Any], *, dataset: str, out_root: Path | None = None) -> dict[str, Any]:
    """Predict ``evaluate.split`` with each finetuned model, write the predictions and score them.

    Returns:
        ``{init: {"<dataset>/<split>/<metric>": value, …}}``; predictions go to
        ``data/07_model_output/<dataset>/<init>/<split>_predictions.json[l]``.
    """
    from hero.corpus.manifest import Manifest
    from hero.eval.predict import predict_split, retrieval_examples
    from hero.features.store import FeatureStore
    from hero.presets import preset_tokenizer
    from hero.train.finetune import load_task_model

    torch.set_num_threads(max(1, torch.get_num_threads()))
    manifest = Manifest.load(manifest_info["path"])
    store = FeatureStore(features_info["path"])
    split = evaluate.get("split", "val")
    out: dict[str, Any] = {}
    for init, info in finetune_info.items():
        model, preset = load_task_model(info["run_dir"])
        tokenizer = preset_tokenizer(preset)
        out_dir = (out_root or layer("07_model_output")) / dataset / init
        res = predict_split(model, dataset, manifest, store, tokenizer, split, out_dir,
                            **evaluate.get("options", {}).get(dataset, {}))
        metrics = res["metrics"]
        tracking.log_metrics_to(info.get("mlflow_run_id"), metrics)
        tracking.log_artifact_to(info.get("mlflow_run_id"), res["predictions"], "predictions")
        if model.name == "moment_retrieval":  # a picture of what the model retrieves for a few queries
            examples = retrieval_examples(res["predictions"], manifest, dataset, split, num_queries=6, top_k=5)
            png = plot_retrieved_moments(examples, out_dir / f"{split}_retrieved_moments.png",
                                         title=f"{dataset} {split}: top moments ({init})")
            if png:
                tracking.log_artifact_to(info.get("mlflow_run_id"), png, "plots")
            html = search_report(model, manifest, store, tokenizer, dataset, split, out_dir, init)
            if html:
                tracking.log_artifact_to(info.get("mlflow_run_id"), html, "reports")
        out[init] = metrics
        log.info("%s (%s): %s", dataset, init, ", ".join(f"{k}={v:.2f}" for k, v in metrics.items()))
    return out


def search_report(model, manifest, store, tokenizer, dataset: str, split: str, out_dir: Path, init: str) -> Path | None:
    """The HTML search page (query, ranked moments, highlighted spans, thumbnails) for the split's first query."""
    from hero.eval.search import MomentSearcher
    from hero.eval.search_report import write_search_report

    examples = manifest.tasks.get(dataset, {}).get(split, [])
    if not examples:
        return None
    query = examples[0]["desc"]
    searcher = MomentSearcher.from_model(model, manifest, store, tokenizer, videos=manifest.split_videos(split) or None)
    return write_search_report(out_dir / f"{split}_search.html", query, searcher.search(query, top_k=10), manifest,
                               store, title=f"{dataset} {split}: moment search ({init})")


def summarize(evaluate: dict[str, Any], **task_metrics: dict[str, Any]) -> str:
    """All tasks' metrics into ``data/08_reporting/metrics.json`` and a pretrained-vs-scratch table.

    The flat metrics are ``{"<dataset>/<split>/<metric>": value}`` for the pretrained models, with the
    from-scratch ones under ``scratch/…``; they also go to the pipeline's MLflow run.

    Returns:
        the markdown table (saved by the catalog as data/08_reporting/results.md).
    """
    split = evaluate.get("split", "val")
    flat: dict[str, float] = {}
    rows = []
    for dataset, per_init in sorted(task_metrics.items()):
        dataset = dataset.removesuffix("_metrics")
        for init, metrics in per_init.items():
            for k, v in metrics.items():
                flat[k if init == "pretrained" else f"{init}/{k}"] = float(v)
        for metric in headlines(dataset):
            pre = per_init.get("pretrained", {}).get(f"{dataset}/{split}/{metric}")
            scr = per_init.get("scratch", {}).get(f"{dataset}/{split}/{metric}")
            rows.append({"task": dataset, "metric": metric, "pretrained": pre if pre is not None else "",
                         "scratch": scr if scr is not None else "",
                         "gain": (pre - scr) if pre is not None and scr is not None else ""})
    table = results_table(rows, ["task", "metric", "pretrained", "scratch", "gain", *baseline_columns(rows, split)])
    path = write_json_atomic(layer("08_reporting") / "metrics.json", flat)
    tracking.log_metrics(flat)
    print(f"\nDownstream results ({split}; {path}):\n{table}\n"
          f"MLflow: mlflow ui --backend-store-uri sqlite:///{Path('mlruns/mlflow.db').resolve()}  (runs under "
          f"experiment 'hero-platform'; one run per pipeline run, a child run per finetuned task)")
    return table + "\n"
