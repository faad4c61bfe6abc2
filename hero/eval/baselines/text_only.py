"""Text-only baselines: the query, answer, statement or moment matched against the subtitles, with no video and
nothing trained (a sentence encoder, `hero.eval.baselines.encoder`; similarity = cosine of the embeddings).

- TVR / How2R: every subtitle of the corpus is a candidate moment, its span widened to the clip grid
  (``[floor(start / clip_len) * clip_len, ceil(end / clip_len) * clip_len]``, at least one clip). VCMR ranks the
  subtitles of every corpus video by similarity to the query; SVMR those of the query's video (a video without
  subtitles: its whole length); VR ranks the videos by their best subtitle. Spans that widen to the same moment
  count once, at their best rank.
- text-to-video retrieval: the videos ranked by their best subtitle.
- video QA (TVQA / How2QA): each answer (after the question, by default) against the subtitles in the question's
  window (``ts``; the whole video when it has none); the answer with the most similar subtitle wins. No subtitle
  in the window: the video's subtitles; none at all: the fallback answer (the train majority).
- VIOLIN: the statement's best similarity to the subtitles of its window; entailed when above a threshold
  (`best_threshold`, chosen by the caller on labelled statements).
- TVC: the caption of the training moment whose subtitles (those overlapping its span, joined) are the most
  similar to the evaluated moment's; a moment without subtitles gets the fallback caption.
A video without subtitles scores ``NO_TEXT`` (below any cosine), so it ranks after every video that has some.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from hero.corpus.manifest import Manifest
from hero.eval.baselines.encoder import SentenceEncoder
from hero.metrics.formats import (
    CaptionPrediction, QaAnswer, QueryPredictions, TvrSubmission, VideoRanking, ViolinLabel, rankings_from_scores,
)

Example = Mapping[str, Any]

NO_TEXT = -2.0
"""The similarity of a video (or window) with no subtitle: below any cosine."""


def embed(encoder: SentenceEncoder, texts: Sequence[str]) -> torch.Tensor:
    """[N, D] unit rows; [0, D] for no texts (``encoder`` is asked once, for the distinct texts)."""
    unique = list(dict.fromkeys(texts))
    if not unique:
        return torch.zeros(0, 0)
    vecs = encoder.encode(unique)
    row = {t: i for i, t in enumerate(unique)}
    return vecs[[row[t] for t in texts]]


def widen_to_clips(start: float, end: float, clip_len: float) -> tuple[float, float]:
    """A span stretched to the clip boundaries around it (at least one clip)."""
    first = math.floor(round(start / clip_len, 6))
    last = max(math.ceil(round(end / clip_len, 6)), first + 1)
    return first * clip_len, last * clip_len


def in_window(subs: Sequence[Sequence[Any]], ts: Sequence[float] | None) -> list[str]:
    """Texts of the subtitles ``[text, start, end]`` overlapping ``ts`` (all of them when ``ts`` is None)."""
    if ts is None:
        return [s[0] for s in subs]
    return [s[0] for s in subs if s[1] < ts[1] and s[2] > ts[0]]


@dataclass(frozen=True)
class SubtitleIndex:
    """Every subtitle of a corpus of videos as a candidate moment.

    videos: corpus order; video: [S] position of each subtitle's video; spans: [S, 2] widened seconds;
    vectors: [S, D] embeddings.
    """

    videos: list[str]
    video: np.ndarray
    spans: np.ndarray
    vectors: torch.Tensor

    @classmethod
    def build(cls, manifest: Manifest, videos: Sequence[str], encoder: SentenceEncoder) -> SubtitleIndex:
        texts, video, spans = [], [], []
        for i, v in enumerate(videos):
            for text, start, end in manifest.videos[v].subs:
                texts.append(text)
                video.append(i)
                spans.append(widen_to_clips(float(start), float(end), manifest.clip_len))
        return cls(videos=list(videos), video=np.asarray(video, dtype=np.int64),
                   spans=np.asarray(spans, dtype=np.float64).reshape(-1, 2), vectors=embed(encoder, texts))

    def similarity(self, queries: torch.Tensor) -> np.ndarray:
        """[Nq, S] cosine of each query with each subtitle."""
        if len(self.video) == 0:
            return np.zeros((len(queries), 0))
        return (queries @ self.vectors.t()).double().numpy()

    def video_scores(self, sim: np.ndarray) -> np.ndarray:
        """[Nq, Nv] each video's best subtitle (``NO_TEXT`` for a video without subtitles)."""
        out = np.full((len(self.videos), sim.shape[0]), NO_TEXT)
        np.maximum.at(out, self.video, sim.T)
        return out.T


def _moments(order: np.ndarray, index: SubtitleIndex, sim_row: np.ndarray, top_k: int) -> np.ndarray:
    """[K, 4] submission rows from subtitle indices in rank order; a repeated (video, span) keeps its first."""
    rows, seen = [], set()
    for j in order:
        key = (int(index.video[j]), float(index.spans[j, 0]), float(index.spans[j, 1]))
        if key in seen:
            continue
        seen.add(key)
        rows.append([key[0], key[1], key[2], float(sim_row[j])])
        if len(rows) == top_k:
            break
    return np.asarray(rows, dtype=np.float64).reshape(-1, 4)


def tvr_predictions(examples: Sequence[Example], manifest: Manifest, videos: Sequence[str],
                    encoder: SentenceEncoder, top_k: int = 100) -> TvrSubmission:
    """VCMR, SVMR and VR from query-subtitle similarity over the corpus ``videos`` (see the module docstring)."""
    index = SubtitleIndex.build(manifest, videos, encoder)
    sim = index.similarity(embed(encoder, [e["desc"] for e in examples]))         # [Nq, S]
    per_video = index.video_scores(sim)                                            # [Nq, Nv]
    pos = {v: i for i, v in enumerate(index.videos)}
    vcmr, svmr, vr = [], [], []
    for q, e in enumerate(examples):
        order = np.argsort(-sim[q], kind="stable")
        vcmr.append(QueryPredictions(desc_id=e["id"], desc=e["desc"],
                                     predictions=_moments(order, index, sim[q], top_k)))
        own = pos.get(e.get("vid_name"))
        rows = np.zeros((0, 4))
        if own is not None:
            rows = _moments(order[index.video[order] == own], index, sim[q], top_k)
            if len(rows) == 0:   # no subtitle to point at: the whole video
                clips = manifest.videos[index.videos[own]].num_clips
                rows = np.array([[own, 0.0, clips * manifest.clip_len, NO_TEXT]])
        svmr.append(QueryPredictions(desc_id=e["id"], desc=e["desc"], predictions=rows))
        ranked = np.argsort(-per_video[q], kind="stable")[:top_k]
        vr.append(QueryPredictions(desc_id=e["id"], desc=e["desc"], predictions=np.stack(
            [ranked.astype(np.float64), np.zeros(len(ranked)), np.zeros(len(ranked)), per_video[q, ranked]], axis=1)))
    return TvrSubmission(video2idx=pos, tasks={"VCMR": vcmr, "SVMR": svmr, "VR": vr})


def retrieval_predictions(examples: Sequence[Example], manifest: Manifest, videos: Sequence[str],
                          encoder: SentenceEncoder) -> list[VideoRanking]:
    """Every corpus video ranked by its best subtitle's similarity to the query."""
    index = SubtitleIndex.build(manifest, videos, encoder)
    scores = index.video_scores(index.similarity(embed(encoder, [e["desc"] for e in examples])))
    ranks = rankings_from_scores([e["id"] for e in examples], index.videos, scores)
    return [VideoRanking(desc_id=r.desc_id, ranked=r.ranked, desc=e["desc"]) for r, e in zip(ranks, examples)]


def _window_texts(manifest: Manifest, e: Example) -> list[str]:
    """The subtitles in the example's window; the whole video's when the window has none."""
    subs = manifest.videos[e["vid_name"]].subs if e.get("vid_name") in manifest.videos else []
    return in_window(subs, e.get("ts")) or in_window(subs, None)


def qa_predictions(examples: Sequence[Example], manifest: Manifest, encoder: SentenceEncoder, fallback: int,
                   with_question: bool = True) -> list[QaAnswer]:
    """The answer whose text (after the question when ``with_question``) best matches a subtitle of the window."""
    windows = [_window_texts(manifest, e) for e in examples]
    choices = [[f"{e['q']} {a}" if with_question else a for a in e["answers"]] for e in examples]
    sub_vecs = embed(encoder, [t for w in windows for t in w])
    ans_vecs = embed(encoder, [t for c in choices for t in c])
    out, s_at, a_at = [], 0, 0
    for e, w, c in zip(examples, windows, choices):
        subs, answers = sub_vecs[s_at:s_at + len(w)], ans_vecs[a_at:a_at + len(c)]
        s_at, a_at = s_at + len(w), a_at + len(c)
        # argmax keeps the first of equal scores: ties go to the lowest answer index
        idx = int((answers @ subs.t()).max(dim=1).values.argmax()) if len(w) else int(fallback)
        out.append(QaAnswer(qid=e["id"], answer_idx=idx))
    return out


def statement_scores(examples: Sequence[Example], manifest: Manifest, encoder: SentenceEncoder) -> np.ndarray:
    """[N] each VIOLIN statement's best similarity to a subtitle of its window (``NO_TEXT`` without one)."""
    windows = [_window_texts(manifest, e) for e in examples]
    sub_vecs = embed(encoder, [t for w in windows for t in w])
    stmt_vecs = embed(encoder, [e["desc"] for e in examples])
    out, at = np.full(len(examples), NO_TEXT), 0
    for i, w in enumerate(windows):
        if w:
            out[i] = float((stmt_vecs[i] @ sub_vecs[at:at + len(w)].t()).max())
        at += len(w)
    return out


def best_threshold(scores: np.ndarray, labels: Sequence[int]) -> float:
    """The threshold t maximising the accuracy of ``label = score > t`` on these examples: a midpoint between two
    adjacent distinct scores, or just below / above all of them; the lowest of equally good ones."""
    scores = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    if len(scores) == 0:
        raise ValueError("no labelled statements to choose a threshold on")
    values = np.unique(scores)
    cuts = np.concatenate([[values[0] - 1.0], (values[:-1] + values[1:]) / 2, [values[-1] + 1.0]])
    acc = [((scores > t).astype(np.int64) == y).mean() for t in cuts]
    return float(cuts[int(np.argmax(acc))])


def violin_predictions(examples: Sequence[Example], scores: np.ndarray, threshold: float) -> list[ViolinLabel]:
    return [ViolinLabel(desc_id=e["id"], label=int(s > threshold)) for e, s in zip(examples, scores)]


def _moment_text(manifest: Manifest, e: Example) -> str:
    subs = manifest.videos[e["vid_name"]].subs if e.get("vid_name") in manifest.videos else []
    return " ".join(in_window(subs, e["ts"]))


def caption_predictions(train: Sequence[Example], examples: Sequence[Example], manifest: Manifest,
                        encoder: SentenceEncoder, fallback: str) -> list[CaptionPrediction]:
    """Each moment gets the first caption of the training moment with the most similar subtitles."""
    pool = [(e, t) for e in train if e.get("descs") and (t := _moment_text(manifest, e))]
    pool_vecs = embed(encoder, [t for _, t in pool])
    texts = [_moment_text(manifest, e) for e in examples]
    query_vecs = embed(encoder, [t for t in texts if t])
    out, at = [], 0
    for e, t in zip(examples, texts):
        caption = fallback
        if t and pool:
            caption = pool[int((query_vecs[at] @ pool_vecs.t()).argmax())][0]["descs"][0]["desc"]
        at += bool(t)
        out.append(CaptionPrediction(vid_name=e["vid_name"], clip_id=e["id"],
                                     ts=(float(e["ts"][0]), float(e["ts"][1])), descs=(caption,)))
    return out
