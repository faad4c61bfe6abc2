"""Chance and prior baselines: predictions that look at no input, only at the training labels or a random draw.

- video QA (TVQA / How2QA): every question gets the answer index most frequent in train (`majority`); the
  uniform random guess's expected accuracy is ``100 * mean(1 / number of answers)`` (`uniform_qa_accuracy`).
- VIOLIN: every statement gets the label most frequent in train.
- TVC: every moment gets the caption most frequent in train.
- TVR / How2R and text-to-video retrieval: a uniformly random ranking of the candidates the model ranks. For TVR
  a candidate is a (video, span) pair with the moment head's span rule (`hero.eval.MomentRankConfig`: start clip m,
  end clip n, ``min_len <= n - m < max_len``, covering ``[m * clip_len, (n + 1) * clip_len)`` seconds); VCMR draws
  from every video's spans, SVMR from the query's video's, VR is a random order of the videos. Expected metrics
  come from averaging seeded draws (the caller's `numpy.random.Generator`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from hero.metrics.formats import (
    CaptionPrediction, QaAnswer, QueryPredictions, TvrSubmission, VideoRanking, ViolinLabel,
)

Example = Mapping[str, Any]
"""A normalized manifest example (`hero.corpus.annotations`): ``{"id", "vid_name", "ts", ...task fields}``."""


def majority(values: Iterable[Hashable]) -> Any:
    """The most frequent value; ties go to the one seen first. Raises ValueError when there is none."""
    counts = Counter(values)
    if not counts:
        raise ValueError("no labelled training examples to take a majority from")
    best = max(counts.values())
    return next(v for v in counts if counts[v] == best)


def majority_answer(train: Sequence[Example]) -> int:
    return majority(e["answer_idx"] for e in train if e.get("answer_idx") is not None)


def majority_label(train: Sequence[Example]) -> int:
    return majority(e["label"] for e in train if e.get("label") is not None)


def most_frequent_caption(train: Sequence[Example]) -> str:
    """Over every reference caption of every training moment."""
    return majority(d["desc"] for e in train for d in e.get("descs", ()))


def uniform_qa_accuracy(examples: Sequence[Example]) -> float:
    """Expected accuracy (percent) of picking one of each question's answers uniformly at random."""
    return 100.0 * float(np.mean([1.0 / len(e["answers"]) for e in examples]))


def constant_answers(examples: Sequence[Example], answer_idx: int) -> list[QaAnswer]:
    return [QaAnswer(qid=e["id"], answer_idx=int(answer_idx)) for e in examples]


def constant_labels(examples: Sequence[Example], label: int) -> list[ViolinLabel]:
    return [ViolinLabel(desc_id=e["id"], label=int(label)) for e in examples]


def constant_captions(examples: Sequence[Example], caption: str) -> list[CaptionPrediction]:
    return [CaptionPrediction(vid_name=e["vid_name"], clip_id=e["id"], ts=(float(e["ts"][0]), float(e["ts"][1])),
                              descs=(caption,)) for e in examples]


def candidate_spans(num_clips: int, min_len: int, max_len: int) -> np.ndarray:
    """[K, 2] clip index pairs (m, n) with ``min_len <= n - m < max_len`` inside the video; a video too short
    for any such span gets its whole length as its one candidate."""
    spans = [(m, m + d) for d in range(min_len, max_len) for m in range(num_clips - d)]
    return np.asarray(spans or [(0, num_clips - 1)], dtype=np.int64).reshape(-1, 2)


def _ranked_rows(video_idx: np.ndarray, spans: np.ndarray, clip_len: float) -> np.ndarray:
    """[K, 4] submission rows (video index, start s, end s, score) in the given order, scores K … 1."""
    k = len(spans)
    return np.stack([video_idx.astype(np.float64), spans[:, 0] * clip_len, (spans[:, 1] + 1) * clip_len,
                     np.arange(k, 0, -1, dtype=np.float64)], axis=1).reshape(-1, 4)


def random_tvr_submission(examples: Sequence[Example], num_clips: Mapping[str, int], clip_len: float,
                          rng: np.random.Generator, *, min_len: int = 2, max_len: int = 16,
                          top_k: int = 100) -> TvrSubmission:
    """One random ranking per query (VCMR over all of ``num_clips``' videos, SVMR on the query's video, VR).

    num_clips: the corpus, ``{vid_name: clips}`` in corpus order. A query whose video is not in the corpus gets
    no SVMR rows (a miss, as for a model).
    """
    names = list(num_clips)
    video2idx = {v: i for i, v in enumerate(names)}
    spans = [candidate_spans(num_clips[v], min_len, max_len) for v in names]
    all_spans = np.concatenate(spans)                                           # [K, 2] every candidate
    all_video = np.repeat(np.arange(len(names)), [len(s) for s in spans])      # [K] its video
    vcmr, svmr, vr = [], [], []
    for e in examples:
        flat = rng.choice(len(all_spans), size=min(top_k, len(all_spans)), replace=False)
        vcmr.append(QueryPredictions(desc_id=e["id"], desc=e.get("desc", ""),
                                     predictions=_ranked_rows(all_video[flat], all_spans[flat], clip_len)))
        own = video2idx.get(e.get("vid_name"))
        rows = np.zeros((0, 4))
        if own is not None:
            order = rng.permutation(len(spans[own]))[:top_k]
            rows = _ranked_rows(np.full(len(order), own), spans[own][order], clip_len)
        svmr.append(QueryPredictions(desc_id=e["id"], desc=e.get("desc", ""), predictions=rows))
        order = rng.permutation(len(names))[:top_k]
        vr.append(QueryPredictions(desc_id=e["id"], desc=e.get("desc", ""),
                                   predictions=_ranked_rows(order, np.zeros((len(order), 2), dtype=np.int64), 0.0)))
    return TvrSubmission(video2idx=video2idx, tasks={"VCMR": vcmr, "SVMR": svmr, "VR": vr})


def random_rankings(examples: Sequence[Example], videos: Sequence[str],
                    rng: np.random.Generator) -> list[VideoRanking]:
    """Every video of the corpus in a random order per query (distinct scores, so no tie rule applies)."""
    out = []
    for e in examples:
        order = rng.permutation(len(videos))
        out.append(VideoRanking(desc_id=e["id"], desc=e.get("desc", ""),
                                ranked=tuple((videos[j], float(len(videos) - r)) for r, j in enumerate(order))))
    return out
