"""Batched inference of a finetuned task model over a corpus split -> prediction file (public format) -> metrics.

``predict_split`` runs the task's ``predict`` over every example of ``manifest.tasks[dataset][split]`` (eval mode, no
grad, ``batch_size`` examples at a time; retrieval encodes every corpus video once, ``corpus_batch_size`` videos at
a time, then ranks the queries in chunks), writes ``out_dir/<split>_predictions.json[l]`` atomically and scores it
with ``hero.metrics.scoring`` against ``<corpus root>/annotations/<dataset>_<split>.jsonl``:

| dataset | family | file | written by |
|---|---|---|---|
| tvr | moment_retrieval | ``<split>_predictions.json`` TVR submission (VCMR, SVMR, VR) | ``write_tvr_submission`` |
| tvqa | video_qa | ``.jsonl`` ``{"qid", "answer_idx", "ts"}`` | ``write_qa_answers`` |
| violin | violin | ``.jsonl`` ``{"desc_id", "label"}`` | ``write_violin_labels`` |
| tvc | captioning | ``.jsonl`` ``{"vid_name", "clip_id", "ts", "descs": [{"desc"}]}`` | ``write_captions`` |
| retrieval | text_video_retrieval | ``.jsonl`` ``{"desc_id", "predictions": [[vid, score]]}`` | ``write_rankings`` |

``retrieval_examples`` turns a TVR submission into plain dicts (top moments with their subtitles) for reports.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hero.corpus.manifest import Manifest
from hero.data.batch import VideoBatch, tensors_to
from hero.data.channels import check_channels
from hero.data.datasets import TaskDataset, VideoFeatures, normalize_text
from hero.data.task_collate import collate_videos, pad_token_lists
from hero.metrics import scoring
from hero.metrics.captioning import CaptionEvalConfig
from hero.metrics.formats import (
    CaptionPrediction, QaAnswer, TvrSubmission, ViolinLabel, read_tvr_submission, rankings_from_scores,
    write_captions, write_qa_answers, write_rankings, write_tvr_submission, write_violin_labels,
)
from hero.metrics.formats.files import PathLike
from hero.metrics.moment_metrics import MomentEvalConfig, temporal_iou
from hero.metrics.moment_ranking import MomentRankConfig
from hero.metrics.report import flatten_metrics
from hero.metrics.retrieval import RetrievalEvalConfig
from hero.metrics.submission import tvr_submission
from hero.features.store import FeatureStore
from hero.text.tokenizer import TextTokenizer

log = logging.getLogger(__name__)

FAMILY_OF_DATASET = {"tvr": "moment_retrieval", "how2r": "moment_retrieval", "didemo": "moment_retrieval",
                     "tvqa": "video_qa", "how2qa": "video_qa", "violin": "violin", "tvc": "captioning",
                     "retrieval": "text_video_retrieval", "msrvtt": "text_video_retrieval"}
"""Dataset (annotation file prefix) -> task family (``hero.tasks.TASKS`` name)."""


def prediction_path(out_dir: PathLike, dataset: str, split: str) -> Path:
    """``out_dir/<split>_predictions.json`` for moment retrieval (one JSON document), ``.jsonl`` for the others."""
    ext = "json" if FAMILY_OF_DATASET.get(dataset) == "moment_retrieval" else "jsonl"
    return Path(out_dir) / f"{split}_predictions.{ext}"


def annotation_path(manifest: Manifest, dataset: str, split: str) -> Path:
    """The ground truth of a split: ``<manifest.root>/annotations/<dataset>_<split>.jsonl``."""
    return Path(manifest.root) / "annotations" / f"{dataset}_{split}.jsonl"


class _Progress:
    """Logs ``<what>: done/total (rate/s)`` at most every ``every`` seconds, and once at the end."""

    def __init__(self, what: str, total: int, every: float) -> None:
        self.what, self.total, self.every = what, total, every
        self.done, self.t0 = 0, time.perf_counter()
        self.last = self.t0

    def step(self, n: int) -> None:
        self.done += n
        now = time.perf_counter()
        if now - self.last >= self.every or self.done >= self.total:
            self.last = now
            log.info("%s: %d/%d (%.1f/s)", self.what, self.done, self.total, self.done / max(now - self.t0, 1e-9))


def _batches(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def predict_split(task_model: torch.nn.Module, dataset: str, manifest: Manifest, store: FeatureStore,
                  tokenizer: TextTokenizer, split: str, out_dir: PathLike, *, batch_size: int = 16,
                  corpus_batch_size: int = 32, device: torch.device | str = "cpu", score: bool = True,
                  annotations: PathLike | None = None, corpus_videos: Sequence[str] | None = None,
                  rank_cfg: MomentRankConfig | None = None, moment_eval: MomentEvalConfig | None = None,
                  retrieval_eval: RetrievalEvalConfig | None = None, caption_eval: CaptionEvalConfig | None = None,
                  beam_size: int | None = None, max_decode_len: int | None = None, top_k: int | None = None,
                  channels: str = "both", log_every: float = 10.0) -> dict[str, Any]:
    """Predict every example of ``dataset``/``split``, write the prediction file, score it.

    Args:
        task_model: a ``hero.tasks`` downstream task of the dataset's family; moved to ``device``, run in eval mode
            (its training flag is restored afterwards).
        dataset: annotation prefix (tvr, tvqa, violin, tvc, retrieval; see ``FAMILY_OF_DATASET``).
        score: read the ground truth and compute metrics (False: only write predictions, e.g. an unlabeled test).
        annotations: ground-truth file (default ``annotation_path(manifest, dataset, split)``).
        corpus_videos: retrieval corpus (default: every video of the split, ``manifest.split_videos(split)``).
        rank_cfg: moment ranking (default HERO's with ``clip_len = manifest.clip_len``).
        beam_size, max_decode_len: captioning decoding (default: the task config's).
        top_k: videos kept per text-to-video ranking (None: the whole corpus).
        channels: the input channels the model sees (``both``, ``video``, ``subtitles``; `hero.data.channels`):
            the finetuning run's ``data.channels``, so prediction blanks what training blanked.
    Returns:
        ``{"metrics": {"<dataset>/<split>/<metric>": value}, "predictions": str path, "count": examples,
        "seconds": wall time}`` (metrics empty when ``score`` is False).
    Raises:
        FileNotFoundError: ``score`` and the annotation file is missing (names the file).
        ValueError: unknown dataset, a model of another family, or a split with no examples (names the file).
    """
    check_channels(channels)
    family = FAMILY_OF_DATASET.get(dataset)
    if family is None:
        raise ValueError(f"unknown dataset {dataset!r} (known: {', '.join(sorted(FAMILY_OF_DATASET))})")
    if getattr(task_model, "name", None) != family:
        got = getattr(task_model, "name", type(task_model).__name__)
        raise ValueError(f"{dataset} needs a {family} task model, got {got!r}")
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
            ctx = _Ctx(task_model, dataset, manifest, store, tokenizer, split, batch_size, corpus_batch_size,
                       torch.device(device), log_every, channels)
            if family == "moment_retrieval":
                count, num_videos = ctx.moment_retrieval(raw, out_path, corpus_videos, rank_cfg), None
            elif family == "text_video_retrieval":
                count, num_videos = ctx.text_video_retrieval(raw, out_path, corpus_videos, top_k)
            else:
                count, num_videos = getattr(ctx, family)(out_path, beam_size, max_decode_len), None
    finally:
        task_model.train(was_training)
    seconds = time.perf_counter() - t0
    log.info("%s/%s: %d predictions in %.1fs -> %s", dataset, split, count, seconds, out_path)
    metrics: dict[str, float] = {}
    if score:
        scorers = {
            "moment_retrieval": lambda: scoring.score_moment_retrieval(out_path, ann, moment_eval),
            "video_qa": lambda: scoring.score_video_qa(out_path, ann),
            "violin": lambda: scoring.score_violin(out_path, ann),
            "captioning": lambda: scoring.score_captioning(out_path, ann, caption_eval),
            "text_video_retrieval": lambda: scoring.score_text_to_video(out_path, ann, retrieval_eval, num_videos),
        }
        metrics = flatten_metrics(dataset, split, scorers[family]())
    return {"metrics": metrics, "predictions": str(out_path), "count": count, "seconds": seconds}


class _Ctx:
    """One ``predict_split`` call: the model, the data and the batching knobs; one method per family."""

    def __init__(self, model, dataset: str, manifest: Manifest, store: FeatureStore, tokenizer: TextTokenizer,
                 split: str, batch_size: int, corpus_batch_size: int, device: torch.device, log_every: float,
                 channels: str = "both") -> None:
        self.model, self.dataset, self.manifest, self.store, self.tok = model, dataset, manifest, store, tokenizer
        self.split, self.batch_size, self.corpus_batch_size = split, batch_size, corpus_batch_size
        self.device, self.log_every, self.channels = device, log_every, channels
        self.max_frames = model.model_cfg.max_frames

    def _features(self, video_ids: Sequence[str]) -> VideoFeatures:
        return VideoFeatures(self.manifest, self.store, self.tok, video_ids=list(video_ids), max_frames=self.max_frames,
                             channels=self.channels)

    # ------------------------------------------------------------------ corpus retrieval
    def _corpus(self, raw: Sequence[dict], corpus_videos: Sequence[str] | None):
        vids = list(corpus_videos) if corpus_videos is not None else self.manifest.split_videos(self.split)
        if not vids:
            log.warning("%s/%s: no annotation names a video; the corpus is every video of the manifest",
                        self.dataset, self.split)
            vids = list(self.manifest.videos)
        feats = self._features(vids)
        prog = _Progress(f"{self.dataset}/{self.split} encode corpus", len(vids), self.log_every)

        def batches() -> Iterator[VideoBatch]:
            for chunk in _batches(vids, self.corpus_batch_size):
                yield collate_videos([feats.example(v) for v in chunk], self.model.tokens, self.max_frames)
                prog.step(len(chunk))

        corpus = self.model.encode_corpus(batches(), self.device)
        ids, mask = pad_token_lists([[self.model.tokens.cls] + self.tok.encode(normalize_text(e["desc"])) for e in raw],
                                    self.model.tokens.pad, self.model.cfg.max_query_len)
        return corpus, ids.to(self.device), mask.to(self.device)

    def moment_retrieval(self, raw: Sequence[dict], out_path: Path, corpus_videos: Sequence[str] | None,
                         rank_cfg: MomentRankConfig | None) -> int:
        """Queries [Nq, Lq] against the encoded corpus [Nv, T, D] -> VCMR / VR (+ SVMR when every query has its
        video in the corpus) -> TVR submission."""
        rank_cfg = rank_cfg or MomentRankConfig(clip_len=self.manifest.clip_len)
        if rank_cfg.clip_len != self.manifest.clip_len:
            log.warning("rank_cfg.clip_len %s != the corpus clip length %s", rank_cfg.clip_len, self.manifest.clip_len)
        corpus, ids, mask = self._corpus(raw, corpus_videos)
        pos = {v: i for i, v in enumerate(corpus.video_ids)}
        gt = [pos.get(e.get("vid_name")) for e in raw]
        gt_video = torch.tensor(gt, device=self.device) if all(g is not None for g in gt) else None
        if gt_video is None:
            log.warning("%s/%s: some queries have no video in the corpus; no SVMR", self.dataset, self.split)
        t0 = time.perf_counter()
        pred = self.model.predict(ids, mask, corpus, rank_cfg, gt_video=gt_video)
        log.info("%s/%s: ranked %d queries against %d videos (%.1f queries/s)", self.dataset, self.split, len(raw),
                 len(corpus.video_ids), len(raw) / max(time.perf_counter() - t0, 1e-9))
        write_tvr_submission(out_path, tvr_submission(list(corpus.video_ids), [e["id"] for e in raw], vcmr=pred.vcmr,
                                                      svmr=pred.svmr, vr=pred.vr, descs=[e["desc"] for e in raw]))
        return len(raw)

    def text_video_retrieval(self, raw: Sequence[dict], out_path: Path, corpus_videos: Sequence[str] | None,
                             top_k: int | None) -> tuple[int, int]:
        """Queries against the encoded corpus -> scores [Nq, Nv] -> ranking lines; returns (queries, corpus size)."""
        corpus, ids, mask = self._corpus(raw, corpus_videos)
        scores = self.model.predict(ids, mask, corpus)
        ranks = rankings_from_scores([e["id"] for e in raw], corpus.video_ids, scores, top_k)
        write_rankings(out_path, [dataclasses.replace(r, desc=e["desc"]) for r, e in zip(ranks, raw)])
        return len(raw), len(corpus.video_ids)

    # ------------------------------------------------------------------ per-example families
    def _examples(self, per_caption: bool = True) -> TaskDataset:
        vids = list(dict.fromkeys(e["vid_name"] for e in self.manifest.tasks[self.dataset][self.split]
                                  if e.get("vid_name") in self.manifest.videos))
        ds = TaskDataset(self.manifest, self.dataset, self.split, self._features(vids), per_caption=per_caption,
                         window=getattr(self.model.cfg, "window", None), pairs=False)
        if len(ds) == 0:
            raise ValueError(f"{self.dataset}/{self.split}: no example names a video of this corpus")
        return ds

    def _run(self, ds: TaskDataset, fn) -> list:
        """``fn(items, inputs on device)`` over batches of items; returns the concatenated results."""
        out: list = []
        prog = _Progress(f"{self.dataset}/{self.split} predict", len(ds), self.log_every)
        for idx in _batches(range(len(ds)), self.batch_size):
            items = [ds[i] for i in idx]
            inputs = self.model.collate(items, self.model.tokens, self.model.cfg, max_frames=self.max_frames)
            out += fn(items, tensors_to(inputs, self.device))
            prog.step(len(items))
        return out

    def video_qa(self, out_path: Path, *_: Any) -> int:
        """Answer argmax per question [N] + the span heads' argmax frames -> seconds."""
        clip = self.manifest.clip_len

        def fn(items, inputs):
            p = self.model.predict(inputs)
            st, ed = p.start.tolist(), p.end.tolist()
            return [QaAnswer(qid=it["id"], answer_idx=int(a), ts=(min(s, e) * clip, (max(s, e) + 1) * clip))
                    for it, a, s, e in zip(items, p.answer.tolist(), st, ed)]

        answers = self._run(self._examples(), fn)
        write_qa_answers(out_path, answers)
        return len(answers)

    def violin(self, out_path: Path, *_: Any) -> int:
        """Entailment label [N] per statement."""
        def fn(items, inputs):
            labels = self.model.predict(inputs).label.tolist()
            return [ViolinLabel(desc_id=it["id"], label=int(x)) for it, x in zip(items, labels)]

        labels = self._run(self._examples(), fn)
        write_violin_labels(out_path, labels)
        return len(labels)

    def captioning(self, out_path: Path, beam_size: int | None, max_len: int | None) -> int:
        """One generated caption per clip (token ids -> text with the tokenizer)."""
        def fn(items, inputs):
            ids = self.model.predict(inputs, beam_size=beam_size, max_len=max_len)
            return [CaptionPrediction(vid_name=it["vid_name"], clip_id=it["id"], ts=tuple(map(float, it["ts"])),
                                      descs=(self.tok.decode(list(t)).strip(),)) for it, t in zip(items, ids)]

        caps = self._run(self._examples(per_caption=False), fn)
        write_captions(out_path, caps)
        return len(caps)


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
