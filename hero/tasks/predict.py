"""Batched inference of a finetuned task model over a corpus split -> prediction file (public format) -> metrics.

``predict_split`` looks the dataset's task up in the task registry (`hero.tasks.registry`), lets the task write
its public prediction file (``<out_dir>/<split>_predictions<suffix>``, atomically; eval mode, no grad) and scores
it with the task's own scorer against ``<corpus root>/annotations/<dataset>_<split>.jsonl``. The files per task
are listed in docs/formats.md.

``retrieval_examples`` turns a TVR submission into plain dicts (top moments with their subtitles) for reports.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hero.config import ConfigError, from_dict
from hero.corpus.manifest import Manifest
from hero.metrics.formats import TvrSubmission, read_tvr_submission
from hero.metrics.formats.files import PathLike
from hero.metrics.moment_metrics import temporal_iou
from hero.metrics.report import flatten_metrics
from hero.features.store import FeatureStore
from hero.tasks.prediction import PredictContext, PredictOptions
from hero.tasks.registry import task_of_dataset
from hero.text.tokenizer import TextTokenizer

log = logging.getLogger(__name__)


def prediction_path(out_dir: PathLike, dataset: str, split: str) -> Path:
    """``out_dir/<split>_predictions<suffix>``: the task's suffix (``.json`` for moment retrieval's one JSON
    document, ``.jsonl`` for the line formats)."""
    return Path(out_dir) / f"{split}_predictions{task_of_dataset(dataset).prediction_suffix}"


def annotation_path(manifest: Manifest, dataset: str, split: str) -> Path:
    """The ground truth of a split: ``<manifest.root>/annotations/<dataset>_<split>.jsonl``."""
    return Path(manifest.root) / "annotations" / f"{dataset}_{split}.jsonl"


def predict_options(options: PredictOptions | dict[str, Any] | None, dataset: str = "") -> PredictOptions:
    """`PredictOptions` from a mapping (``evaluate.options.<dataset>``), checked key by key."""
    if isinstance(options, PredictOptions):
        return options
    return from_dict(PredictOptions, options or {}, _path=f"evaluate.options.{dataset}" if dataset else "options")


def predict_split(task_model: torch.nn.Module, dataset: str, manifest: Manifest, store: FeatureStore,
                  tokenizer: TextTokenizer, split: str, out_dir: PathLike, *, score: bool = True,
                  annotations: PathLike | None = None, corpus_videos: Sequence[str] | None = None,
                  device: torch.device | str = "cpu", options: PredictOptions | None = None,
                  **option_values: Any) -> dict[str, Any]:
    """Predict every example of ``dataset``/``split``, write the prediction file, score it.

    Args:
        task_model: the downstream task model of the dataset's task; moved to ``device``, run in eval mode (its
            training flag is restored afterwards).
        dataset: annotation prefix (tvr, tvqa, violin, tvc, retrieval, … : ``hero.tasks.datasets()``).
        score: read the ground truth and compute metrics (False: only write predictions, e.g. an unlabeled test).
        annotations: ground-truth file (default ``annotation_path(manifest, dataset, split)``).
        corpus_videos: retrieval corpus (default: every video of the split, ``manifest.split_videos(split)``).
        options / option_values: a `PredictOptions`, or its fields as keywords (``batch_size=8, beam_size=2``;
            the keys of ``evaluate.options.<dataset>``).
    Returns:
        ``{"metrics": {"<dataset>/<split>/<metric>": value}, "predictions": str path, "count": examples,
        "seconds": wall time, "annotations": the ground-truth file, "num_videos": the retrieval corpus size or
        None}`` (metrics empty when ``score`` is False).
    Raises:
        FileNotFoundError: ``score`` and the annotation file is missing (names the file).
        ConfigError: an unknown dataset or option key, a model of another task.
        ValueError: a split with no examples (names the file).
    """
    if options is not None and option_values:
        raise TypeError("predict_split: pass options= or option keywords, not both")
    opts = predict_options(options if options is not None else option_values, dataset)
    task_cls = task_of_dataset(dataset)
    if not isinstance(task_model, task_cls):
        got = getattr(task_model, "name", type(task_model).__name__)
        raise ConfigError(f"{dataset} needs a {task_cls.name} task model, got {got!r}")
    ann = Path(annotations) if annotations is not None else annotation_path(manifest, dataset, split)
    if score and not ann.is_file():
        raise FileNotFoundError(f"{ann}: no ground-truth annotations for {dataset}/{split} (the file does not exist)")
    raw = manifest.tasks.get(dataset, {}).get(split, [])
    if not raw:
        raise ValueError(f"{ann}: {dataset}/{split} has no examples in the manifest (no annotations for this split)")
    out_path = prediction_path(out_dir, dataset, split)
    t0 = time.perf_counter()
    was_training = task_model.training
    task_model.to(device).eval()
    try:
        with torch.no_grad():
            ctx = PredictContext(task_model, dataset, split, manifest, store, tokenizer, raw, out_path, opts,
                                 torch.device(device), corpus_videos)
            written = task_model.write_predictions(ctx)
    finally:
        task_model.train(was_training)
    seconds = time.perf_counter() - t0
    log.info("%s/%s: %d predictions in %.1fs -> %s", dataset, split, written.count, seconds, out_path)
    metrics = flatten_metrics(dataset, split, task_cls.score(out_path, ann, opts, written)) if score else {}
    return {"metrics": metrics, "predictions": str(out_path), "count": written.count, "seconds": seconds,
            "annotations": str(ann), "num_videos": written.num_videos}


def retrieval_examples(submission: PathLike | TvrSubmission, manifest: Manifest, dataset: str = "tvr",
                       split: str = "val", *, task: str = "VCMR", desc_ids: Sequence[int | str] | None = None,
                       num_queries: int = 5, top_k: int = 5) -> list[dict[str, Any]]:
    """The top moments of a few queries of a TVR submission, as plain dicts for a report.

    Queries: ``desc_ids`` (default: the first ``num_queries`` of the submission's ``task`` list). Each dict:
    ``{"desc_id", "desc", "type", "gt": {"vid_name", "ts"} | None, "moments": [{"rank", "vid_name", "ts": [st, ed],
    "score", "iou" (with the GT span, 0 on another video; None without GT), "subtitles": [{"text", "start",
    "end"}] overlapping the span}]}``.
    """
    sub = submission if isinstance(submission, TvrSubmission) else read_tvr_submission(submission)
    if task not in sub.tasks:
        raise ValueError(f"the submission has no {task} predictions (it has {sorted(sub.tasks)})")
    name_of = {i: v for v, i in sub.video2idx.items()}
    gt_of = {str(e["id"]): e for e in manifest.tasks.get(dataset, {}).get(split, [])}
    entries = {str(q.desc_id): q for q in sub.tasks[task]}
    wanted = [str(d) for d in desc_ids] if desc_ids is not None else list(entries)[:num_queries]
    out = []
    for qid in wanted:
        if qid not in entries:
            raise KeyError(f"desc_id {qid!r} is not in the submission's {task} list")
        q, g = entries[qid], gt_of.get(qid)
        gt = {"vid_name": g["vid_name"], "ts": list(g["ts"])} if g and g.get("vid_name") and g.get("ts") else None
        moments = []
        for rank, (v, st, ed, sc) in enumerate(q.predictions[:top_k].tolist(), 1):
            vid = name_of.get(int(v), str(int(v)))
            iou = None
            if gt is not None:
                iou = float(temporal_iou(np.array([[st, ed]]), gt["ts"])[0]) if vid == gt["vid_name"] else 0.0
            subs = manifest.videos[vid].subs if vid in manifest.videos else []
            moments.append({"rank": rank, "vid_name": vid, "ts": [st, ed], "score": sc, "iou": iou,
                            "subtitles": [{"text": t, "start": float(s), "end": float(e)} for t, s, e in subs
                                          if s < ed and e > st]})
        out.append({"desc_id": q.desc_id, "desc": q.desc or (g or {}).get("desc", ""),
                    "type": (g or {}).get("type"), "gt": gt, "moments": moments})
    return out
