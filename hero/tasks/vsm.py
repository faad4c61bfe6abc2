"""Video-subtitle matching (docs/hero-fidelity.md b.3): a subtitle, removed from the context, is the query.

Local alignment: start/end frame classification from query-frame similarities smoothed by a 1-D conv.
Global alignment: max-over-frames cosine score, hinge (or log-sum-exp) ranking against every in-batch
negative video and query, with hard-negative weighting after a configurable step. The same head and
losses serve moment retrieval finetuning (TVR / How2R / DiDeMo).

Queries are subtitles with text and aligned frames. A video without subtitle text (docs/hero-fidelity.md a.5) has no
query: it still serves as a negative video for the others, and is counted (``vsm/skipped_videos``); a
micro-batch with no query at all scores nothing (unless queries are gathered from other ranks).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hero.data.batch import VideoBatch
from hero.data.masking import sample_queries
from hero.model.config import ModelConfig
from hero.model.linear import Linear
from hero.model.query import QueryEncoder
from hero.tasks.base import TaskOutput, nothing_to_score
from hero.tasks.config import PretrainConfig, RankingLossConfig, VsmConfig
from hero.tasks.downstream import QuerySubtitleMatch
from hero.text.tokenizer import SpecialTokens

MASK_LOGIT = -1e4


class VsmHead(nn.Module):
    """Query encoder, query projection for the local scores, and the start/end 1-D convolutions (k=5); with
    ``text_match`` (finetuning only, beyond HERO) also the query-subtitle match (`QuerySubtitleMatch`, ``match``)."""

    def __init__(self, cfg: ModelConfig, text_match: bool = False) -> None:
        super().__init__()
        self.query_encoder = QueryEncoder(cfg)
        self.query_linear = Linear(cfg.hidden_size, cfg.hidden_size)
        self.start_conv = nn.Conv1d(1, 1, kernel_size=5, padding=2, bias=False)
        self.end_conv = nn.Conv1d(1, 1, kernel_size=5, padding=2, bias=False)
        self.zero_padding = cfg.compat != "original"
        """Zero the query-frame similarities at padded frames before the convolutions, so a video's start/end
        logits do not depend on how far its batch is padded (the kernel reaches 2 frames past the last real one).
        The released HERO convolves the padded positions as they come (``compat: original`` keeps that)."""
        self.match = QuerySubtitleMatch() if text_match else None

    def masked_similarity(self, sim: Tensor, frame_mask: Tensor) -> Tensor:
        """``sim`` [..., T] with padded frames set to 0 (the convolutions' own padding value) unless compat=original."""
        return sim.masked_fill(~frame_mask, 0.0) if self.zero_padding else sim

    def span_logits(self, query: Tensor, frames: Tensor, frame_mask: Tensor,
                    match: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor]:
        """query: [Q, D]; frames: [Q, T, D] (each query's video); frame_mask: [Q, T] -> start, end logits [Q, T].
        ``match``: with ``self.match``, the query-subtitle cosines of each frame [Q, T]
        (`QuerySubtitleMatch.frame_match`) and where a frame has a subtitle [Q, T]."""
        sim = torch.einsum("qd,qtd->qt", self.query_linear(query), frames)
        sim = self.masked_similarity(sim, frame_mask).unsqueeze(1)                          # [Q, 1, T]
        st = self.start_conv(sim).squeeze(1)
        ed = self.end_conv(sim).squeeze(1)
        if match is not None:
            st, ed = self.match.span_logits(st, ed, *match)
        m = frame_mask.to(st.dtype)
        return st * m + (1 - m) * MASK_LOGIT, ed * m + (1 - m) * MASK_LOGIT


def video_scores(query: Tensor, frames: Tensor, frame_mask: Tensor) -> Tensor:
    """max over frames of cos(query, frame). query: [Q, D]; frames: [B, T, D]; frame_mask: [B, T] -> [Q, B]."""
    sim = torch.einsum("qd,btd->qbt", F.normalize(query.float(), dim=-1), F.normalize(frames.float(), dim=-1))
    return sim.masked_fill(~frame_mask[None], -2.0).amax(-1)


def ranking_loss(
    scores: Tensor,
    query_video: Tensor,
    cfg: RankingLossConfig,
    hard: bool,
) -> tuple[Tensor, Tensor]:
    """In-batch ranking losses with all negatives.

    scores:      [Q, B] score of each query against each video
    query_video: [Q] index of each query's own video
    returns:     (loss over negative videos per query, loss over negative queries per video), each a scalar
    """
    Q, B = scores.shape
    pos = scores.gather(1, query_video[:, None])                                  # [Q, 1]
    own = F.one_hot(query_video, B).bool()                                        # [Q, B]
    # negative contexts: query i vs every other video
    ctx = _weighted_margin(scores, pos, ~own, cfg, hard)
    # negative queries: video v_i vs every query j of another video, compared with query i's positive
    neg_q = scores[:, query_video].t()                                            # [Q, Q]: [i, j] = score(query j, video of i)
    other = query_video[None, :] != query_video[:, None]
    q = _weighted_margin(neg_q, pos, other, cfg, hard)
    return ctx, q


def _weighted_margin(neg: Tensor, pos: Tensor, valid: Tensor, cfg: RankingLossConfig, hard: bool) -> Tensor:
    """Mean over queries of the (optionally hard-weighted) mean of the per-negative ranking losses."""
    if cfg.ranking_loss == "hinge":
        per = (cfg.margin + neg - pos).clamp(min=0)
    else:
        per = F.softplus(neg - pos)
    if hard:
        order = neg.masked_fill(~valid, float("-inf")).argsort(1, descending=True)
        rank = order.argsort(1)                                                   # rank of each negative, 0 = hardest
        weight = torch.where(rank < cfg.hard_pool_size, cfg.hard_weight, cfg.easy_weight)
    else:
        weight = torch.ones_like(per)
    valid_f = valid.to(per.dtype)
    per_query = (per * weight * valid_f).sum(1) / valid_f.sum(1).clamp(min=1)
    has_neg = valid.any(1)
    return per_query[has_neg].mean() if has_neg.any() else per.sum() * 0


@dataclass(frozen=True)
class VsmInputs:
    batch: VideoBatch    # the context: query subtitles blanked to their separator token
    query_ids: Tensor    # [Q, Lq] query tokens, CLS first
    query_mask: Tensor   # [Q, Lq]
    query_video: Tensor  # [Q]
    start: Tensor        # [Q] first aligned frame
    end: Tensor          # [Q] last aligned frame (inclusive), at least start + 1 where the video allows
    use_local: bool      # False when this step drops the local loss
    hard: bool           # hard-negative weighting on
    skipped_videos: int = 0  # videos with no query (no subtitle with text and frames)


class Vsm:
    name = "vsm"
    head = "vsm"
    head_cls = VsmHead

    def __init__(self, cfg: PretrainConfig, tokens: SpecialTokens, all_gather: Callable[[Tensor], Tensor] | None = None) -> None:
        self.cfg = cfg.vsm
        self.tokens = tokens
        self.all_gather = all_gather

    def prepare(self, batch: VideoBatch, generator: torch.Generator, step: int) -> VsmInputs:
        usable = (batch.sub_frames >= 0).any(1) & batch.sub_mask[:, 1:].any(1)   # text and frames
        q = sample_queries(batch.sub_video, usable, batch.num_videos, per_video=self.cfg.queries_per_video,
                           generator=generator)
        query_ids = batch.sub_ids[q].clone()
        query_ids[:, 0] = self.tokens.cls
        query_mask = batch.sub_mask[q]
        ctx_mask = batch.sub_mask.clone()
        ctx_mask[q, 1:] = False
        ctx_ids = batch.sub_ids.masked_fill(~ctx_mask, self.tokens.pad)
        frames = batch.sub_frames[q]                                              # [Q, F]
        start = frames.masked_fill(frames < 0, 1 << 30).amin(1)
        last = frames.amax(1)
        n_frames = batch.frame_mask.sum(1)[batch.sub_video[q]]
        end = torch.minimum(torch.maximum(start + 1, last), n_frames - 1)
        use_local = bool(torch.rand((), generator=generator) >= self.cfg.drop_svmr_prob)
        return VsmInputs(batch=batch.replace(sub_ids=ctx_ids, sub_mask=ctx_mask), query_ids=query_ids,
                         query_mask=query_mask, query_video=batch.sub_video[q], start=start, end=end,
                         use_local=use_local, hard=step >= self.cfg.hard_negative_start_step,
                         skipped_videos=batch.num_videos - len(batch.sub_video[q].unique()))

    @staticmethod
    def encode_queries(encoder, head: VsmHead, ids: Tensor, mask: Tensor) -> Tensor:
        """Query tokens -> [Q, D] through the text-only cross-modal pass and the query encoder."""
        return head.query_encoder(encoder.encode_text(ids, mask), mask)

    def __call__(self, encoder, head: VsmHead, inputs: VsmInputs) -> TaskOutput:
        cfg = self.cfg
        counters = {"vsm/skipped_videos": inputs.skipped_videos}
        n_own = int(inputs.query_ids.shape[0])
        if n_own == 0 and self.all_gather is None:
            return TaskOutput(loss=nothing_to_score(head), count=0, counters=counters)
        out = encoder(inputs.batch)
        query = self.encode_queries(encoder, head, inputs.query_ids, inputs.query_mask)   # [Q, D]
        own_query, frames, frame_mask, query_video = query, out.frame_states, out.frame_mask, inputs.query_video
        if self.all_gather is not None:
            frames, frame_mask, query, query_video = gather_pool(self.all_gather, frames, frame_mask, query, query_video)
        scores = video_scores(query, frames, frame_mask)                          # [Q, B]
        loss_ctx, loss_q = ranking_loss(scores, query_video, cfg, inputs.hard)
        loss = cfg.lw_neg_ctx * loss_ctx + cfg.lw_neg_q * loss_q
        metrics = {"vsm/loss_neg_ctx": loss_ctx.detach(), "vsm/loss_neg_q": loss_q.detach()}
        if inputs.use_local and n_own:
            own = inputs.query_video
            st, ed = head.span_logits(own_query, out.frame_states[own], out.frame_mask[own])
            loss_st_ed = F.cross_entropy(st.float(), inputs.start) + F.cross_entropy(ed.float(), inputs.end)
            loss = loss + cfg.lw_st_ed * loss_st_ed
            metrics["vsm/loss_st_ed"] = loss_st_ed.detach()
        metrics["vsm/loss"] = loss.detach()
        if scores.shape[0]:
            metrics["vsm/vr_r1"] = (scores.argmax(1) == query_video).float().mean().detach()
        return TaskOutput(loss=loss, metrics=metrics, count=n_own, counters=counters)


def gather_pool(all_gather, frames: Tensor, frame_mask: Tensor, query: Tensor, query_video: Tensor):
    """Enlarge the negative pool with every rank's videos and queries; this rank's come first.

    ``all_gather(x)`` returns the concatenation over ranks along dim 0 (differentiable for this rank's part)
    with this rank's slice first. Frame counts may differ per rank, so frames are padded to a common T first.
    """
    T = int(all_gather(torch.tensor([frames.shape[1]], device=frames.device)).max())
    pad = T - frames.shape[1]
    if pad:
        frames = F.pad(frames, (0, 0, 0, pad))
        frame_mask = F.pad(frame_mask, (0, pad))
    B = torch.tensor([frames.shape[0]], device=frames.device)
    offsets = all_gather(B)                                                       # [world] videos per rank, own first
    video_offset = torch.cat([offsets.new_zeros(1), offsets.cumsum(0)[:-1]])
    counts = all_gather(torch.tensor([query.shape[0]], device=query.device))
    qv = all_gather(query_video) + torch.repeat_interleave(video_offset, counts)
    return all_gather(frames), all_gather(frame_mask), all_gather(query), qv
