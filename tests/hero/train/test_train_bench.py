"""The training benchmark runs end to end and reports numbers measured in its own run."""

import json

import pytest

from hero.train import bench


def test_quick_bench_measures_both_paths(tmp_path):
    out = tmp_path / "bench.json"
    res = bench.main(["--quick", "--preset", "hero-tiny", "--precisions", "fp32", "--out", str(out)])
    assert json.loads(out.read_text()) == json.loads(json.dumps(res))
    mix = res["mix_fp32_1t"]
    assert mix["steps"] == 4 and res["gemm_gflops_1t"]["fp32"] > 0
    for path in ("default", "reference"):
        assert mix[path]["ms_per_step"] > 0 and 0 < mix[path]["mfu"] < 1
    assert mix["default"]["gflop_per_step"] < mix["reference"]["gflop_per_step"]   # padding is not computed
    assert mix["ratio"]["wall"] > 0 and mix["ratio"]["cpu"] > 0


def test_row_bucket_effect_times_both_forms_side_by_side():
    from hero.train.bench import row_bucket_effect

    r = row_bucket_effect(calls=8)
    assert r["own_rows_ms"] > 0 and r["bucketed_ms"] > 0
    assert r["ratio"] == pytest.approx(r["bucketed_ms"] / r["own_rows_ms"])
