"""Moment-retrieval metrics against hand-computed cases and a loop-by-loop reference of the evaluator's rules."""

import numpy as np
import pytest

from hero.config import ConfigError
from hero.metrics.formats import MomentAnnotation
from hero.metrics.moment_metrics import MomentEvalConfig, evaluate_moment_task, temporal_iou

V2I = {"vid_a": 0, "vid_b": 1, "vid_c": 2}


def gt(qid, vid="vid_a", spans=((0.0, 10.0),), qtype=None):
    return MomentAnnotation(desc_id=qid, vid_name=vid, spans=tuple(spans), type=qtype)


def rows(*r):
    return np.array([list(x) + [0.0] for x in r], dtype=np.float64).reshape(-1, 4)


def test_temporal_iou_hand_values():
    iou = temporal_iou(np.array([[0, 7], [3, 10], [0, 5], [20, 30], [5, 5], [2, 12]]), (0, 10))
    np.testing.assert_allclose(iou, [0.7, 0.7, 0.5, 0.0, 0.0, 8 / 12], rtol=1e-6)
    assert temporal_iou(np.array([[4.0, 4.0]]), (4.0, 4.0))[0] == 0.0  # zero "union" -> 0, not NaN


def test_iou_exactly_at_threshold_counts():
    g = [gt(1)]
    at = evaluate_moment_task("VCMR", {"1": rows((0, 0, 7))}, g, V2I)          # IoU 0.7 exactly
    assert at["vcmr_r1_iou0.7"] == 100.0 and at["vcmr_r1_iou0.5"] == 100.0
    below = evaluate_moment_task("VCMR", {"1": rows((0, 0, 6.99))}, g, V2I)
    assert below["vcmr_r1_iou0.7"] == 0.0 and below["vcmr_r1_iou0.5"] == 100.0
    half = evaluate_moment_task("VCMR", {"1": rows((0, 5, 10))}, g, V2I)       # IoU 0.5 exactly
    assert half["vcmr_r1_iou0.5"] == 100.0 and half["vcmr_r1_iou0.7"] == 0.0


def test_threshold_uses_the_evaluators_float32_arithmetic():
    # IoU = 1.05 / 1.5 = 0.7: float64 gives 0.6999999999999998, the evaluator's float32 gives exactly 0.7f
    g = [gt(1, spans=((0.0, 1.5),))]
    assert evaluate_moment_task("VCMR", {"1": rows((0, 0.1, 1.15))}, g, V2I)["vcmr_r1_iou0.7"] == 100.0


def test_equal_scores_keep_list_order():
    # the evaluator ranks by list position, never by the score column
    r = np.array([[1, 0, 10, 0.5], [0, 0, 10, 0.5]])
    assert evaluate_moment_task("VCMR", {"1": r}, [gt(1)], V2I)["vcmr_r1_iou0.5"] == 0.0
    assert evaluate_moment_task("VCMR", {"1": r[::-1]}, [gt(1)], V2I)["vcmr_r1_iou0.5"] == 100.0


def test_vcmr_svmr_vr_on_one_list():
    # rank 1: wrong video, perfect span; rank 2: right video IoU 0.6; rank 3: right video IoU 0.8
    r = rows((1, 0, 10), (0, 0, 6), (0, 0, 8))
    g = [gt(7)]
    vcmr = evaluate_moment_task("VCMR", {"7": r}, g, V2I)
    assert vcmr["vcmr_r1_iou0.5"] == 0.0 and vcmr["vcmr_r5_iou0.5"] == 100.0 and vcmr["vcmr_r5_iou0.7"] == 100.0
    svmr = evaluate_moment_task("SVMR", {"7": r}, g, V2I)   # only rows on vid_a: IoU 0.6 is its rank 1
    assert svmr["svmr_r1_iou0.5"] == 100.0 and svmr["svmr_r1_iou0.7"] == 0.0 and svmr["svmr_r5_iou0.7"] == 100.0
    vr = evaluate_moment_task("VR", {"7": r}, g, V2I)
    assert vr == {"vr_r1": 0.0, "vr_r5": 100.0, "vr_r10": 100.0, "vr_r100": 100.0}


def test_missing_and_empty_predictions_are_misses():
    g = [gt(1), gt(2), gt(3)]
    out = evaluate_moment_task("VCMR", {"1": rows((0, 0, 10)), "2": np.zeros((0, 4))}, g, V2I)
    assert out["vcmr_r1_iou0.7"] == pytest.approx(100 / 3)
    out = evaluate_moment_task("VR", {}, g, V2I)
    assert out["vr_r100"] == 0.0


def test_duplicates_take_rank_slots_and_extra_ids_are_ignored():
    r = rows((1, 0, 10), (1, 0, 10), (0, 0, 10))
    out = evaluate_moment_task("VCMR", {"1": r, "999": rows((0, 0, 10))}, [gt(1)], V2I,
                               MomentEvalConfig(recall_ks=(2, 3)))
    assert out["vcmr_r2_iou0.5"] == 0.0 and out["vcmr_r3_iou0.5"] == 100.0
    vr = evaluate_moment_task("VR", {"1": r}, [gt(1)], V2I, MomentEvalConfig(recall_ks=(2, 3)))
    assert vr == {"vr_r2": 0.0, "vr_r3": 100.0}


def test_only_first_max_predictions_rows_are_judged():
    r = rows((1, 0, 10), (1, 0, 10), (0, 0, 10))
    cfg = MomentEvalConfig(recall_ks=(5,), max_predictions=2)
    assert evaluate_moment_task("VCMR", {"1": r}, [gt(1)], V2I, cfg)["vcmr_r5_iou0.5"] == 0.0


def test_gt_video_missing_from_video2idx_is_a_miss():
    out = evaluate_moment_task("VR", {"1": rows((0, 0, 10))}, [gt(1, vid="elsewhere")], V2I)
    assert out["vr_r1"] == 0.0


def test_by_query_type():
    g = [gt(1, qtype="v"), gt(2, qtype="v"), gt(3, qtype="t")]
    p = {"1": rows((0, 0, 10)), "2": rows((1, 0, 10)), "3": rows((0, 0, 10))}
    out = evaluate_moment_task("VCMR", p, g, V2I)
    assert out["vcmr_r1_iou0.7"] == pytest.approx(200 / 3)
    assert out["vcmr_v_r1_iou0.7"] == 50.0 and out["vcmr_t_r1_iou0.7"] == 100.0
    assert not any(k.startswith("vcmr_vt_") for k in out)          # no vt query: no vt keys
    vr = evaluate_moment_task("VR", p, g, V2I)
    assert vr["vr_v_r1"] == 50.0 and vr["vr_t_r1"] == 100.0
    untyped = evaluate_moment_task("VCMR", p, [gt(1)], V2I)
    assert set(untyped) == {f"vcmr_r{k}_iou{t}" for k in (1, 5, 10, 100) for t in (0.5, 0.7)}
    assert set(evaluate_moment_task("VCMR", p, g, V2I, MomentEvalConfig(by_type=False))) == set(untyped)


def test_didemo_multi_gt_rule():
    spans = [(0, 5), (0, 5), (10, 15), (20, 25)]
    g = [gt(1, spans=spans)]
    one_span = {"1": rows((0, 10, 15))}          # reaches 1 of 4 spans
    two_spans = {"1": rows((0, 0, 5))}           # reaches 2 of 4 spans (two annotators agree)
    assert evaluate_moment_task("VCMR", one_span, g, V2I)["vcmr_r1_iou0.5"] == 0.0
    assert evaluate_moment_task("VCMR", two_spans, g, V2I)["vcmr_r1_iou0.5"] == 100.0
    off = MomentEvalConfig(multi_gt_min_spans=None)
    assert evaluate_moment_task("VCMR", one_span, g, V2I, off)["vcmr_r1_iou0.5"] == 100.0
    three = [gt(1, spans=spans[1:])]              # fewer than 4 spans: any span suffices
    assert evaluate_moment_task("VCMR", one_span, three, V2I)["vcmr_r1_iou0.5"] == 100.0


def test_config_validation_names_the_key():
    with pytest.raises(ConfigError, match=r"moment_eval\.iou_thresholds"):
        MomentEvalConfig(iou_thresholds=(0.0,))
    with pytest.raises(ConfigError, match=r"moment_eval\.recall_ks"):
        MomentEvalConfig(recall_ks=())
    with pytest.raises(ConfigError, match=r"moment_eval\.multi_gt_min_spans"):
        MomentEvalConfig(multi_gt_min_spans=1)
    with pytest.raises(ValueError, match="task"):
        evaluate_moment_task("XR", {}, [gt(1)], V2I)


def _reference(task, preds, gts, v2i, thds=(0.5, 0.7), ks=(1, 5, 10, 100)):
    """The evaluator's rules written as plain loops (float32 IoU, >= threshold, list order, first 100 rows)."""
    out = {}
    for ti, thd in enumerate([None] if task == "VR" else thds):
        for k in ks:
            hits = 0
            for g in gts:
                r = preds.get(str(g.desc_id), np.zeros((0, 4)))[:100].astype(np.float32)
                good = []
                for row in r:
                    on = v2i.get(g.vid_name) is not None and row[0] == v2i[g.vid_name]
                    if task == "VR":
                        good.append(on)
                        continue
                    n = sum(on and temporal_iou(row[None, 1:3], s)[0] >= np.float32(thd) for s in g.spans)
                    ok = n >= 2 if len(g.spans) >= 4 else n >= 1
                    if task == "SVMR" and not on:
                        continue
                    good.append(ok)
                hits += any(good[:k])
            name = f"{task.lower()}_r{k}" + ("" if thd is None else f"_iou{thd:g}")
            out[name] = 100.0 * hits / len(gts)
    return out


@pytest.mark.parametrize("task", ["VCMR", "SVMR", "VR"])
def test_matches_loop_reference_on_random_lists(task):
    rng = np.random.default_rng(0)
    gts, preds = [], {}
    for q in range(60):
        n_spans = 4 if q % 7 == 0 else 1
        st = rng.integers(0, 20, n_spans) * 1.5
        spans = [(float(s), float(s + rng.integers(1, 6) * 1.5)) for s in st]
        gts.append(gt(q, vid=f"vid_{'abc'[q % 3]}", spans=spans))
        n = int(rng.integers(0, 130))
        s = rng.integers(0, 20, n) * 1.5
        preds[str(q)] = np.stack([rng.integers(0, 3, n), s, s + rng.integers(1, 6, n) * 1.5, rng.random(n)], 1)
    out = evaluate_moment_task(task, preds, gts, V2I, MomentEvalConfig(by_type=False))
    assert out == pytest.approx(_reference(task, preds, gts, V2I))
