"""QA / VIOLIN accuracy and QA temporal localisation against hand-computed cases."""

import pytest
import torch

from hero.metrics.formats import QaAnnotation, QaAnswer, ViolinAnnotation, ViolinLabel
from hero.metrics.qa import accuracy_from_logits, binary_accuracy_from_logits, qa_metrics, violin_metrics


def test_accuracy_from_logits_ties_go_to_the_lowest_index():
    logits = torch.tensor([[0.1, 0.9, 0.9, 0.0, 0.0], [2.0, 2.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 1.0]])
    assert accuracy_from_logits(logits, torch.tensor([1, 1, 4])) == pytest.approx(200 / 3)


def test_violin_threshold_is_strict():
    logits = torch.tensor([0.0, 1e-6, -3.0, 2.0])               # sigmoid 0.5 -> label 0
    assert binary_accuracy_from_logits(logits, torch.tensor([0, 1, 0, 0])) == 75.0


def test_qa_accuracy_missing_counts_wrong_extra_ignored():
    gts = [QaAnnotation(i, answer_idx=i % 5, num_answers=5) for i in range(4)]
    answers = [QaAnswer(0, 0), QaAnswer(1, 1), QaAnswer(2, 0), QaAnswer(77, 1)]    # q3 missing, q2 wrong
    assert qa_metrics(answers, gts) == {"acc": 50.0}


def test_qa_localisation_hand_computed():
    gts = [QaAnnotation(0, 0, 5, ts=(0.0, 10.0)), QaAnnotation(1, 1, 5, ts=(0.0, 10.0)),
           QaAnnotation(2, 2, 5, ts=(0.0, 10.0)), QaAnnotation(3, 3, 5, ts=None)]
    answers = [QaAnswer(0, 0, ts=(0.0, 5.0)),      # right, IoU 0.5 exactly
               QaAnswer(1, 0, ts=(0.0, 10.0)),     # wrong answer, IoU 1
               QaAnswer(2, 2),                     # right, no span: IoU 0
               QaAnswer(3, 3, ts=(0.0, 1.0))]      # GT without span: not in the localisation metrics
    out = qa_metrics(answers, gts)
    assert out["acc"] == 75.0
    assert out["loc_miou"] == pytest.approx(100 * 1.5 / 3)
    assert out["loc_r1_iou0.5"] == pytest.approx(200 / 3)
    assert out["loc_joint_iou0.5"] == pytest.approx(100 / 3)


def test_violin_accuracy():
    gts = [ViolinAnnotation("a-1", 1), ViolinAnnotation("a-0", 0), ViolinAnnotation("b-1", 1)]
    assert violin_metrics([ViolinLabel("a-1", 1), ViolinLabel("a-0", 1)], gts) == {"acc": pytest.approx(100 / 3)}
    with pytest.raises(ValueError):
        violin_metrics([], [])


def test_tvqa_plus_iou_is_float64_at_the_threshold():
    # Spans whose IoU lands on 0.5 up to rounding: the TVQA+ evaluator (Python floats) and float32 disagree.
    import numpy as np

    from hero.metrics.qa import tvqa_plus_iou

    above, below = ((0.1, 0.2), (0.1, 0.3)), ((0.1, 0.3), (0.1, 0.5))   # (pred, gt)
    assert tvqa_plus_iou(*above) == 0.5000000000000001 and tvqa_plus_iou(*below) == 0.49999999999999994
    for pred, gt in (above, below):                                      # float32 would flip both
        p, g = np.float32(pred), np.float32(gt)
        iou32 = (min(p[1], g[1]) - max(p[0], g[0])) / (max(p[1], g[1]) - min(p[0], g[0]))
        assert (iou32 >= np.float32(0.5)) != (tvqa_plus_iou(pred, gt) >= 0.5)
    for (pred, gt), hit in ((above, 100.0), (below, 0.0)):
        out = qa_metrics([QaAnswer(0, 0, ts=pred)], [QaAnnotation(0, 0, 5, ts=gt)])
        assert out["loc_r1_iou0.5"] == hit and out["loc_joint_iou0.5"] == hit


def test_tvqa_plus_iou_hull_and_degenerate_spans():
    from hero.metrics.qa import tvqa_plus_iou

    assert tvqa_plus_iou((0, 2), (1, 3)) == 1 / 3 and tvqa_plus_iou((0, 1), (2, 3)) == 0.0
    assert tvqa_plus_iou((1, 1), (1, 1)) == 0.0                        # hull 0 -> 0, as in TVQA+
