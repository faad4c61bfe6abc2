"""VCMR/SVMR/VR ranking against a brute-force enumeration, NMS on hand cases, tie rules."""

import pytest
import torch

from hero.config import ConfigError
from hero.metrics.moment_ranking import (
    MomentRankConfig, rank_svmr, rank_vcmr, rank_videos, temporal_nms, topk_stable,
)


def brute_force(st, ed, weight, lengths, cfg):
    """All spans of the given videos, scored (st * w) * ed in float32, sorted (-score, video rank, m, n),
    greedy NMS, first max_after_nms. Returns [(video_rank, m, n, score)]."""
    cands = []
    for v in range(st.shape[0]):
        for m in range(st.shape[1]):
            for n in range(m, st.shape[1]):
                if cfg.min_len <= n - m < cfg.max_len and n < lengths[v]:
                    s = (st[v, m] * weight[v] if weight is not None else st[v, m]) * ed[v, n]
                    cands.append((-float(s), v, m, n))
    cands.sort()
    if cfg.nms_threshold is not None:
        kept = []
        for c in cands[: cfg.max_before_nms]:
            def iou(a, b):
                inter = max(0.0, min(a[3] + 1, b[3] + 1) - max(a[2], b[2]))
                return inter / (max(a[3] + 1, b[3] + 1) - min(a[2], b[2]))
            if all(k[1] != c[1] or iou(k, c) <= cfg.nms_threshold for k in kept):
                kept.append(c)
        cands = kept
    return [(v, m, n, -s) for s, v, m, n in cands[: cfg.max_after_nms]]


def check(ranking, q, expected, video_of, clip_len):
    got = [(int(ranking.video[q, i]), float(ranking.start[q, i]), float(ranking.end[q, i]),
            float(ranking.score[q, i])) for i in range(ranking.video.shape[1]) if ranking.video[q, i] >= 0]
    assert len(got) == len(expected)
    for (gv, gs, ge, gsc), (v, m, n, s) in zip(got, expected):
        assert (gv, gs, ge) == (video_of[v], m * clip_len, (n + 1) * clip_len)
        assert gsc == pytest.approx(s, rel=1e-6)


@pytest.mark.parametrize("nms", [None, 0.4])
@pytest.mark.parametrize("with_lengths", [False, True])
def test_vcmr_matches_brute_force(nms, with_lengths):
    g = torch.Generator().manual_seed(3)
    nq, nv, t = 5, 7, 9
    raw = torch.rand(nq, nv, generator=g) * 0.5
    st = torch.randn(nq, nv, t, generator=g).softmax(-1)
    ed = torch.randn(nq, nv, t, generator=g).softmax(-1)
    lengths = torch.randint(3, t + 1, (nv,), generator=g) if with_lengths else None
    cfg = MomentRankConfig(max_videos=4, min_len=1, max_len=4, max_before_nms=30, max_after_nms=12,
                           nms_threshold=nms, query_chunk=2, q2c_alpha=20.0)
    ranking = rank_vcmr(raw, st, ed, cfg, num_frames=lengths)
    assert ranking.video.shape == (nq, 12)
    for q in range(nq):
        w = torch.exp(20.0 * raw[q])
        top = sorted(range(nv), key=lambda v: (-float(w[v]), v))[:4]
        exp = brute_force(st[q, top], ed[q, top], w[top],
                          [int(lengths[v]) if lengths is not None else t for v in top], cfg)
        check(ranking, q, exp, top, 1.5)


def test_svmr_matches_brute_force_and_uses_the_gt_video_only():
    g = torch.Generator().manual_seed(4)
    nq, nv, t = 4, 3, 10
    st = torch.randn(nq, nv, t, generator=g).softmax(-1)
    ed = torch.randn(nq, nv, t, generator=g).softmax(-1)
    gt_video = torch.tensor([2, 0, 1, 2])
    cfg = MomentRankConfig(min_len=2, max_len=5, max_before_nms=20, max_after_nms=10, nms_threshold=0.5,
                           query_chunk=3, clip_len=2.0)
    ranking = rank_svmr(st, ed, gt_video, cfg)
    for q in range(nq):
        v = int(gt_video[q])
        exp = brute_force(st[q, v:v + 1], ed[q, v:v + 1], None, [t], cfg)
        check(ranking, q, exp, [v], 2.0)


def test_ties_break_by_video_rank_then_start_then_end():
    nq, nv, t = 1, 3, 5
    st = torch.full((nq, nv, t), 0.2)
    ed = torch.full((nq, nv, t), 0.2)
    raw = torch.tensor([[0.1, 0.3, 0.3]])            # videos 1 and 2 tie: lower index first
    cfg = MomentRankConfig(max_videos=2, min_len=1, max_len=3, max_after_nms=4, max_before_nms=4)
    r = rank_vcmr(raw, st, ed, cfg)
    assert r.video[0].tolist() == [1, 1, 1, 1]
    assert list(zip(r.start[0].tolist(), r.end[0].tolist())) == [(0, 3), (0, 4.5), (1.5, 4.5), (1.5, 6)]
    assert rank_videos(raw, MomentRankConfig(max_videos=3)).video[0].tolist() == [1, 2, 0]


def test_too_few_spans_pad_with_empty_slots():
    st = ed = torch.full((1, 1, 4), 0.25)
    r = rank_vcmr(torch.zeros(1, 1), st, ed, MomentRankConfig(min_len=2, max_len=16, max_after_nms=10))
    assert (r.video[0] >= 0).sum() == 3                   # (0,2), (0,3), (1,3)
    assert r.score[0, 3] == float("-inf") and r.rows(0).shape == (3, 4)
    none = rank_vcmr(torch.zeros(1, 1), st, ed, MomentRankConfig(min_len=4, max_len=16))
    assert (none.video < 0).all() and none.rows(0).shape == (0, 4)
    no_queries = rank_vcmr(torch.zeros(0, 1), st[:0], ed[:0], MomentRankConfig())
    assert no_queries.video.shape[0] == 0


def test_temporal_nms_hand_case():
    # sorted best first: [0,10] keeps; [1,10] IoU .9 same video -> dropped; [5,15] IoU 1/3 -> kept;
    # [1,10] on another video -> kept; [0,5] vs [0,10] IoU exactly .5 -> kept (only > threshold suppresses)
    video = torch.tensor([[0, 0, 0, 1, 0]])
    start = torch.tensor([[0.0, 1.0, 5.0, 1.0, 0.0]])
    end = torch.tensor([[10.0, 10.0, 15.0, 10.0, 5.0]])
    valid = torch.ones(1, 5, dtype=torch.bool)
    keep = temporal_nms(video, start, end, valid, 0.5)
    assert keep[0].tolist() == [True, False, True, True, True]
    # a dropped span does not suppress others: [0,4] drops [1,5]; [1,5] would have dropped [2,6] but is gone
    keep = temporal_nms(torch.zeros(1, 3, dtype=torch.long), torch.tensor([[0.0, 1.0, 2.0]]),
                        torch.tensor([[4.0, 5.0, 6.0]]), torch.ones(1, 3, dtype=torch.bool), 0.5)
    assert keep[0].tolist() == [True, False, True]
    # zero-length spans: union 0 never suppresses
    keep = temporal_nms(torch.zeros(1, 2, dtype=torch.long), torch.tensor([[3.0, 3.0]]), torch.tensor([[3.0, 3.0]]),
                        torch.ones(1, 2, dtype=torch.bool), 0.0)
    assert keep[0].tolist() == [True, True]


def test_topk_stable_equals_a_stable_full_sort():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 4, (50, 40), generator=g).float()       # many ties
    vals, idx = topk_stable(x, 7)
    full = torch.sort(x, dim=1, descending=True, stable=True)
    assert torch.equal(vals, full.values[:, :7]) and torch.equal(idx, full.indices[:, :7])
    with pytest.raises(ValueError, match="NaN"):
        topk_stable(torch.tensor([[float("nan"), 1.0]]), 1)


def test_overflowing_video_scores_are_rejected():
    st = torch.full((1, 2, 4), 0.25)
    with pytest.raises(ValueError, match="overflow"):
        rank_vcmr(torch.tensor([[1e3, 0.0]]), st, st, MomentRankConfig())


def test_rank_config_validation():
    with pytest.raises(ConfigError, match=r"moment_rank\.max_len"):
        MomentRankConfig(min_len=4, max_len=4)
    with pytest.raises(ConfigError, match=r"moment_rank\.max_before_nms"):
        MomentRankConfig(max_before_nms=10, max_after_nms=20)
