"""The VCMR benchmark runs end to end at toy size and writes its JSON."""

import json

from hero.eval import bench


def test_bench_main_writes_json(tmp_path):
    out = tmp_path / "bench.json"
    result = bench.main(["--videos", "30", "--clips", "20", "--queries", "12", "--hidden", "16", "--chunk", "5",
                         "--out", str(out)])
    assert json.loads(out.read_text()) == result
    assert result["vcmr/queries_per_s"] > 0 and result["vcmr/peak_memory_mb"] > 0
    assert result["vcmr/ranking_speedup"] > 0


def test_hero_style_baseline_agrees_with_rank_vcmr():
    import torch

    from hero.metrics.moment_ranking import MomentRankConfig, rank_vcmr

    gen = torch.Generator().manual_seed(0)
    frames, lengths = bench.make_corpus(20, 12, 8, gen, torch.device("cpu"))
    queries = torch.nn.functional.normalize(torch.randn(4, 8, generator=gen), dim=-1)
    scores = bench.score_queries(queries, frames, lengths)
    cfg = MomentRankConfig(max_videos=5, min_len=1, max_len=4, max_before_nms=10, max_after_nms=10)
    ours = rank_vcmr(*scores, cfg, num_frames=lengths)
    flat = bench.hero_style_rank(*scores, cfg)[:, :10]              # (video rank, m, n) in a [5, 12, 12] grid
    top = torch.exp(20 * scores[0]).topk(5, dim=1).indices
    video = top.gather(1, flat // 144)
    assert torch.equal(video, ours.video)
    assert torch.equal((flat % 144) // 12 * 1.5, ours.start.float())
