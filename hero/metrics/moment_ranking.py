"""Corpus-level moment ranking: HERO's ``validate_full_vcmr`` post-processing as pure tensor functions.

Inputs are what a moment-retrieval head produces for a batch of queries against an encoded corpus:

- ``video_scores`` [Nq, Nv]: the *raw* query-video similarity (HERO: max over frames of the cosine, in [-1, 1]).
  The video weight ``exp(q2c_alpha * s)`` (HERO: alpha 20) is applied here; it must stay finite.
- ``st_probs`` / ``ed_probs`` [Nq, Nv, T]: start / end probabilities over frames (softmax of the ConvSE logits).
- ``num_frames`` [Nv] (optional): valid frames per video; spans reaching past them are never proposed.

A span is (m, n) with start frame m and inclusive end frame n, allowed when ``min_len <= n - m < max_len``; its
VCMR score is ``(st[m] * exp(alpha * s)) * ed[n]`` (SVMR: ``st[m] * ed[n]`` on the GT video) and it covers
``[m * clip_len, (n + 1) * clip_len)`` seconds. Ties rank the better-ranked video, then the earlier start, then
the earlier end first (HERO's unstable sort leaves them arbitrary). Queries go through in chunks of
``query_chunk``, and spans are scored in a [chunk, videos, T, max_len - min_len] band rather than HERO's
[chunk, videos, T, T] square, so memory is bounded by the chunk, not the corpus.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F

from hero.config import ConfigError


@dataclass(frozen=True, kw_only=True)
class MomentRankConfig:
    """Inference-time ranking (defaults: HERO's TVR settings, docs/hero-fidelity.md c.1)."""

    clip_len: float = 1.5
    """Seconds per frame feature (TV: 1.5, MSR-VTT: 2)."""
    q2c_alpha: float = 20.0
    max_videos: int = 100
    """Videos kept per query, for VCMR spans and as the VR list (HERO ``max_vcmr_video``)."""
    min_len: int = 2
    max_len: int = 16
    """Spans satisfy ``min_len <= end_frame - start_frame < max_len`` (HERO ``min_pred_l``/``max_pred_l``)."""
    max_before_nms: int = 200
    max_after_nms: int = 100
    nms_threshold: float | None = None
    """Temporal NMS: drop a span whose IoU with a better span on the same video is > this; None = no NMS."""
    query_chunk: int = 80

    def __post_init__(self) -> None:
        def check(cond: bool, key: str, msg: str) -> None:
            if not cond:
                raise ConfigError(f"moment_rank.{key}: {msg}")

        check(self.clip_len > 0, "clip_len", f"must be > 0, got {self.clip_len}")
        check(self.q2c_alpha > 0, "q2c_alpha", f"must be > 0, got {self.q2c_alpha}")
        check(self.max_videos >= 1, "max_videos", f"must be >= 1, got {self.max_videos}")
        check(self.min_len >= 0, "min_len", f"must be >= 0, got {self.min_len}")
        check(self.max_len > self.min_len, "max_len", f"must be > min_len={self.min_len}, got {self.max_len}")
        check(self.max_after_nms >= 1, "max_after_nms", f"must be >= 1, got {self.max_after_nms}")
        check(self.max_before_nms >= self.max_after_nms, "max_before_nms",
              f"must be >= max_after_nms={self.max_after_nms}, got {self.max_before_nms}")
        check(self.nms_threshold is None or 0.0 <= self.nms_threshold < 1.0, "nms_threshold",
              f"must be in [0, 1) or null, got {self.nms_threshold}")
        check(self.query_chunk >= 1, "query_chunk", f"must be >= 1, got {self.query_chunk}")


@dataclass(frozen=True, eq=False)
class MomentRanking:
    """Ranked moments per query, best first; slots past a query's last moment have video -1, score -inf.

    video: [Nq, K] long, corpus position of the video
    start, end: [Nq, K] float64 seconds
    score: [Nq, K] float32
    """

    video: Tensor
    start: Tensor
    end: Tensor
    score: Tensor

    def rows(self, q: int, index_of: list[int] | None = None) -> np.ndarray:
        """[n, 4] float64 ``(video_idx, st, ed, score)`` of query q, as in the TVR submission; ``index_of`` maps a
        corpus position to the submission's video index (identity when None)."""
        ok = self.video[q] >= 0
        vid = self.video[q][ok].tolist()
        if index_of is not None:
            vid = [index_of[v] for v in vid]
        cols = [np.asarray(vid, dtype=np.float64), self.start[q][ok].cpu().numpy(), self.end[q][ok].cpu().numpy(),
                self.score[q][ok].double().cpu().numpy()]
        return np.stack(cols, axis=1).reshape(-1, 4)

    @staticmethod
    def cat(parts: list[MomentRanking]) -> MomentRanking:
        """Concatenate along queries; no parts (no queries) gives [0, 0] tensors."""
        if not parts:
            z = torch.zeros(0, 0, dtype=torch.float64)
            return MomentRanking(torch.zeros(0, 0, dtype=torch.long), z, z, z.float())
        return MomentRanking(*(torch.cat([getattr(p, f) for p in parts]) for f in ("video", "start", "end", "score")))


@dataclass(frozen=True, eq=False)
class RankedVideos:
    """video: [Nq, K] long corpus positions, best first; score: [Nq, K] float32 (``exp(alpha * s)``)."""

    video: Tensor
    score: Tensor


def topk_stable(x: Tensor, k: int, *, check_nan: bool = True) -> tuple[Tensor, Tensor]:
    """Top-k along dim 1 with ties broken by the lower index, exactly as a stable descending sort would.

    x: [B, N] float (no NaN) -> values [B, k'], indices [B, k'] with k' = min(k, N). Costs one ``topk(k + 1)``;
    rows where the (k+1)-th value ties the k-th (topk's pick among them is arbitrary) are redone with a full
    stable sort.
    """
    if check_nan and torch.isnan(x).any():
        raise ValueError("scores contain NaN")
    n = x.shape[1]
    k = min(k, n)
    vals, idx = x.topk(min(k + 1, n), dim=1)
    unfair = None
    if n > k > 0:
        unfair = (vals[:, k] == vals[:, k - 1]) & torch.isfinite(vals[:, k - 1])
        vals, idx = vals[:, :k], idx[:, :k]
    idx, order = idx.sort(dim=1)                          # canonical order among the selected ...
    vals, o2 = vals.gather(1, order).sort(dim=1, descending=True, stable=True)
    idx = idx.gather(1, o2)                                # ... then by value, ties by index
    if unfair is not None and unfair.any():
        rows = unfair.nonzero()[:, 0]
        full_vals, full_idx = x[rows].sort(dim=1, descending=True, stable=True)
        vals[rows], idx[rows] = full_vals[:, :k], full_idx[:, :k]
    return vals, idx


def temporal_nms(video: Tensor, start: Tensor, end: Tensor, valid: Tensor, threshold: float) -> Tensor:
    """Greedy temporal NMS over candidates already sorted best first (HERO's per-video NMS, merged).

    video, start, end, valid: [B, N]; returns keep [B, N] bool. Candidate j is dropped when a kept, better candidate
    i < j on the same video has IoU(i, j) > threshold (evaluator IoU: union = max(end) - min(start); a zero union
    never suppresses). Computed in float32: ``rank_*`` pass frame indices [m, n + 1), small exact integers, for
    which the decisions equal HERO's float64 ones in seconds (IoU is scale-free).
    """
    s, e = start.float(), end.float()
    inter = torch.minimum(e[:, :, None], e[:, None, :]).sub_(torch.maximum(s[:, :, None], s[:, None, :])).clamp_(min=0)
    union = torch.maximum(e[:, :, None], e[:, None, :]).sub_(torch.minimum(s[:, :, None], s[:, None, :]))
    suppress = inter.div_(union).gt(threshold)                                                       # [B, N, N]
    suppress &= video[:, :, None] == video[:, None, :]
    keep = valid.clone()
    for i in range(keep.shape[1] - 1):
        keep[:, i + 1:] &= ~(suppress[:, i, i + 1:] & keep[:, i:i + 1])
    return keep


def _span_candidates(st: Tensor, ed: Tensor, weight: Tensor | None, lengths: Tensor | None,
                     cfg: MomentRankConfig, pool: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Best ``pool`` spans over the V candidate videos of each query.

    st, ed: [c, V, T]; weight: [c, V] or None; lengths: [c, V] valid frames or None.
    returns: score [c, P], video rank v [c, P], start frame m [c, P], end frame n [c, P] (score -inf = none).
    """
    c, v, t = st.shape
    width = max(0, min(cfg.max_len, t) - cfg.min_len)              # offsets d = n - m in [min_len, min_len + width)
    if width == 0:
        empty = torch.zeros(c, 0, dtype=torch.long, device=st.device)
        return torch.zeros(c, 0, device=st.device), empty, empty, empty
    if torch.isnan(st).any() or torch.isnan(ed).any() or (weight is not None and torch.isnan(weight).any()):
        raise ValueError("start/end probabilities or video scores contain NaN")
    if weight is not None:
        st = st * weight[:, :, None]                                        # (st * w) * ed, as one product
    ed_band = F.pad(ed, (0, cfg.min_len + width))[..., cfg.min_len:].unfold(-1, width, 1)[..., :t, :]  # [c, V, T, W]
    scores = st.unsqueeze(-1) * ed_band
    m = torch.arange(t, device=st.device).view(t, 1)
    n = m + cfg.min_len + torch.arange(width, device=st.device).view(1, width)                  # [T, W]
    limit = lengths[:, :, None, None] if lengths is not None else torch.full((1, 1, 1, 1), t, device=st.device)
    scores.masked_fill_(n.view(1, 1, t, width) >= limit, float("-inf"))
    vals, flat = topk_stable(scores.reshape(c, -1), pool, check_nan=False)
    vid, rest = flat // (t * width), flat % (t * width)
    start, off = rest // width, rest % width
    return vals, vid, start, start + cfg.min_len + off


def _finish(vals: Tensor, vid: Tensor, m: Tensor, n: Tensor, cfg: MomentRankConfig) -> MomentRanking:
    """NMS (optional), keep ``max_after_nms``, frames -> seconds."""
    valid = torch.isfinite(vals)
    if cfg.nms_threshold is not None:
        keep = temporal_nms(vid, m, n + 1, valid, cfg.nms_threshold)
        order = torch.sort((~keep).to(torch.uint8), dim=1, stable=True).indices   # kept first, order preserved
        vals, vid, m, n, valid = (x.gather(1, order) for x in (vals, vid, m, n, keep))
    k = cfg.max_after_nms
    vals, vid, m, n, valid = vals[:, :k], vid[:, :k], m[:, :k], n[:, :k], valid[:, :k]
    return MomentRanking(video=vid.masked_fill(~valid, -1),
                         start=(m.double() * cfg.clip_len).masked_fill(~valid, 0.0),
                         end=((n + 1).double() * cfg.clip_len).masked_fill(~valid, 0.0),
                         score=vals.float().masked_fill(~valid, float("-inf")))


def _video_weights(video_scores: Tensor, alpha: float) -> Tensor:
    w = torch.exp(alpha * video_scores.float())
    if not torch.isfinite(w).all():
        raise ValueError(f"exp({alpha} * video_scores) overflows: pass raw cosine-like scores, not exponentiated")
    return w


def rank_videos(video_scores: Tensor, cfg: MomentRankConfig) -> RankedVideos:
    """VR: the ``max_videos`` best videos per query. video_scores: [Nq, Nv] raw -> RankedVideos [Nq, K]."""
    w = _video_weights(video_scores, cfg.q2c_alpha)
    score, video = topk_stable(w, cfg.max_videos)
    return RankedVideos(video=video, score=score)


def _columns(videos: Tensor, wanted: Tensor) -> Tensor:
    """Column of each ``wanted`` [c, K] corpus position within ``videos`` [c, Kc] (the videos whose st/ed
    probabilities were computed), first match; a wanted video that is not there is an error."""
    hit = videos[:, None, :] == wanted[:, :, None]                                             # [c, K, Kc]
    if not bool(hit.any(-1).all()):
        raise ValueError("st/ed probabilities were computed for videos that lack a top-ranked (or GT) video")
    return hit.to(torch.uint8).argmax(-1)


def rank_vcmr(video_scores: Tensor, st_probs: Tensor, ed_probs: Tensor, cfg: MomentRankConfig,
              num_frames: Tensor | None = None, videos: Tensor | None = None) -> MomentRanking:
    """VCMR over the whole corpus: top ``max_videos`` videos, then their best spans (see the module docstring).

    video_scores: [Nq, Nv]; st_probs, ed_probs: [Nq, Nv, T], or with ``videos`` [Nq, Kc] (corpus positions) only
    those videos' columns [Nq, Kc, T], which must include each query's top ``max_videos``; num_frames: [Nv] or
    None -> MomentRanking [Nq, K].
    """
    nq, nc, t = st_probs.shape
    nv = video_scores.shape[1]
    if video_scores.shape[0] != nq or ed_probs.shape != st_probs.shape or (videos is None and nc != nv) or (
            videos is not None and videos.shape != (nq, nc)):
        raise ValueError(f"shape mismatch: video_scores {tuple(video_scores.shape)}, st_probs "
                         f"{tuple(st_probs.shape)}, ed_probs {tuple(ed_probs.shape)}"
                         + (f", videos {tuple(videos.shape)}" if videos is not None else ""))
    pool = cfg.max_before_nms if cfg.nms_threshold is not None else cfg.max_after_nms
    parts = []
    for q0 in range(0, nq, cfg.query_chunk):
        sl = slice(q0, q0 + cfg.query_chunk)
        w, top = topk_stable(_video_weights(video_scores[sl], cfg.q2c_alpha), cfg.max_videos)   # [c, V]
        col = top if videos is None else _columns(videos[sl], top)
        idx = col[:, :, None].expand(-1, -1, t)
        st, ed = st_probs[sl].gather(1, idx).float(), ed_probs[sl].gather(1, idx).float()
        lengths = num_frames.to(top.device)[top] if num_frames is not None else None
        vals, vrank, m, n = _span_candidates(st, ed, w, lengths, cfg, pool)
        parts.append(_finish(vals, top.gather(1, vrank), m, n, cfg))
    return MomentRanking.cat(parts)


def rank_svmr(st_probs: Tensor, ed_probs: Tensor, gt_video: Tensor, cfg: MomentRankConfig,
              num_frames: Tensor | None = None, videos: Tensor | None = None) -> MomentRanking:
    """SVMR: the best spans of each query's ground-truth video, scored ``st[m] * ed[n]``.

    st_probs, ed_probs: [Nq, Nv, T], or with ``videos`` [Nq, Kc] only those videos' columns (which must include
    each query's GT video); gt_video: [Nq] corpus positions; num_frames: [Nv] or None.
    """
    nq, _, t = st_probs.shape
    pool = cfg.max_before_nms if cfg.nms_threshold is not None else cfg.max_after_nms
    parts = []
    for q0 in range(0, nq, cfg.query_chunk):
        sl = slice(q0, q0 + cfg.query_chunk)
        g = gt_video[sl].long()
        col = g if videos is None else _columns(videos[sl], g[:, None])[:, 0]
        idx = col[:, None, None].expand(-1, 1, t)
        st, ed = st_probs[sl].gather(1, idx).float(), ed_probs[sl].gather(1, idx).float()      # [c, 1, T]
        lengths = num_frames.to(g.device)[g][:, None] if num_frames is not None else None
        vals, _, m, n = _span_candidates(st, ed, None, lengths, cfg, pool)
        parts.append(_finish(vals, g[:, None].expand_as(m), m, n, cfg))
    return MomentRanking.cat(parts)
