"""The TVR-scale benchmark (features-only corpus -> ingestion -> VCMR inference -> scoring) runs end to end at a
tiny scale and writes its JSON."""

import json

from hero.eval import tvr_bench


def test_tvr_bench_runs_at_a_tiny_scale(tmp_path):
    out = tmp_path / "bench.json"
    result = tvr_bench.main(["--scale", "0.004", "--dim", "64", "--workdir", str(tmp_path), "--out", str(out)])
    assert json.loads(out.read_text()) == result
    assert result["tvr/videos"] == 9 and result["tvr/queries"] == 44
    for phase in ("ingest", "import", "inference", "scoring"):
        assert result[f"tvr/{phase}_s"] > 0 and result[f"tvr/{phase}_peak_rss_mb"] > 0
    assert result["tvr/total_s"] >= result["tvr/inference_s"]
    assert 0 <= result["tvr/metric/vr_r1"] <= 100
    assert not list(tmp_path.glob("hero-tvr-bench-*"))  # the temporary corpus is removed


def test_build_corpus_has_the_tvr_val_shape(tmp_path):
    built = tvr_bench.build_corpus(tmp_path, scale=0.002, dim=8, seed=1)
    lines = (tmp_path / "corpus/annotations/tvr_val.jsonl").read_text().splitlines()
    assert len(lines) == built["queries"] == 22 and built["videos"] == 4
    durations = json.loads((tmp_path / "tvr_video2dur_idx.json").read_text())["val"]
    for line in map(json.loads, lines):
        dur = durations[line["vid_name"]][0]
        assert 40 <= dur <= 150 and 0 <= line["ts"][0] < line["ts"][1] <= dur
        assert line["type"] in ("v", "vt", "t")
