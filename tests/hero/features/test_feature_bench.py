import json

import pytest


@pytest.mark.slow
def test_benchmark_runs_end_to_end(tmp_path):
    from hero.feature_bench import main

    out = tmp_path / "bench.json"
    result = main(["--videos", "2", "--out", str(out)])
    assert json.loads(out.read_text()) == json.loads(json.dumps(result))
    assert result["extraction"]["clips"] > 0 and result["extraction"]["cached_rerun_extracted"] == 0
    assert result["store_reads"]["videos_per_s"] > 0 and result["trainer"]["videos_per_s"] > 0
    assert set(result["ratios"]) >= {"extraction_vs_target", "decode_share_vs_limit", "store_reads_vs_trainer"}
