"""Text-to-video retrieval metrics (MSR-VTT style): R@k, median and mean rank of the ground-truth video.

Tie rule (``tie_rule``), for videos scored exactly like the GT video (``better`` = videos scored strictly higher,
``tied`` = other videos with the same score):

- ``pessimistic`` (default): rank = better + tied + 1; the GT loses every tie, so a model that scores everything
  equally gets the worst rank instead of rank 1.
- ``optimistic``: rank = better + 1.
- ``average``: the expectation under a uniformly random tie-break: rank = better + tied / 2 + 1 (may be x.5), and
  R@k = P(rank <= k) = clip((k - better) / (tied + 1), 0, 1).

A query without predictions, with an empty list, or whose GT video is not in its (possibly truncated) list gets
the worst rank, N = the number of candidate videos, under every rule. R@k values are percentages; the median is
numpy's (the mean of the two middle ranks for an even count). `per_query_ranking` gives each query's R@k value
(`recall_hits`), whose mean is R@k.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from hero.config import ConfigError
from hero.metrics.formats.annotations import RetrievalAnnotation
from hero.metrics.formats.lines import VideoRanking

log = logging.getLogger(__name__)

TieRule = Literal["pessimistic", "optimistic", "average"]


@dataclass(frozen=True, kw_only=True)
class RetrievalEvalConfig:
    recall_ks: tuple[int, ...] = (1, 5, 10)
    tie_rule: TieRule = "pessimistic"

    def __post_init__(self) -> None:
        if not self.recall_ks or any(k < 1 for k in self.recall_ks):
            raise ConfigError(f"retrieval_eval.recall_ks: must be non-empty, each >= 1, got {self.recall_ks}")
        if self.tie_rule not in ("pessimistic", "optimistic", "average"):
            raise ConfigError(f"retrieval_eval.tie_rule: must be pessimistic, optimistic or average, "
                              f"got {self.tie_rule!r}")


def tie_counts(scores: Tensor, gt_index: Tensor) -> tuple[Tensor, Tensor]:
    """Per query, how many videos score above the GT video and how many others tie with it.

    scores: [Nq, Nv] float (no NaN); gt_index: [Nq] long -> better [Nq], tied [Nq] (long).
    """
    if torch.isnan(scores).any():
        raise ValueError("scores contain NaN")
    gt = scores.gather(1, gt_index.long().view(-1, 1))                  # [Nq, 1]
    better = (scores > gt).sum(1)
    tied = (scores == gt).sum(1) - 1
    return better, tied


def _ranks(better: np.ndarray, tied: np.ndarray, tie_rule: TieRule) -> np.ndarray:
    if tie_rule == "pessimistic":
        return better + tied + 1
    if tie_rule == "optimistic":
        return better + 1
    return better + tied / 2 + 1


def recall_hits(better: np.ndarray, tied: np.ndarray, k: int, tie_rule: TieRule = "pessimistic") -> np.ndarray:
    """Per query, R@k's value under the tie rule: 1.0 / 0.0, or (``average``) the probability that a uniformly
    random tie-break puts the GT video in the top k. [Nq] float64; its mean is R@k as a fraction."""
    better = np.asarray(better, dtype=np.float64)
    tied = np.asarray(tied, dtype=np.float64)
    if tie_rule == "average":
        return np.clip((k - better) / (tied + 1), 0.0, 1.0)
    return (_ranks(better, tied, tie_rule) <= k).astype(np.float64)


def metrics_from_counts(better: np.ndarray, tied: np.ndarray, cfg: RetrievalEvalConfig | None = None,
                        prefix: str = "") -> dict[str, float]:
    """R@k (%), median and mean rank from per-query ``better`` / ``tied`` counts (see the module docstring).

    Keys: ``{prefix}r1``, ..., ``{prefix}median_rank``, ``{prefix}mean_rank``.
    """
    cfg = cfg or RetrievalEvalConfig()
    better = np.asarray(better, dtype=np.float64)
    tied = np.asarray(tied, dtype=np.float64)
    if better.size == 0:
        raise ValueError("no queries to evaluate")
    rank = _ranks(better, tied, cfg.tie_rule)
    out: dict[str, float] = {}
    for k in cfg.recall_ks:
        out[f"{prefix}r{k}"] = 100.0 * float(recall_hits(better, tied, k, cfg.tie_rule).mean())
    out[f"{prefix}median_rank"] = float(np.median(rank))
    out[f"{prefix}mean_rank"] = float(rank.mean())
    return out


def retrieval_metrics(scores: Tensor, gt_index: Tensor, cfg: RetrievalEvalConfig | None = None) -> dict[str, float]:
    """Metrics from a full score matrix. scores: [Nq, Nv], higher = better; gt_index: [Nq] GT video column."""
    better, tied = tie_counts(scores, gt_index)
    return metrics_from_counts(better.numpy(), tied.numpy(), cfg)


def ranking_counts(rankings: Sequence[VideoRanking], ground_truth: Sequence[RetrievalAnnotation],
                   num_videos: int | None = None) -> tuple[np.ndarray, np.ndarray, int]:
    """``better`` / ``tied`` counts per GT query from ranked lists (best first, scores non-increasing).

    num_videos: candidate corpus size N; default = distinct videos named in the ground truth and the rankings.
    A GT video missing from its list (or a missing/empty list) gets better = N - 1, tied = 0: the worst rank.
    Returns (better [Nq], tied [Nq], N).
    """
    by_id = {str(r.desc_id): r for r in rankings}
    if num_videos is None:
        names = {g.vid_name for g in ground_truth}
        for r in rankings:
            names.update(v for v, _ in r.ranked)
        num_videos = len(names)
    better = np.zeros(len(ground_truth), dtype=np.int64)
    tied = np.zeros(len(ground_truth), dtype=np.int64)
    missing = absent = 0
    for i, g in enumerate(ground_truth):
        r = by_id.get(str(g.desc_id))
        if r is None:
            missing += 1
        score = dict(r.ranked).get(g.vid_name) if r is not None else None
        if score is None:
            absent += r is not None
            better[i], tied[i] = num_videos - 1, 0
            continue
        s = np.fromiter((x for _, x in r.ranked), dtype=np.float64, count=len(r.ranked))
        better[i], tied[i] = int((s > score).sum()), int((s == score).sum()) - 1
    extra = len(set(by_id) - {str(g.desc_id) for g in ground_truth})
    if missing or absent or extra:
        log.warning("retrieval: %d of %d queries have no ranking and %d rankings miss the GT video (worst rank "
                    "%d); %d ranked queries are not in the ground truth (ignored)",
                    missing, len(ground_truth), absent, num_videos, extra)
    return better, tied, num_videos


def ranking_metrics(rankings: Sequence[VideoRanking], ground_truth: Sequence[RetrievalAnnotation],
                    cfg: RetrievalEvalConfig | None = None, num_videos: int | None = None) -> dict[str, float]:
    """Metrics from ranked lists (the rankings file) against ``{desc_id, vid_name}`` ground truth."""
    better, tied, _ = ranking_counts(rankings, ground_truth, num_videos)
    return metrics_from_counts(better, tied, cfg)


def per_query_ranking(rankings: Sequence[VideoRanking], ground_truth: Sequence[RetrievalAnnotation],
                      cfg: RetrievalEvalConfig | None = None,
                      num_videos: int | None = None) -> dict[str, dict[str, float]]:
    """The per-query values behind `ranking_metrics`' R@k: ``{"r1": {str(desc_id): value}, ...}`` in ground-truth
    order, value = 100 x `recall_hits` (the same counts and tie rule); each inner dict's mean is that R@k. (The
    median and mean rank are not means of per-query R@k values and have none.)"""
    cfg = cfg or RetrievalEvalConfig()
    better, tied, _ = ranking_counts(rankings, ground_truth, num_videos)
    if better.size == 0:
        raise ValueError("no queries to evaluate")
    ids = [str(g.desc_id) for g in ground_truth]
    return {f"r{k}": {q: 100.0 * float(v) for q, v in zip(ids, recall_hits(better, tied, k, cfg.tie_rule))}
            for k in cfg.recall_ks}
