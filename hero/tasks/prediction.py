"""What every task's prediction shares: the options a user sets per dataset (`PredictOptions`, the keys of
``evaluate.options.<dataset>``) and the data side of one prediction run (`PredictContext`: the split's examples
joined with their features, batching, progress lines, the encoded retrieval corpus).

A task's ``write_predictions(ctx)`` uses the context and writes its public prediction file; ``hero.eval.predict``
builds the context, calls it and scores the file with the task's ``score``.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from hero.config import ConfigError
from hero.corpus.manifest import Manifest
from hero.data.batch import VideoBatch, tensors_to
from hero.data.channels import check_channels
from hero.data.datasets import TaskDataset, VideoFeatures, normalize_text
from hero.data.task_collate import collate_videos, pad_token_lists
from hero.metrics.captioning import CaptionEvalConfig
from hero.metrics.moment_metrics import MomentEvalConfig
from hero.metrics.moment_ranking import MomentRankConfig
from hero.metrics.retrieval import RetrievalEvalConfig
from hero.features.store import FeatureStore
from hero.text.tokenizer import TextTokenizer

if TYPE_CHECKING:
    from hero.tasks.downstream import DownstreamTask

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class PredictOptions:
    """How a split is predicted and scored (``evaluate.options.<dataset>`` in the pipeline's parameters)."""

    batch_size: int = 16
    """Examples per forward pass (per-example tasks) or queries per ranking chunk (retrieval)."""
    corpus_batch_size: int = 32
    """Videos encoded at a time when a retrieval task encodes its corpus."""
    channels: str = "both"
    """Input channels the model sees (``both``, ``video``, ``subtitles``): the finetuning run's ``data.channels``."""
    rank_cfg: MomentRankConfig | None = None
    """Moment ranking (default: HERO's). Its clip length is always the corpus's."""
    moment_eval: MomentEvalConfig | None = None
    """How moment predictions are judged (`MomentEvalConfig`: iou_thresholds, recall_ks, max_predictions, the
    multi-GT rule, by_type); None: the TVR evaluator's settings."""
    retrieval_eval: RetrievalEvalConfig | None = None
    """Text-to-video ranking metrics (`RetrievalEvalConfig`: recall_ks, tie_rule); None: R@1/5/10, ties counted
    against the model."""
    caption_eval: CaptionEvalConfig | None = None
    """Caption scoring (`CaptionEvalConfig`: meteor, tokenizer `auto` / `java` / `python`); None: the TVC
    evaluator's, METEOR when Java is on PATH."""
    beam_size: int | None = None
    """Captioning beam (default: the task config's)."""
    max_decode_len: int | None = None
    """Captioning length limit in tokens (default: the task config's)."""
    top_k: int | None = None
    """Videos kept per text-to-video ranking (None: the whole corpus)."""
    log_every: float = 10.0
    """Seconds between progress lines."""

    def __post_init__(self) -> None:
        try:
            check_channels(self.channels)
        except ValueError as err:
            raise ConfigError(f"channels: {err}") from None
        for key in ("batch_size", "corpus_batch_size"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key}: must be >= 1, got {getattr(self, key)}")
        for key in ("beam_size", "max_decode_len", "top_k"):
            value = getattr(self, key)
            if value is not None and value < 1:
                raise ConfigError(f"{key}: must be >= 1 or null, got {value}")


class Progress:
    """Logs ``<what>: done/total (rate/s, ETA)`` at most every ``every`` seconds, and once at the end."""

    def __init__(self, what: str, total: int, every: float) -> None:
        self.what, self.total, self.every = what, total, every
        self.done, self.t0 = 0, time.perf_counter()
        self.last = self.t0

    def step(self, n: int) -> None:
        self.done += n
        now = time.perf_counter()
        if now - self.last >= self.every or self.done >= self.total:
            self.last = now
            rate = self.done / max(now - self.t0, 1e-9)
            log.info("%s: %d/%d (%.1f/s, ETA %.0fs)", self.what, self.done, self.total, rate,
                     max(self.total - self.done, 0) / max(rate, 1e-9))


def batches(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


@dataclass(frozen=True)
class Written:
    """What a task's ``write_predictions`` produced: examples predicted, and the retrieval corpus size (scorers of
    text-to-video retrieval need it for ranks past the file's top-k)."""

    count: int
    num_videos: int | None = None


@dataclass(frozen=True, eq=False)
class PredictContext:
    """One prediction run: the model (eval mode, on ``device``), the split's ground truth (``raw``: the manifest's
    normalized examples), where the file goes, and the options."""

    model: "DownstreamTask"
    dataset: str
    split: str
    manifest: Manifest
    store: FeatureStore
    tokenizer: TextTokenizer
    raw: Sequence[dict]
    out_path: Path
    options: PredictOptions
    device: torch.device
    corpus_videos: Sequence[str] | None = None

    @property
    def clip_len(self) -> float:
        """Seconds per clip: the corpus's (the one fact every span conversion uses)."""
        return self.manifest.clip_len

    @property
    def max_frames(self) -> int:
        return self.model.model_cfg.max_frames

    def features(self, video_ids: Sequence[str]) -> VideoFeatures:
        return VideoFeatures(self.manifest, self.store, self.tokenizer, video_ids=list(video_ids),
                             max_frames=self.max_frames, channels=self.options.channels,
                             regions=self.model.model_cfg.regions)

    # ------------------------------------------------------------------ corpus retrieval
    def encode_corpus(self):
        """Every video of the retrieval corpus encoded once (``corpus_videos``, default the split's videos) and
        the queries ``[CLS] + desc`` as padded ids / mask on the device: ``(corpus, ids, mask)``."""
        vids = list(self.corpus_videos) if self.corpus_videos is not None else self.manifest.split_videos(self.split)
        if not vids:
            log.warning("%s/%s: no annotation names a video; the corpus is every video of the manifest",
                        self.dataset, self.split)
            vids = list(self.manifest.videos)
        feats = self.features(vids)
        prog = Progress(f"{self.dataset}/{self.split} encode corpus", len(vids), self.options.log_every)
        tokens = self.model.tokens

        def video_batches() -> Iterator[VideoBatch]:
            for chunk in batches(vids, self.options.corpus_batch_size):
                yield collate_videos([feats.example(v) for v in chunk], tokens, self.max_frames)
                prog.step(len(chunk))

        corpus = self.model.encode_corpus(video_batches(), self.device)
        ids, mask = pad_token_lists([[tokens.cls] + self.tokenizer.encode(normalize_text(e["desc"])) for e in self.raw],
                                    tokens.pad, self.model.cfg.max_query_len)
        return corpus, ids.to(self.device), mask.to(self.device)

    def rank_config(self) -> MomentRankConfig:
        """The moment ranking options with the corpus's clip length; a different clip length set by hand is an
        error naming both (spans would land on the wrong seconds)."""
        rule = getattr(self.model.cfg, "span_rule", None)    # the task's own span rule (moment retrieval)
        cfg = self.options.rank_cfg or (rule(self.clip_len) if rule else MomentRankConfig(clip_len=self.clip_len))
        if cfg.clip_len not in (self.clip_len, MomentRankConfig().clip_len):
            raise ConfigError(f"rank_cfg.clip_len: {cfg.clip_len} s differs from the corpus clip length "
                              f"{self.clip_len} s ({self.manifest.root}); leave it unset")
        return dataclasses.replace(cfg, clip_len=self.clip_len)

    # ------------------------------------------------------------------ per-example tasks
    def examples(self) -> TaskDataset:
        """The split's examples as the task's prediction items (one per example, no training pairs)."""
        vids = list(dict.fromkeys(e["vid_name"] for e in self.raw if e.get("vid_name") in self.manifest.videos))
        ds = TaskDataset(self.manifest, self.dataset, self.split, self.features(vids),
                         per_caption=False, window=getattr(self.model.cfg, "window", None), pairs=False)
        if len(ds) == 0:
            raise ValueError(f"{self.dataset}/{self.split}: no example names a video of this corpus")
        return ds

    def run(self, fn: Callable[[list[dict], Any], list]) -> list:
        """``fn(items, inputs on the device)`` over batches of the split's examples; the concatenated results."""
        ds = self.examples()
        out: list = []
        prog = Progress(f"{self.dataset}/{self.split} predict", len(ds), self.options.log_every)
        model = self.model
        for idx in batches(range(len(ds)), self.options.batch_size):
            items = [ds[i] for i in idx]
            inputs = model.collate(items, model.tokens, model.cfg, clip_len=self.clip_len, max_frames=self.max_frames)
            out += fn(items, tensors_to(inputs, self.device))
            prog.step(len(items))
        return out
