"""Text-to-video retrieval: R@k, median and mean rank under each tie rule, from scores and from rankings."""

import pytest
import torch

from hero.config import ConfigError
from hero.metrics.formats import RetrievalAnnotation, VideoRanking
from hero.metrics.retrieval import RetrievalEvalConfig, ranking_metrics, retrieval_metrics

# q0: GT best (rank 1); q1: all three tied; q2: GT (col 2) tied with col 1 for the top
SCORES = torch.tensor([[3.0, 2.0, 1.0], [1.0, 1.0, 1.0], [0.0, 5.0, 5.0]])
GT = torch.tensor([0, 1, 2])


@pytest.mark.parametrize("rule,r1,r2,median,mean", [
    ("pessimistic", 100 / 3, 200 / 3, 2.0, 2.0),        # ranks 1, 3, 2
    ("optimistic", 100.0, 100.0, 1.0, 1.0),             # ranks 1, 1, 1
    ("average", 100 * (1 + 1 / 3 + 1 / 2) / 3, 100 * (1 + 2 / 3 + 1) / 3, 1.5, 1.5),   # ranks 1, 2, 1.5
])
def test_tie_rules_hand_computed(rule, r1, r2, median, mean):
    out = retrieval_metrics(SCORES, GT, RetrievalEvalConfig(recall_ks=(1, 2, 3), tie_rule=rule))
    assert out["r1"] == pytest.approx(r1) and out["r2"] == pytest.approx(r2) and out["r3"] == 100.0
    assert out["median_rank"] == median and out["mean_rank"] == pytest.approx(mean)


def test_median_of_an_even_count_is_the_mean_of_the_middle_ranks():
    scores = torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]])   # GT ranks 1 and 4 (pessimistic)
    out = retrieval_metrics(scores, torch.tensor([0, 2]))
    assert out["median_rank"] == 2.5 and out["mean_rank"] == 2.5 and out["r1"] == 50.0 and out["r5"] == 100.0


def test_from_rankings_with_missing_truncated_and_empty_lists():
    gts = [RetrievalAnnotation(i, f"v{i}") for i in range(4)]
    ranks = [
        VideoRanking(0, (("v0", 0.9), ("v1", 0.5))),               # rank 1
        VideoRanking(1, (("v0", 0.9), ("v2", 0.5))),               # GT v1 not in the truncated list: rank N
        VideoRanking(2, ()),                                       # empty: rank N
        VideoRanking(99, (("v3", 1.0),)),                          # not a GT query: ignored; query 3 missing
    ]
    for rule in ("pessimistic", "optimistic", "average"):
        out = ranking_metrics(ranks, gts, RetrievalEvalConfig(recall_ks=(1, 4), tie_rule=rule), num_videos=10)
        assert out["r1"] == 25.0 and out["r4"] == 25.0
        assert out["median_rank"] == 10.0 and out["mean_rank"] == pytest.approx((1 + 10 + 10 + 10) / 4)
    # default N: distinct videos in the ground truth and the rankings (v0..v3)
    assert ranking_metrics(ranks, gts)["mean_rank"] == pytest.approx((1 + 4 + 4 + 4) / 4)


def test_ties_inside_a_ranking_follow_the_rule():
    ranks = [VideoRanking(0, (("v1", 0.5), ("v0", 0.5), ("v2", 0.1)))]      # GT v0 tied with v1 for first
    gts = [RetrievalAnnotation(0, "v0")]
    assert ranking_metrics(ranks, gts, RetrievalEvalConfig(tie_rule="pessimistic"))["r1"] == 0.0
    assert ranking_metrics(ranks, gts, RetrievalEvalConfig(tie_rule="optimistic"))["r1"] == 100.0
    assert ranking_metrics(ranks, gts, RetrievalEvalConfig(tie_rule="average"))["r1"] == 50.0


def test_validation():
    with pytest.raises(ConfigError, match=r"retrieval_eval\.tie_rule"):
        RetrievalEvalConfig(tie_rule="random")
    with pytest.raises(ValueError, match="NaN"):
        retrieval_metrics(torch.tensor([[float("nan"), 1.0]]), torch.tensor([0]))
