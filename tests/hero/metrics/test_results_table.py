"""The results table: a verdict comes from the interval of the paired difference, never from the means."""

import numpy as np
import pytest

from hero.metrics.results import (
    GAIN, LOSS, NO_DIFFERENCE, MetricResults, intervals_section, metric_rows, render_comparisons, render_markdown, results_markdown,
    summarize, verdict,
)
from hero.metrics.intervals import Interval

N = 120


def hits(rng, p, seeds=3, n=N):
    """[seeds, n] per-query hits as the scorers give them (100 / 0)."""
    return (rng.random((seeds, n)) < p).astype(float) * 100


def rows():
    rng = np.random.default_rng(0)
    base = hits(rng, 0.3)
    same = base.copy()
    flips = base.copy()
    flips[:, :2] = 100.0 - flips[:, :2]   # 2 of 120 questions change: the means differ, the interval holds 0
    return [
        MetricResults("tvr", "vr_r1", {"pretrained": hits(rng, 0.8), "scratch": hits(rng, 0.2)},
                      {"chance": 5.6, "text-only": 38.67}),
        MetricResults("tvqa", "acc", {"pretrained": hits(rng, 0.2), "scratch": hits(rng, 0.8)}, {"chance": 20.0}),
        MetricResults("violin", "acc", {"pretrained": flips, "scratch": same}, {"chance": 50.0}),
        MetricResults("retrieval", "r1", {"pretrained": same, "scratch": same.copy()}, {"text-only": None}),
    ]


def table_rows(md):
    return [[c.strip() for c in line.strip("|").split("|")] for line in md.splitlines()
            if line.startswith("| ") and not line.startswith("| task")]


def test_each_verdict_from_constructed_arms():
    summaries = summarize(rows(), n_boot=400)
    got = {(s.task, s.metric): s.verdict("pretrained", "scratch") for s in summaries}
    assert got == {("tvr", "vr_r1"): GAIN, ("tvqa", "acc"): LOSS, ("violin", "acc"): NO_DIFFERENCE,
                   ("retrieval", "r1"): NO_DIFFERENCE}
    violin = summaries[2].differences[("pretrained", "scratch")]
    assert violin.estimate != 0 and violin.low < 0 < violin.high          # the means differ; no verdict says so
    same = summaries[3].differences[("pretrained", "scratch")]
    assert (same.low, same.high) == (0.0, 0.0)


def test_markdown_columns_and_cells():
    md = results_markdown(rows(), n_boot=400)
    header = next(line for line in md.splitlines() if line.startswith("| task"))
    assert [h.strip() for h in header.strip("|").split("|")] == [
        "task", "metric", "pretrained", "scratch", "chance", "text-only", "pretrained − scratch", "verdict",
        "seeds × examples"]
    body = table_rows(md)
    assert [r[7] for r in body] == [GAIN, LOSS, NO_DIFFERENCE, NO_DIFFERENCE]
    tvr = body[0]
    mean, low, high = (float(x) for x in tvr[2].replace("[", "").replace("]", "").replace(",", "").split())
    assert low < mean < high
    assert tvr[4:6] == ["5.60", "38.67"]
    assert body[1][5] == "–" and body[3][5] == "–"          # no text-only for tvqa; None for retrieval
    assert tvr[6].startswith("+") and body[1][6].startswith("-")
    assert tvr[8] == f"3 × {N}"
    assert "excludes 0" in md and "400 resamples" in md


def test_per_seed_dicts_are_matched_by_id_and_unequal_seed_counts_show():
    a = [{"q1": 100.0, "q2": 100.0, "q3": 0.0}, {"q3": 100.0, "q2": 100.0, "q1": 100.0}]
    b = [{"q2": 0.0, "q1": 0.0, "q3": 0.0}]
    per_seed = {"pretrained": [{"acc": r} for r in a], "scratch": [{"acc": r} for r in b]}
    (row,) = metric_rows("tvqa", per_seed, ["acc"], {"acc": {"chance": 20.0}})
    (s,) = summarize([row], n_boot=200)
    assert s.seeds == {"pretrained": 2, "scratch": 1} and s.examples == 3
    assert s.arms["pretrained"].estimate == pytest.approx(500 / 6)
    assert s.differences[("pretrained", "scratch")].estimate == pytest.approx(500 / 6)
    assert table_rows(render_markdown([s]))[0][-1] == "2/1 × 3"


def test_a_missing_arm_or_mismatched_examples():
    rng = np.random.default_rng(1)
    (s,) = summarize([MetricResults("tvc", "cider", {"pretrained": rng.random((2, 10))})])
    assert s.differences[("pretrained", "scratch")] is None and s.verdict("pretrained", "scratch") == "–"
    assert table_rows(render_markdown([s]))[0][3] == "–"
    with pytest.raises(ValueError, match="tvc/cider: the arms have different numbers of examples"):
        summarize([MetricResults("tvc", "cider", {"pretrained": np.zeros((1, 4)), "scratch": np.zeros((1, 5))})])
    with pytest.raises(ValueError, match=r"tvqa/acc scratch\[0\]: its example ids differ"):
        summarize([MetricResults("tvqa", "acc", {"pretrained": [{"q1": 1.0}], "scratch": [{"q9": 1.0}]})])
    with pytest.raises(ValueError, match="tvc/cider: no arm has per-example values"):
        summarize([MetricResults("tvc", "cider", {})])
    with pytest.raises(ValueError, match=r"tvqa scratch\[0\]: no per-example values for 'acc'"):
        metric_rows("tvqa", {"scratch": [{"loc_miou": {}}]}, ["acc"])


def test_several_comparisons_and_the_verdict_rule_at_the_boundary():
    rng = np.random.default_rng(2)
    arms = {"hier": hits(rng, 0.9), "flat": hits(rng, 0.5), "none": hits(rng, 0.1)}
    comps = [("hier", "none"), ("flat", "none")]
    md = results_markdown([MetricResults("tvr", "vr_r1", arms)], comps, n_boot=200)
    assert "verdict (hier vs none)" in md and "verdict (flat vs none)" in md
    assert verdict(Interval(1.0, 0.0, 2.0, 10, 0.05)) == NO_DIFFERENCE       # touching 0 is not a gain
    assert verdict(Interval(-1.0, -2.0, 0.0, 10, 0.05)) == NO_DIFFERENCE
    assert verdict(Interval(1.0, 1e-9, 2.0, 10, 0.05)) == GAIN
    assert verdict(Interval(0.0, -1e-14, -1e-15, 10, 0.05)) == NO_DIFFERENCE  # float rounding is not a loss
    assert verdict(None) == "–"


def test_the_docs_carry_the_intervals_section():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[3] / "docs" / "results.md").read_text()
    assert intervals_section() in text


def test_comparisons_with_a_one_seed_reference_arm():
    rng = np.random.default_rng(1)
    text_only = hits(rng, 0.5, seeds=1)
    rows_ = [MetricResults("tvr", "svmr", {"pretrained": np.repeat(text_only, 3, 0), "scratch": hits(rng, 0.1),
                                          "text-only": text_only}),
             MetricResults("tvqa", "acc", {"pretrained": hits(rng, 0.5), "scratch": hits(rng, 0.5)})]
    pairs = [("pretrained", "text-only"), ("scratch", "text-only")]
    md = render_comparisons(summarize(rows_, pairs, n_boot=400), pairs)
    header = [h.strip() for h in md.splitlines()[0].strip("|").split("|")]
    assert header == ["task", "metric", "pretrained − text-only", "verdict (pretrained vs text-only)",
                      "scratch − text-only", "verdict (scratch vs text-only)", "seeds × examples"]
    body = table_rows(md)
    assert len(body) == 1                              # tvqa has no text-only arm: left out
    assert body[0][2:6] == ["+0.00 [+0.00, +0.00]", NO_DIFFERENCE, body[0][4], LOSS]
    assert body[0][6] == f"3/3/1 × {N}"
    assert render_comparisons(summarize(rows_[1:], pairs, n_boot=50), pairs) == ""
