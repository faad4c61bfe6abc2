"""Text-to-video retrieval: MSR-VTT style (docs/hero-fidelity.md c.2).

Only the global part of VSM: the query encoder, max-over-frames cosine video scores, and the hinge
(or log-sum-exp) ranking losses against in-batch negative videos and queries, hard negatives from a step.
Inference: the video scores of every query against the encoded corpus, for ranking (R@k, median/mean rank).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import Tensor

from hero.config import ConfigError
from hero.data.batch import VideoBatch
from hero.data.task_collate import collate_videos, pad_token_lists, unique_videos
from hero.metrics import scoring
from hero.metrics.formats import rankings_from_scores, write_rankings
from hero.model.config import ModelConfig
from hero.tasks.base import TaskOutput
from hero.tasks.config import RankingLossConfig
from hero.tasks.downstream import DownstreamTask
from hero.tasks.prediction import PredictContext, PredictOptions, Written
from hero.tasks.registry import register_task
from hero.tasks.moment_retrieval import EncodedCorpus, RetrievalQueries, corpus_video_scores, encode_corpus
from hero.tasks.vsm import VsmHead, ranking_loss, video_scores
from hero.text.tokenizer import SpecialTokens


@dataclass(frozen=True, kw_only=True)
class TextVideoRetrievalConfig(RankingLossConfig):
    """Defaults: HERO's MSR-VTT config (negatives weighted 10, hard pool 80 from step 2000)."""

    lw_neg_ctx: float = 10.0
    lw_neg_q: float = 10.0
    hard_negative_start_step: int = 2000
    hard_pool_size: int = 80
    max_query_len: int = 60
    """Longest query in tokens, [CLS] included (longer ones are cut)."""
    score_chunk: int = 256
    """Queries scored at a time at inference ([chunk, videos, T] similarities in memory)."""
    text_match: bool = False
    """Beyond HERO: add the query's similarity to the video's best-matching subtitle, by the encoder's own text
    side, to the video score (`hero.tasks.downstream.QuerySubtitleMatch`'s video term). HERO scores the frames
    only."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.max_query_len < 2:
            raise ConfigError(f"max_query_len: must be >= 2, got {self.max_query_len}")
        if self.score_chunk < 1:
            raise ConfigError(f"score_chunk: must be >= 1, got {self.score_chunk}")


@dataclass(frozen=True)
class TextVideoRetrievalInputs:
    """batch: B distinct videos; query_ids, query_mask: [Q, Lq] (CLS first); query_video: [Q] in 0..B-1;
    hard: hard-negative weighting (set per step by `prepare`)."""

    batch: VideoBatch
    query_ids: Tensor
    query_mask: Tensor
    query_video: Tensor
    hard: bool = False


def collate_text_video_retrieval(examples: Sequence[Mapping], tokens: SpecialTokens, cfg: TextVideoRetrievalConfig, *,
                                 clip_len: float | None = None, max_frames: int | None = None) -> TextVideoRetrievalInputs:
    """Examples ``{"video": video example, "query_ids": [CLS, ...]}`` -> inputs (videos deduplicated)."""
    videos, qv = unique_videos([e["video"] for e in examples])
    ids, mask = pad_token_lists([e["query_ids"] for e in examples], tokens.pad, cfg.max_query_len)
    return TextVideoRetrievalInputs(batch=collate_videos(videos, tokens, max_frames), query_ids=ids,
                                    query_mask=mask, query_video=qv)


@register_task
class TextVideoRetrievalTask(RetrievalQueries, DownstreamTask):
    """Hero encoder + the VSM head's query encoder (its span convolutions stay unused)."""

    name = "text_video_retrieval"
    config_cls = TextVideoRetrievalConfig
    collate = staticmethod(collate_text_video_retrieval)
    datasets = {"retrieval": "retrieval", "msrvtt": "retrieval"}
    headlines = ("r1",)
    PRETRAINED = {"encoder.": "encoder.", "heads.vsm.": "head."}

    def __init__(self, model_cfg: ModelConfig, cfg: TextVideoRetrievalConfig, tokens: SpecialTokens) -> None:
        super().__init__(model_cfg, cfg, tokens)
        self.head = VsmHead(model_cfg, text_match=cfg.text_match)
        self._init_head()

    def prepare(self, inputs: TextVideoRetrievalInputs, generator: torch.Generator, step: int) -> TextVideoRetrievalInputs:
        return replace(inputs, hard=step >= self.cfg.hard_negative_start_step)

    def forward(self, inputs: TextVideoRetrievalInputs) -> TaskOutput:
        out = self.encoder(inputs.batch)
        query, query_text = self.encode_query_text(inputs.query_ids, inputs.query_mask)
        scores = video_scores(query, out.frame_states, out.frame_mask)
        if self.head.match is not None:
            match, has = self.batch_match(inputs.batch, query_text)
            scores = self.head.match.video_scores(scores, match, has[None])
        loss_ctx, loss_q = ranking_loss(scores, inputs.query_video, self.cfg, inputs.hard)
        loss = self.cfg.lw_neg_ctx * loss_ctx + self.cfg.lw_neg_q * loss_q
        r1 = (scores.argmax(1) == inputs.query_video).float().mean()
        metrics = {"text_video_retrieval/loss": loss.detach(), "text_video_retrieval/loss_neg_ctx": loss_ctx.detach(),
                   "text_video_retrieval/loss_neg_q": loss_q.detach(), "text_video_retrieval/r1": r1.detach()}
        return TaskOutput(loss=loss, metrics=metrics, count=int(inputs.query_ids.shape[0]))

    def encode_corpus(self, batches: Iterable[VideoBatch], device: torch.device | str | None = None) -> EncodedCorpus:
        return encode_corpus(self.encoder, batches, device, subtitles=self.subtitle_embedder())

    @torch.no_grad()
    def predict(self, query_ids: Tensor, query_mask: Tensor, corpus: EncodedCorpus) -> Tensor:
        """[Nq, Nv] video scores (max cosine, higher = better), ``score_chunk`` queries at a time; rank them
        with hero.metrics' ``retrieval_metrics`` (tie rule included)."""
        parts = []
        for q0 in range(0, query_ids.shape[0], self.cfg.score_chunk):
            sl = slice(q0, q0 + self.cfg.score_chunk)
            q, q_text = self.encode_query_text(query_ids[sl], query_mask[sl])
            parts.append(corpus_video_scores(q, corpus, self.head.match, q_text).cpu())
        return torch.cat(parts)

    def write_predictions(self, ctx: PredictContext) -> Written:
        """Queries against the encoded corpus -> scores [Nq, Nv] -> ranking lines."""
        corpus, ids, mask = ctx.encode_corpus()
        scores = self.predict(ids, mask, corpus)
        ranks = rankings_from_scores([e["id"] for e in ctx.raw], corpus.video_ids, scores, ctx.options.top_k)
        write_rankings(ctx.out_path, [replace(r, desc=e["desc"]) for r, e in zip(ranks, ctx.raw)])
        return Written(len(ctx.raw), num_videos=len(corpus.video_ids))

    @classmethod
    def score(cls, predictions: Path, annotations: Path, options: PredictOptions, written: Written) -> dict:
        return scoring.score_text_to_video(predictions, annotations, options.retrieval_eval, written.num_videos)

    @classmethod
    def per_example(cls, predictions: Path, annotations: Path, options: PredictOptions,
                    written: Written | None = None) -> dict[str, dict[str, float]]:
        """Every R@k of ``score`` per query under its tie rule. Pass ``written`` (the corpus size) when the file
        keeps only each query's top videos, as ``score`` needs it too."""
        return scoring.per_example_text_to_video(predictions, annotations, options.retrieval_eval,
                                                 written.num_videos if written is not None else None)
