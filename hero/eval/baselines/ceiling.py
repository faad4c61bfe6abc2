"""The identical-query ceiling of the ranking tasks: the most any model can score when two queries with the same
text must get the same ranking.

In video retrieval (TVR's VR, text-to-video retrieval) every query of a split ranks the same candidates, the
split's videos. A model's ranking is then a function of the query's text alone, so queries with identical text get
identical rankings: of a group of G such queries whose answers lie in different videos, at most as many hit at
rank 1 as share the video the ranking puts first. The rankings written here reach that bound at every rank k at
once: per distinct text, the videos in the order of how many of the group's queries they answer (ties in corpus
order), then the others. Their R@k is the ceiling of R@k: no model scores higher on that split.

A synthetic corpus describes each visual event by a template ("Bob picks up the apple."), and the same event happens
in several videos, so its visual-only queries repeat: a visual-only query's text is typically shared by several of
a split's videos, and no model can put the right one first for more than one query of each such group. Real
annotations (free-form sentences) rarely repeat, and their ceiling is near 100.

Moment retrieval gets the same treatment: VCMR lists, per distinct text, the group's ground-truth moments, video
by video in the order above; SVMR lists the group's moments in the query's own video. For VCMR this is the ceiling
where no text repeats inside one video (each moment is then one query's); where it does, a single predicted moment
might cover several of them, and the number here may sit below the true ceiling. SVMR's ceiling is 100 unless a
text repeats inside a video.

The ceiling reads the labels of the split it is scored on: it is a bound to read targets against, not a baseline.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence

import numpy as np

from hero.eval.baselines.chance import Example
from hero.metrics.formats import QueryPredictions, TvrSubmission, VideoRanking


def _groups(examples: Sequence[Example]) -> dict[str, list[Example]]:
    """Examples by their exact text (``desc``), in first-seen order."""
    groups: dict[str, list[Example]] = defaultdict(list)
    for e in examples:
        groups[e.get("desc", "")].append(e)
    return groups


def _video_order(group: Sequence[Example], videos: Sequence[str]) -> list[int]:
    """Indices into ``videos``: those answering the most of ``group`` first (ties in corpus order), then the rest."""
    counts = Counter(e.get("vid_name") for e in group)
    return sorted(range(len(videos)), key=lambda i: (-counts.get(videos[i], 0), i))


def ceiling_rankings(examples: Sequence[Example], videos: Sequence[str]) -> list[VideoRanking]:
    """Text-to-video retrieval: every query ranks all ``videos``, identical texts identically (module docstring)."""
    out = []
    for group in _groups(examples).values():
        order = _video_order(group, videos)
        ranked = tuple((videos[j], float(len(order) - r)) for r, j in enumerate(order))
        out.extend(VideoRanking(desc_id=e["id"], desc=e.get("desc", ""), ranked=ranked) for e in group)
    return out


def ceiling_tvr_submission(examples: Sequence[Example], videos: Sequence[str], top_k: int = 100) -> TvrSubmission:
    """VCMR, SVMR and VR over the corpus ``videos`` (in corpus order), identical texts identically (module
    docstring). A query whose video is not in the corpus gets no SVMR rows."""
    video2idx = {v: i for i, v in enumerate(videos)}
    answers: dict[str, tuple[dict[int, list[tuple[float, float]]], np.ndarray, np.ndarray]] = {}
    for text, group in _groups(examples).items():
        order = _video_order(group, videos)
        moments: dict[int, list[tuple[float, float]]] = defaultdict(list)   # video index -> the group's moments
        for e in group:
            if e.get("vid_name") in video2idx:
                moments[video2idx[e["vid_name"]]].append((float(e["ts"][0]), float(e["ts"][1])))
        moments = {v: list(dict.fromkeys(m)) for v, m in moments.items()}
        vcmr = _rows([(v, s, t) for v in order for s, t in moments.get(v, [])][:top_k])
        answers[text] = moments, vcmr, _rows([(v, 0.0, 0.0) for v in order[:top_k]])
    tasks: dict[str, list[QueryPredictions]] = {"VCMR": [], "SVMR": [], "VR": []}
    for e in examples:
        moments, vcmr, vr = answers[e.get("desc", "")]
        own = video2idx.get(e.get("vid_name"))
        svmr = _rows([(own, s, t) for s, t in moments.get(own, [])][:top_k]) if own is not None else np.zeros((0, 4))
        for name, rows in (("VCMR", vcmr), ("SVMR", svmr), ("VR", vr)):
            tasks[name].append(QueryPredictions(desc_id=e["id"], desc=e.get("desc", ""), predictions=rows))
    return TvrSubmission(video2idx=video2idx, tasks=tasks)


def _rows(items: Sequence[tuple[int, float, float]]) -> np.ndarray:
    """[K, 4] submission rows (video index, start, end, score) in the given order, scores K … 1."""
    k = len(items)
    return np.asarray([(v, s, t, float(k - r)) for r, (v, s, t) in enumerate(items)], dtype=np.float64).reshape(-1, 4)
