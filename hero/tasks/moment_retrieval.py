"""Video corpus moment retrieval: TVR / How2R / DiDeMo (VCMR, SVMR, VR), docs/hero-fidelity.md c.1.

Training reuses the VSM head and losses (hero/tasks/vsm.py) with one query per item: local start/end
cross-entropy (weight ``lw_st_ed``, dropped with probability ``drop_svmr_prob`` per step) and the global
hinge ranking against every in-batch negative video and query (hard negatives from a step).

Inference encodes every corpus video once (`encode_corpus`), then scores query chunks against the whole
corpus: raw video scores (max cosine; the ranking applies ``exp(q2c_alpha * s)``) and start/end
probabilities, handed to hero.metrics' ``rank_vcmr`` / ``rank_svmr`` / ``rank_videos`` chunk by chunk, so
memory stays bounded by ``query_chunk x corpus videos x T``; the start/end convolutions run only on the videos
a ranking reads (each query's ``max_videos`` best and its GT video).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from hero.config import ConfigError
from hero.data.batch import VideoBatch
from hero.data.task_collate import collate_videos, pad_token_lists, span_labels, unique_videos
from hero.metrics import scoring
from hero.metrics.formats import write_tvr_submission
from hero.metrics.moment_ranking import (
    MomentRankConfig, MomentRanking, RankedVideos, rank_svmr, rank_vcmr, rank_videos, topk_stable,
)
from hero.metrics.submission import tvr_submission
from hero.model.config import ModelConfig
from hero.tasks.base import TaskOutput
from hero.tasks.config import SpanLossConfig
from hero.tasks.downstream import DownstreamTask, QuerySubtitleMatch, frame_subtitles, unit_mean_pool
from hero.tasks.prediction import PredictContext, PredictOptions, Written
from hero.tasks.registry import register_task
from hero.tasks.vsm import MASK_LOGIT, VsmHead, gather_pool, ranking_loss, video_scores
from hero.text.tokenizer import SpecialTokens

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class MomentRetrievalConfig(SpanLossConfig):
    """Finetuning losses (defaults: HERO's TVR config, docs/hero-fidelity.md c.1). Spans are converted to frames
    with the corpus's clip length (the manifest's), never a per-task copy."""

    hard_negative_start_step: int = 2000
    """HERO's TVR finetuning turns hard negatives on at step 2000 (pretraining: 20000)."""
    max_query_len: int = 60
    """Longest query in tokens, [CLS] included (longer ones are cut)."""
    gather_across_ranks: bool = False
    """Rank every query against the videos of all ranks, and every video against all ranks' queries (queries and
    videos all-gathered, differentiably; HERO's TVR finetuning does, as its pretraining VSM). No effect on 1 rank."""
    min_span: int = 2
    """Shortest predicted moment: spans (start clip m, end clip n) with ``n - m >= min_span``, i.e. at least
    ``min_span + 1`` clips (HERO's TVR ``min_pred_l``: 2, for TVR's moments of ~9 s at 1.5 s per clip). Set it from
    the corpus's moment lengths: a moment shorter than the shortest span can never reach a high tIoU. Model
    selection, evaluation and search rank with it (`span_rule`) unless ``evaluate.options.<dataset>.rank_cfg``
    gives a whole ranking config."""
    max_span: int = 16
    """Spans have ``n - m < max_span`` (HERO's TVR ``max_pred_l``: 16)."""
    text_match: bool = False
    """Beyond HERO: add the query's similarity to the subtitles, by the encoder's own text side, to the video scores
    and to the start/end logits (`hero.tasks.downstream.QuerySubtitleMatch`: the best subtitle's cosine mixed into
    the video score; the best subtitle's first and last frames raised in the start and end logits). HERO scores the
    frames only. Not with ``gather_across_ranks`` on several ranks."""
    match_lr_mult: float = 1.0
    """With ``text_match``: the learning-rate multiplier of the match's scalars (edge scales and sharpness, which
    start at 10, and the video weight's logit; ``head.match.*``). Adam moves a parameter by about its rate per step,
    so at a head's rate (5e-4) they stay where they start; the demo sets 1000 (docs/results.md, "Span scales").
    A run's ``optim.lr_mult`` naming ``heads.head.match`` wins. Ignored without ``text_match``."""
    visual_span_weights: tuple[float, ...] = (1.0,)
    """With ``text_match``: the weights of the frames' start/end terms beside the subtitle edges that model
    selection tries at every evaluation, keeping the best with the checkpoint (``visual_span_weight`` in its state;
    the first listed wins ties). Training always uses the terms as they are; evaluation and search use the kept
    weight. ``[1.0]``: the terms as trained (HERO's). Each in [0, 1]. Ignored without ``text_match``."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.max_query_len < 2:
            raise ConfigError(f"max_query_len: must be >= 2, got {self.max_query_len}")
        weights = tuple(self.visual_span_weights)
        if not weights or any(not 0.0 <= w <= 1.0 for w in weights):
            raise ConfigError(f"visual_span_weights: one or more weights in [0, 1], got {list(weights)}")
        if not 0.0 < self.match_lr_mult < math.inf:
            raise ConfigError(f"match_lr_mult: must be finite and > 0, got {self.match_lr_mult}")
        if self.min_span < 0:
            raise ConfigError(f"min_span: must be >= 0, got {self.min_span}")
        if self.max_span <= self.min_span:
            raise ConfigError(f"max_span: must be > min_span={self.min_span}, got {self.max_span}")

    def span_rule(self, clip_len: float, **kwargs) -> MomentRankConfig:
        """The moment ranking with this task's span rule and the corpus's ``clip_len`` (``kwargs``: other fields)."""
        return MomentRankConfig(clip_len=clip_len, min_len=self.min_span, max_len=self.max_span, **kwargs)


@dataclass(frozen=True)
class MomentRetrievalInputs:
    """batch: the B distinct videos; one row per query:
    query_ids, query_mask: [Q, Lq] (CLS first); query_video: [Q] in 0..B-1; start, end: [Q] frame targets
    (inclusive end, -1 = none); use_local / hard: set per step by `MomentRetrievalTask.prepare`."""

    batch: VideoBatch
    query_ids: Tensor
    query_mask: Tensor
    query_video: Tensor
    start: Tensor
    end: Tensor
    use_local: bool = True
    hard: bool = False


def collate_moment_retrieval(examples: Sequence[Mapping], tokens: SpecialTokens, cfg: MomentRetrievalConfig, *,
                             clip_len: float, max_frames: int | None = None) -> MomentRetrievalInputs:
    """Examples ``{"video": video example, "query_ids": [CLS, ...], "ts": (t0, t1) seconds or None}`` ->
    inputs; ``clip_len``: the corpus's seconds per frame feature (the span labels' unit). Queries of the same
    video share one copy of it (so it is never its own negative)."""
    videos, qv = unique_videos([e["video"] for e in examples])
    batch = collate_videos(videos, tokens, max_frames)
    n = batch.frame_mask.sum(1).tolist()
    labels = [span_labels(e.get("ts"), int(n[int(v)]), clip_len) for e, v in zip(examples, qv)]
    ids, mask = pad_token_lists([e["query_ids"] for e in examples], tokens.pad, cfg.max_query_len)
    return MomentRetrievalInputs(batch=batch, query_ids=ids, query_mask=mask, query_video=qv,
                                 start=torch.tensor([s for s, _ in labels]), end=torch.tensor([e for _, e in labels]))


@dataclass(frozen=True, eq=False)
class EncodedCorpus:
    """Every corpus video encoded once. frames: [Nv, T, D]; frame_mask: [Nv, T]; video_ids: Nv names;
    frame_norms: [Nv, T] L2 norms of the frames (computed on construction when not given); for a model with a
    query-subtitle match, also sub_embed: [Ns, D] every subtitle's unit text embedding and frame_sub: [Nv, T] the
    row of sub_embed each frame is aligned to (-1 none)."""

    frames: Tensor
    frame_mask: Tensor
    video_ids: tuple[str, ...]
    frame_norms: Tensor | None = None
    sub_embed: Tensor | None = None
    frame_sub: Tensor | None = None

    def __post_init__(self) -> None:
        if self.frame_norms is None:   # cosines without a normalised copy of the corpus (F.normalize's eps)
            object.__setattr__(self, "frame_norms", self.frames.float().norm(dim=-1).clamp(min=1e-12))

    @property
    def num_frames(self) -> Tensor:
        return self.frame_mask.sum(1)


@dataclass(frozen=True, eq=False)
class MomentScores:
    """One query chunk against the corpus. video_scores: [c, Nv] raw max cosine; st_probs, ed_probs: [c, Nv, T],
    or [c, K, T] for the corpus positions ``videos`` [c, K] only (`corpus_scores` with ``max_videos``)."""

    video_scores: Tensor
    st_probs: Tensor
    ed_probs: Tensor
    videos: Tensor | None = None


@dataclass(frozen=True, eq=False)
class MomentPredictions:
    """VCMR moments, SVMR moments (when GT videos were given) and the VR video list, per query."""

    vcmr: MomentRanking
    svmr: MomentRanking | None
    vr: RankedVideos


@torch.no_grad()
def encode_corpus(encoder, batches: Iterable[VideoBatch], device: torch.device | str | None = None,
                  subtitles: Callable[[VideoBatch], Tensor] | None = None) -> EncodedCorpus:
    """Run ``encoder`` over every batch once (no grad) and stack the frame states, padded to a common T; with
    ``subtitles`` (batch -> [S, D] unit rows, `QuerySubtitleMatch.subtitle_embeddings`) also every subtitle's
    embedding and each frame's subtitle row (``sub_embed``, ``frame_sub``)."""
    frames, masks, names, subs, frame_sub, offset = [], [], [], [], [], 0
    for b in batches:
        if device is not None:
            b = b.to(device)
        out = encoder(b)
        frames.append(out.frame_states)
        masks.append(out.frame_mask)
        names += list(b.video_ids) or [str(len(names) + i) for i in range(b.num_videos)]
        if subtitles is not None:
            subs.append(subtitles(b))
            rows = frame_subtitles(b)
            frame_sub.append(torch.where(rows >= 0, rows + offset, rows))
            offset += subs[-1].shape[0]
    T = max(f.shape[1] for f in frames)
    frames = torch.cat([F.pad(f, (0, 0, 0, T - f.shape[1])) for f in frames])
    masks = torch.cat([F.pad(m, (0, T - m.shape[1])) for m in masks])
    if subtitles is None:
        return EncodedCorpus(frames=frames, frame_mask=masks, video_ids=tuple(names))
    return EncodedCorpus(frames=frames, frame_mask=masks, video_ids=tuple(names), sub_embed=torch.cat(subs),
                         frame_sub=torch.cat([F.pad(r, (0, T - r.shape[1]), value=-1) for r in frame_sub]))


def corpus_match(match: QuerySubtitleMatch | None, query_text: Tensor | None, corpus: EncodedCorpus) -> Tensor | None:
    """[c, Nv, T] query-subtitle cosines of every corpus frame (`QuerySubtitleMatch.frame_match`), or None for a
    model without the match. A corpus encoded without subtitle embeddings is an error for a model with it."""
    if match is None:
        return None
    if corpus.sub_embed is None or corpus.frame_sub is None or query_text is None:
        raise ValueError("this model matches queries with subtitles (text_match): the corpus must be encoded by its "
                         "own encode_corpus (subtitle embeddings), and the queries' text embeddings given")
    return match.frame_match(query_text, corpus.sub_embed, corpus.frame_sub)


def corpus_video_scores(query: Tensor, corpus: EncodedCorpus, match: QuerySubtitleMatch | None = None,
                        query_text: Tensor | None = None) -> Tensor:
    """Max over frames of cos(query, frame) against the corpus, with no normalised corpus copy. [c, D] -> [c, Nv].
    With ``match`` (and the queries' text embeddings ``query_text`` [c, D]) plus its video term."""
    sim = torch.einsum("qd,vtd->qvt", F.normalize(query.float(), dim=-1).to(corpus.frames.dtype), corpus.frames)
    scores = (sim.float() / corpus.frame_norms[None]).masked_fill(~corpus.frame_mask[None], -2.0).amax(-1)
    text = corpus_match(match, query_text, corpus)
    return scores if text is None else match.video_scores(scores, text, corpus.frame_sub[None] >= 0)


def corpus_scores(head: VsmHead, query: Tensor, corpus: EncodedCorpus, *, max_videos: int | None = None,
                  q2c_alpha: float = 20.0, also: Tensor | None = None,
                  query_text: Tensor | None = None) -> MomentScores:
    """Raw video scores and start/end probabilities of every query in the corpus videos, from a single pass
    over the corpus frames (the normalised queries and the projected queries go through one einsum).

    query: [c, D] -> MomentScores: video_scores [c, Nv] (max cosine), st_probs / ed_probs [c, Nv, T]
    (softmax over T, ~0 at padding).

    With ``max_videos`` K, start/end probabilities are computed only where a ranking reads them: each query's K
    best videos (`topk_stable` of ``exp(q2c_alpha * s)``, the order `rank_vcmr` ranks them in) and, given ``also``
    [c], that video too (the GT video, for SVMR): st_probs / ed_probs [c, K (+1), T], ``videos`` [c, K (+1)] their
    corpus positions. Each (query, video) row is computed exactly as in the full form; what is skipped is the
    convolutions and softmaxes of videos no ranking reads (most of the corpus).

    A head with a query-subtitle match (``head.match``) needs the queries' text embeddings ``query_text`` [c, D]
    and a corpus encoded with its subtitles; its terms are added to the video scores and the start/end logits.
    """
    c, t = query.shape[0], corpus.frames.shape[1]
    both = torch.cat([F.normalize(query.float(), dim=-1), head.query_linear(query).float()])          # [2c, D]
    sim = torch.einsum("qd,vtd->qvt", both.to(corpus.frames.dtype), corpus.frames).float()            # [2c, Nv, T]
    cos = sim[:c].div_(corpus.frame_norms[None]).masked_fill_(~corpus.frame_mask[None], -2.0)     # in place
    video_scores = cos.amax(-1)
    text = corpus_match(head.match, query_text, corpus)                                           # [c, Nv, T]
    if text is not None:
        video_scores = head.match.video_scores(video_scores, text, corpus.frame_sub[None] >= 0)
    span, fmask, videos = sim[c:], corpus.frame_mask[None].expand(c, -1, -1), None
    has = corpus.frame_sub[None] >= 0 if text is not None else None
    if max_videos is not None:
        videos = topk_stable(torch.exp(q2c_alpha * video_scores), max_videos)[1]                     # [c, K]
        if also is not None:
            videos = torch.cat([videos, also.to(videos)[:, None]], 1)
        idx = videos[:, :, None].expand(-1, -1, t)
        span, fmask = span.gather(1, idx), corpus.frame_mask[videos]                                 # [c, K, T]
        if text is not None:
            text, has = text.gather(1, idx), corpus.frame_sub[videos] >= 0
    span = head.masked_similarity(span, fmask)
    m = fmask.to(span.dtype)
    st, ed = (_conv_rows(span, conv) for conv in (head.start_conv, head.end_conv))
    if text is not None:
        st, ed = head.match.span_logits(st, ed, text, has)
    st, ed = (x * m + (1 - m) * MASK_LOGIT for x in (st, ed))
    return MomentScores(video_scores=video_scores, st_probs=st.softmax(-1), ed_probs=ed.softmax(-1), videos=videos)


def _conv_rows(x: Tensor, conv: torch.nn.Conv1d) -> Tensor:
    """``conv`` (1 -> 1 channel, no bias, odd kernel, 'same' padding) along the last dim of ``x`` [..., T], as a sum
    of shifted copies: the same values as ``conv(x.view(-1, 1, T))`` up to float rounding, at a fraction of the
    cost of Conv1d on a million one-channel rows."""
    w = conv.weight.view(-1).to(x.dtype)
    k, t = w.shape[0], x.shape[-1]
    padded = F.pad(x, (k // 2, k // 2))
    out = padded[..., 0:t] * w[0]
    for j in range(1, k):
        out.add_(padded[..., j:j + t], alpha=float(w[j]))
    return out


class RetrievalQueries:
    """Query encoding shared by the retrieval tasks (moment and video retrieval): a task with ``encoder``, a
    `VsmHead` ``head`` and ``tokens``."""

    def encode_queries(self, ids: Tensor, mask: Tensor) -> Tensor:
        """[Q, Lq] ids and mask -> [Q, D]: text-only cross-modal pass, then the query encoder."""
        return self.encode_query_text(ids, mask)[0]

    def encode_query_text(self, ids: Tensor, mask: Tensor) -> tuple[Tensor, Tensor | None]:
        """[Q, Lq] ids and mask -> the query vectors [Q, D] and, with ``text_match``, the queries' unit text
        embeddings [Q, D] (the same text-only pass, mean-pooled; the ids start with [CLS]), else None."""
        states = self.encoder.encode_text(ids, mask)
        text = unit_mean_pool(states, mask) if self.head.match is not None else None
        return self.head.query_encoder(states, mask), text

    def subtitle_embedder(self) -> Callable[[VideoBatch], Tensor] | None:
        """batch -> [S, D] subtitle embeddings for `encode_corpus`, or None without ``text_match``."""
        if self.head.match is None:
            return None
        return lambda b: self.head.match.subtitle_embeddings(self.encoder, b, self.tokens.cls)

    def batch_match(self, batch: VideoBatch, query_text: Tensor) -> tuple[Tensor, Tensor]:
        """With ``text_match``, in training: [Q, B, T] the cosine of each frame's subtitle of ``batch`` with each
        query (``query_text`` from `encode_query_text`) and [B, T] whether a frame has a subtitle."""
        frame_sub = frame_subtitles(batch)
        subs = self.head.match.subtitle_embeddings(self.encoder, batch, self.tokens.cls)
        return self.head.match.frame_match(query_text, subs, frame_sub), frame_sub >= 0


@register_task
class MomentRetrievalTask(RetrievalQueries, DownstreamTask):
    """Hero encoder + VSM head (query encoder, query projection, start/end convolutions)."""

    name = "moment_retrieval"
    config_cls = MomentRetrievalConfig
    collate = staticmethod(collate_moment_retrieval)
    datasets = {"tvr": "tvr", "how2r": "tvr", "didemo": "tvr"}
    headlines = ("vcmr_r1_iou0.7", "svmr_r1_iou0.5")
    """TVR also shows SVMR R@1 at tIoU 0.5: at a small budget VCMR R@1 at tIoU 0.7 is near zero for every model."""
    prediction_suffix = ".json"
    PRETRAINED = {"encoder.": "encoder.", "heads.vsm.": "head."}
    ALLOWED_MISSING = ("head.",)

    def __init__(self, model_cfg: ModelConfig, cfg: MomentRetrievalConfig, tokens: SpecialTokens) -> None:
        super().__init__(model_cfg, cfg, tokens)
        self.head = VsmHead(model_cfg, text_match=cfg.text_match)
        self._init_head()

    def lr_mults(self) -> dict[str, float]:
        """With ``text_match``: ``finetune.match_lr_mult`` for the match's scalars."""
        if self.head.match is None or self.cfg.match_lr_mult == 1.0:
            return {}
        return {"head.match": float(self.cfg.match_lr_mult)}

    def inference_variants(self) -> tuple[dict[str, float], ...]:
        """With ``text_match`` and more than one of ``visual_span_weights``: one variant per weight."""
        weights = tuple(self.cfg.visual_span_weights)
        if self.head.match is None or len(weights) < 2:
            return ()
        return tuple({"visual_span_weight": float(w)} for w in weights)

    def set_inference_variant(self, variant: Mapping[str, float]) -> None:
        if self.head.match is None or set(variant) != {"visual_span_weight"}:
            raise ConfigError(f"{self.name}: unknown inference variant {dict(variant)}")
        self.head.match.visual_span_weight.fill_(float(variant["visual_span_weight"]))

    def inference_variant(self) -> dict[str, float]:
        if not self.inference_variants():
            return {}
        return {"visual_span_weight": float(self.head.match.visual_span_weight)}

    def prepare(self, inputs: MomentRetrievalInputs, generator: torch.Generator, step: int) -> MomentRetrievalInputs:
        """Per-step flags: drop the local loss with ``drop_svmr_prob``; hard negatives from the configured step."""
        use_local = bool(torch.rand((), generator=generator) >= self.cfg.drop_svmr_prob)
        return replace(inputs, use_local=use_local, hard=step >= self.cfg.hard_negative_start_step)

    def forward(self, inputs: MomentRetrievalInputs) -> TaskOutput:
        out = self.encoder(inputs.batch)
        query, query_text = self.encode_query_text(inputs.query_ids, inputs.query_mask)   # [Q, D]
        pool_query, frames, frame_mask, query_video = query, out.frame_states, out.frame_mask, inputs.query_video
        if self.cfg.gather_across_ranks and self.all_gather is not None:         # every rank's queries and videos
            if self.head.match is not None:
                raise ConfigError("text_match: not supported with gather_across_ranks on several ranks")
            frames, frame_mask, pool_query, query_video = gather_pool(self.all_gather, frames, frame_mask, query,
                                                                      query_video)
        scores = video_scores(pool_query, frames, frame_mask)                     # [Q(all), B(all)]
        match = None
        if self.head.match is not None:
            match, has = self.batch_match(inputs.batch, query_text)               # [Q, B, T], [B, T]
            scores = self.head.match.video_scores(scores, match, has[None])
        loss_ctx, loss_q = ranking_loss(scores, query_video, self.cfg, inputs.hard)
        loss = self.cfg.lw_neg_ctx * loss_ctx + self.cfg.lw_neg_q * loss_q
        metrics = {"moment_retrieval/loss_neg_ctx": loss_ctx.detach(), "moment_retrieval/loss_neg_q": loss_q.detach()}
        has_span = inputs.start >= 0
        if inputs.use_local and has_span.any():
            own = inputs.query_video[has_span]
            own_match = None
            if match is not None:
                own_match = (match[has_span.nonzero(as_tuple=True)[0], own], has[own])
            st, ed = self.head.span_logits(query[has_span], out.frame_states[own], out.frame_mask[own], own_match)
            loss_st_ed = moment_span_loss(st, ed, inputs.start[has_span], inputs.end[has_span])
            loss = loss + self.cfg.lw_st_ed * loss_st_ed
            metrics["moment_retrieval/loss_st_ed"] = loss_st_ed.detach()
        r1 = (scores.argmax(1) == query_video).float().mean()
        metrics.update({"moment_retrieval/loss": loss.detach(), "moment_retrieval/vr_r1": r1.detach()})
        return TaskOutput(loss=loss, metrics=metrics, count=int(inputs.query_ids.shape[0]))

    # ------------------------------------------------------------------ inference
    def encode_corpus(self, batches: Iterable[VideoBatch], device: torch.device | str | None = None) -> EncodedCorpus:
        """Every corpus video through the encoder once (HERO: batches of 50 videos); with ``text_match`` also
        every subtitle's text embedding."""
        return encode_corpus(self.encoder, batches, device, subtitles=self.subtitle_embedder())

    @torch.no_grad()
    def score_queries(self, query: Tensor, corpus: EncodedCorpus, **kwargs) -> MomentScores:
        """query: [c, D] (from `encode_queries`) -> raw video scores [c, Nv] and st/ed probabilities [c, Nv, T]
        (``kwargs``: `corpus_scores`'s, to compute them for the top videos only; ``query_text`` from
        `encode_query_text` with ``text_match``)."""
        return corpus_scores(self.head, query, corpus, **kwargs)

    @torch.no_grad()
    def predict(self, query_ids: Tensor, query_mask: Tensor, corpus: EncodedCorpus, rank_cfg: MomentRankConfig,
                gt_video: Tensor | None = None) -> MomentPredictions:
        """VCMR / SVMR / VR rankings for every query, ``rank_cfg.query_chunk`` queries at a time.

        query_ids, query_mask: [Nq, Lq]; gt_video: [Nq] corpus positions of the GT videos (enables SVMR).
        Ranked positions index ``corpus.video_ids``; scoring and ranking run on the corpus's device, the
        returned rankings are on the CPU (``MomentRanking.rows`` / ``hero.metrics.tvr_submission`` read them).
        Start/end probabilities are computed for each query's ``max_videos`` best videos and its GT video only
        (`corpus_scores`): the rankings are those of the full computation.
        """
        vcmr, svmr, vr_video, vr_score = [], [], [], []
        n = corpus.num_frames
        for q0 in range(0, query_ids.shape[0], rank_cfg.query_chunk):
            sl = slice(q0, q0 + rank_cfg.query_chunk)
            gt = gt_video[sl].to(n.device) if gt_video is not None else None
            query, query_text = self.encode_query_text(query_ids[sl], query_mask[sl])
            s = self.score_queries(query, corpus, max_videos=rank_cfg.max_videos, q2c_alpha=rank_cfg.q2c_alpha,
                                   also=gt, query_text=query_text)
            vcmr.append(_cpu(rank_vcmr(s.video_scores, s.st_probs, s.ed_probs, rank_cfg, n, videos=s.videos)))
            if gt is not None:
                svmr.append(_cpu(rank_svmr(s.st_probs, s.ed_probs, gt, rank_cfg, n, videos=s.videos)))
            r = rank_videos(s.video_scores, rank_cfg)
            vr_video.append(r.video.cpu())
            vr_score.append(r.score.cpu())
        return MomentPredictions(vcmr=MomentRanking.cat(vcmr), svmr=MomentRanking.cat(svmr) if svmr else None,
                                 vr=RankedVideos(video=torch.cat(vr_video), score=torch.cat(vr_score)))

    def write_predictions(self, ctx: PredictContext) -> Written:
        """Queries [Nq, Lq] against the encoded corpus [Nv, T, D] -> VCMR / VR (+ SVMR when every query has its
        video in the corpus) -> TVR submission."""
        rank_cfg = ctx.rank_config()
        corpus, ids, mask = ctx.encode_corpus()
        pos = {v: i for i, v in enumerate(corpus.video_ids)}
        gt = [pos.get(e.get("vid_name")) for e in ctx.raw]
        gt_video = torch.tensor(gt, device=ctx.device) if all(g is not None for g in gt) else None
        if gt_video is None:
            log.warning("%s/%s: some queries have no video in the corpus; no SVMR", ctx.dataset, ctx.split)
        t0 = time.perf_counter()
        pred = self.predict(ids, mask, corpus, rank_cfg, gt_video=gt_video)
        log.info("%s/%s: ranked %d queries against %d videos (%.1f queries/s)", ctx.dataset, ctx.split, len(ctx.raw),
                 len(corpus.video_ids), len(ctx.raw) / max(time.perf_counter() - t0, 1e-9))
        write_tvr_submission(ctx.out_path, tvr_submission(
            list(corpus.video_ids), [e["id"] for e in ctx.raw], vcmr=pred.vcmr, svmr=pred.svmr, vr=pred.vr,
            descs=[e["desc"] for e in ctx.raw]))
        return Written(len(ctx.raw))

    @classmethod
    def score(cls, predictions: Path, annotations: Path, options: PredictOptions, written: Written) -> dict:
        return scoring.score_moment_retrieval(predictions, annotations, options.moment_eval)

    @classmethod
    def per_example(cls, predictions: Path, annotations: Path, options: PredictOptions,
                    written: Written | None = None) -> dict[str, dict[str, float]]:
        """Every R@k of ``score`` per query (100 hit / 0 miss; by-type keys over that type's queries)."""
        return scoring.per_example_moment_retrieval(predictions, annotations, options.moment_eval)


def _cpu(r: MomentRanking) -> MomentRanking:
    return MomentRanking(video=r.video.cpu(), start=r.start.cpu(), end=r.end.cpu(), score=r.score.cpu())


def moment_span_loss(st_logits: Tensor, ed_logits: Tensor, start: Tensor, end: Tensor) -> Tensor:
    """CE(start) + CE(end). st_logits, ed_logits: [Q, T] (padding already masked); start, end: [Q] frames."""
    return F.cross_entropy(st_logits.float(), start) + F.cross_entropy(ed_logits.float(), end)
