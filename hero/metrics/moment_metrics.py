"""Moment-retrieval metrics with the TVR standalone evaluator's definitions (docs/hero-fidelity.md c.1).

For each query the first ``max_predictions`` rows of its ranked list ``(video_idx, st, ed, ...)`` are judged, in
the order given (the score column is ignored, as in the evaluator):

- a row is *correct* at threshold ``thd`` when its video is the query's video and ``IoU(row, gt) >= thd``;
  IoU is the evaluator's: ``max(0, min(ed) - max(st)) / (max(ed) - min(st))``, 0 when that union is 0, computed in
  float32 and compared with ``float32(thd)`` exactly as the evaluator does, so a span exactly at a threshold counts.
  (For overlapping spans that "union" is the true union; for disjoint ones the intersection is 0 anyway.)
- multi-GT (DiDeMo): with ``>= multi_gt_min_spans`` GT spans a row is correct only when at least
  ``multi_gt_min_hits`` of them reach the threshold; with fewer spans, when any one does.
- VCMR R@k: some row among the first k is correct. SVMR R@k: among the rows on the GT video, one of the first k
  is correct. VR R@k: some row among the first k is on the GT video (time ignored).
- a query with no entry, or an empty list, is a miss; rows repeated in a list each take a rank slot (as in the
  evaluator); predictions for ids absent from the ground truth are ignored (logged).
All values are percentages (x100, unrounded). Keys: ``vcmr_r1_iou0.7``, ``svmr_r5_iou0.5``, ``vr_r10`` and, by
TVR query type, ``vcmr_vt_r1_iou0.7``, ``vr_t_r10`` (only for types present in the ground truth).
``per_query_*`` give the same metrics per query (100.0 hit / 0.0 miss), computed by the same code.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from hero.config import ConfigError
from hero.metrics.formats.annotations import QUERY_TYPES, MomentAnnotation
from hero.metrics.formats.tvr import TVR_TASKS, TvrSubmission

log = logging.getLogger(__name__)

MomentTask = Literal["VCMR", "SVMR", "VR"]


@dataclass(frozen=True, kw_only=True)
class MomentEvalConfig:
    """How moment predictions are judged (defaults: the TVR evaluator)."""

    iou_thresholds: tuple[float, ...] = (0.5, 0.7)
    recall_ks: tuple[int, ...] = (1, 5, 10, 100)
    max_predictions: int = 100
    """Only the first rows of each list are judged (the evaluator's ``max_pred_per_query``)."""
    multi_gt_min_spans: int | None = 4
    """DiDeMo rule: queries with at least this many GT spans need ``multi_gt_min_hits`` of them; None = off."""
    multi_gt_min_hits: int = 2
    by_type: bool = True
    """Also report metrics per TVR query type (v / t / vt)."""

    def __post_init__(self) -> None:
        def check(cond: bool, key: str, msg: str) -> None:
            if not cond:
                raise ConfigError(f"moment_eval.{key}: {msg}")

        check(len(self.iou_thresholds) > 0 and all(0.0 < t <= 1.0 for t in self.iou_thresholds), "iou_thresholds",
              f"must be non-empty, each in (0, 1], got {self.iou_thresholds}")
        check(len(self.recall_ks) > 0 and all(k >= 1 for k in self.recall_ks), "recall_ks",
              f"must be non-empty, each >= 1, got {self.recall_ks}")
        check(self.max_predictions >= 1, "max_predictions", f"must be >= 1, got {self.max_predictions}")
        check(self.multi_gt_min_spans is None or self.multi_gt_min_spans >= 2, "multi_gt_min_spans",
              f"must be >= 2 or null, got {self.multi_gt_min_spans}")
        check(self.multi_gt_min_hits >= 1, "multi_gt_min_hits", f"must be >= 1, got {self.multi_gt_min_hits}")


def temporal_iou(spans: np.ndarray, gt: Sequence[float]) -> np.ndarray:
    """The evaluator's temporal IoU of each row of ``spans`` [N, 2] (st, ed) with one ``gt`` (st, ed).

    returns: [N] float32; 0 where ``max(ed) - min(st)`` is 0.
    """
    spans = np.asarray(spans, dtype=np.float32).reshape(-1, 2)
    g = np.asarray(gt, dtype=np.float32)
    inter = np.maximum(np.float32(0), np.minimum(spans[:, 1], g[1]) - np.maximum(spans[:, 0], g[0]))
    union = np.maximum(spans[:, 1], g[1]) - np.minimum(spans[:, 0], g[0])
    return np.divide(inter, union, out=np.zeros_like(inter), where=union != 0)


def _correct_rows(rows: np.ndarray, on_video: np.ndarray, gt: MomentAnnotation, cfg: MomentEvalConfig) -> np.ndarray:
    """[n_thd, N] bool: row correct at each threshold."""
    thds = np.asarray(cfg.iou_thresholds, dtype=np.float32)[:, None]                  # [n_thd, 1]
    reach = np.stack([(temporal_iou(rows[:, 1:3], s)[None, :] >= thds) & on_video for s in gt.spans])
    # reach: [n_spans, n_thd, N]
    if cfg.multi_gt_min_spans is not None and len(gt.spans) >= cfg.multi_gt_min_spans:
        return reach.sum(axis=0) >= cfg.multi_gt_min_hits
    return reach.any(axis=0)


def _query_hits(task: str, rows: np.ndarray, gt: MomentAnnotation, gt_vidx: int | None,
                cfg: MomentEvalConfig) -> np.ndarray:
    """[n_thd, n_k] bool (VR: [1, n_k]): whether the query is a hit at each (threshold, k)."""
    n_thd = 1 if task == "VR" else len(cfg.iou_thresholds)
    ks = cfg.recall_ks
    rows = np.asarray(rows, dtype=np.float32)[: cfg.max_predictions]
    if len(rows) == 0 or gt_vidx is None:
        return np.zeros((n_thd, len(ks)), dtype=bool)
    on_video = rows[:, 0] == np.float32(gt_vidx)                                         # [N]
    if task == "VR":
        return np.array([[bool(on_video[:k].any()) for k in ks]])
    correct = _correct_rows(rows, on_video, gt, cfg)                                    # [n_thd, N]
    if task == "SVMR":
        correct = correct[:, on_video]
    return np.array([[bool(c[:k].any()) for k in ks] for c in correct])


def metric_name(task: str, k: int, thd: float | None = None, qtype: str | None = None) -> str:
    """``vcmr_r1_iou0.7`` / ``vcmr_vt_r1_iou0.7`` / ``vr_r10`` / ``vr_t_r10``."""
    name = task.lower() + (f"_{qtype}" if qtype else "") + f"_r{k}"
    return name + (f"_iou{thd:g}" if thd is not None else "")


QueryGroups = list[tuple[str | None, np.ndarray]]
"""(query type, or None for all queries; [Nq] bool selection of the queries a metric is taken over)."""


def _hits(task: MomentTask, predictions: Mapping[str, np.ndarray], ground_truth: Sequence[MomentAnnotation],
          video2idx: Mapping[str, int], cfg: MomentEvalConfig) -> tuple[np.ndarray, QueryGroups]:
    """Per query, whether it is a hit at each (threshold, k), and the query groups the metrics are taken over.

    Returns:
        (hits [Nq, n_thd, n_k] bool (VR: n_thd = 1), [(query type or None for all, [Nq] bool selection), ...]).
    """
    if task not in TVR_TASKS:
        raise ValueError(f"task must be one of {TVR_TASKS}, got {task!r}")
    if not ground_truth:
        raise ValueError("no ground-truth queries to evaluate")
    hits, types = [], []
    missing = unknown_video = 0
    for gt in ground_truth:
        rows = predictions.get(str(gt.desc_id))
        if rows is None:
            missing += 1
            rows = np.zeros((0, 4))
        gt_vidx = video2idx.get(gt.vid_name)
        unknown_video += gt_vidx is None
        hits.append(_query_hits(task, rows, gt, gt_vidx, cfg))
        types.append(gt.type)
    extra = len(set(predictions) - {str(g.desc_id) for g in ground_truth})
    if missing or unknown_video or extra:
        log.warning("%s: %d of %d queries have no predictions (counted as misses); %d GT videos are not in "
                    "video2idx (misses); %d predicted queries are not in the ground truth (ignored)",
                    task, missing, len(ground_truth), unknown_video, extra)
    h = np.stack(hits)                                                                   # [Nq, n_thd, n_k]
    groups: QueryGroups = [(None, np.ones(len(h), dtype=bool))]
    if cfg.by_type:
        qt = np.array([t or "" for t in types])
        groups += [(t, qt == t) for t in QUERY_TYPES if (qt == t).any()]
    return h, groups


def _metric_cells(task: MomentTask, cfg: MomentEvalConfig) -> Iterator[tuple[int, int, float | None, int]]:
    """(threshold index, k index, threshold (None for VR), k) for every metric of ``task``."""
    thds: Sequence[float | None] = [None] if task == "VR" else cfg.iou_thresholds
    for i, thd in enumerate(thds):
        for j, k in enumerate(cfg.recall_ks):
            yield i, j, thd, k


def evaluate_moment_task(task: MomentTask, predictions: Mapping[str, np.ndarray],
                         ground_truth: Sequence[MomentAnnotation], video2idx: Mapping[str, int],
                         cfg: MomentEvalConfig | None = None) -> dict[str, float]:
    """R@k (x tIoU) of one task over the ground-truth queries.

    Args:
        task: "VCMR", "SVMR" or "VR".
        predictions: ``str(desc_id)`` -> [N, >=3] rows ``(video_idx, st, ed, ...)`` in rank order.
        ground_truth: one annotation per query; every one of them is counted.
        video2idx: the submission's video index (GT video names are looked up in it).
    Returns:
        ``{metric_name: percent}``, see the module docstring.
    """
    cfg = cfg or MomentEvalConfig()
    h, groups = _hits(task, predictions, ground_truth, video2idx, cfg)
    out: dict[str, float] = {}
    for qtype, sel in groups:
        for i, j, thd, k in _metric_cells(task, cfg):
            out[metric_name(task, k, thd, qtype)] = 100.0 * float(h[sel, i, j].mean())
    return out


def per_query_moment_task(task: MomentTask, predictions: Mapping[str, np.ndarray],
                          ground_truth: Sequence[MomentAnnotation], video2idx: Mapping[str, int],
                          cfg: MomentEvalConfig | None = None) -> dict[str, dict[str, float]]:
    """The per-query values behind `evaluate_moment_task`: for each of its metrics, ``str(desc_id)`` -> 100.0
    (hit) or 0.0 (miss), over the queries that metric is taken over (all of them; a type's queries for the
    by-type metrics), in ground-truth order. The mean of each inner dict is that metric."""
    cfg = cfg or MomentEvalConfig()
    h, groups = _hits(task, predictions, ground_truth, video2idx, cfg)
    ids = [str(g.desc_id) for g in ground_truth]
    out: dict[str, dict[str, float]] = {}
    for qtype, sel in groups:
        rows = np.flatnonzero(sel)
        for i, j, thd, k in _metric_cells(task, cfg):
            out[metric_name(task, k, thd, qtype)] = {ids[r]: 100.0 * float(h[r, i, j]) for r in rows}
    return out


def evaluate_tvr_submission(submission: TvrSubmission, ground_truth: Sequence[MomentAnnotation],
                            cfg: MomentEvalConfig | None = None) -> dict[str, float]:
    """Every task present in ``submission`` (VCMR / SVMR / VR), merged into one flat dict."""
    out: dict[str, float] = {}
    for task, entries in submission.tasks.items():
        preds = {str(e.desc_id): e.predictions for e in entries}
        out.update(evaluate_moment_task(task, preds, ground_truth, submission.video2idx, cfg))  # type: ignore[arg-type]
    return out


def per_query_tvr_submission(submission: TvrSubmission, ground_truth: Sequence[MomentAnnotation],
                             cfg: MomentEvalConfig | None = None) -> dict[str, dict[str, float]]:
    """`per_query_moment_task` for every task present in ``submission``: the keys of `evaluate_tvr_submission`,
    each ``str(desc_id)`` -> 100.0 / 0.0."""
    out: dict[str, dict[str, float]] = {}
    for task, entries in submission.tasks.items():
        preds = {str(e.desc_id): e.predictions for e in entries}
        out.update(per_query_moment_task(task, preds, ground_truth, submission.video2idx, cfg))  # type: ignore[arg-type]
    return out
