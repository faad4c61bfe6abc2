"""Accuracy for video QA (TVQA / How2QA) and VIOLIN, plus temporal localisation for QA.

- QA accuracy: the share of GT questions whose predicted ``answer_idx`` equals the label. From logits, the
  prediction is the argmax, ties going to the lowest answer index (``torch.argmax``'s documented rule).
- VIOLIN accuracy: predicted label = 1 when the logit is > 0 (sigmoid > 0.5; exactly 0.5 -> 0, HERO's threshold).
- Localisation (QA predictions that carry a span, GT with a span): ``loc_miou`` = mean temporal IoU over those
  questions (a question without a predicted span counts IoU 0), ``loc_r1_iou{t}`` = share with IoU >= t, and
  ``loc_joint_iou{t}`` = share both answered right and localised (TVQA+'s joint answer-span accuracy). IoU is the
  TVQA+ evaluator's (``compute_temporal_iou`` in its eval_tvqa_plus.py): intersection / (max end - min start), 0
  when that is 0, in float64 (Python floats) and compared with the threshold in float64, so a span placed exactly
  at a threshold counts as the TVQA+ evaluator counts it.
A GT question without a prediction counts as wrong; predictions for unknown ids are ignored (logged). Values are
percentages.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np
from torch import Tensor

from hero.metrics.formats.annotations import QaAnnotation, ViolinAnnotation
from hero.metrics.formats.lines import QaAnswer, ViolinLabel

log = logging.getLogger(__name__)


def accuracy_from_logits(logits: Tensor, labels: Tensor) -> float:
    """logits: [N, C]; labels: [N] -> accuracy in percent (argmax, ties to the lowest index)."""
    if logits.shape[0] == 0:
        raise ValueError("no examples")
    return 100.0 * (logits.argmax(dim=-1) == labels.view(-1)).double().mean().item()


def binary_accuracy_from_logits(logits: Tensor, labels: Tensor) -> float:
    """VIOLIN. logits: [N] (pre-sigmoid); labels: [N] in {0, 1} -> accuracy in percent (predict 1 iff logit > 0)."""
    if logits.numel() == 0:
        raise ValueError("no examples")
    return 100.0 * ((logits.view(-1) > 0).long() == labels.view(-1).long()).double().mean().item()


def tvqa_plus_iou(pred: Sequence[float], gt: Sequence[float]) -> float:
    """TVQA+'s temporal IoU of two (st, ed) spans, in float64: intersection / (max end - min start), 0 when the
    latter is 0. (The denominator is the spans' hull, which equals their union whenever they overlap; when they
    do not, the intersection is 0 either way.)"""
    p0, p1, g0, g1 = float(pred[0]), float(pred[1]), float(gt[0]), float(gt[1])
    inter = max(0.0, min(p1, g1) - max(p0, g0))
    hull = max(p1, g1) - min(p0, g0)
    return 0.0 if hull == 0 else inter / hull


def _warn(task: str, missing: int, total: int, extra: int) -> None:
    if missing or extra:
        log.warning("%s: %d of %d questions have no prediction (counted wrong); %d predictions are not in the "
                    "ground truth (ignored)", task, missing, total, extra)


def _qa_correct(by_id: Mapping[str, QaAnswer], ground_truth: Sequence[QaAnnotation]) -> np.ndarray:
    """[Nq] bool: the question's predicted answer is its label (no prediction: wrong). Logs missing / extra ids."""
    correct = np.array([(a := by_id.get(str(g.qid))) is not None and a.answer_idx == g.answer_idx
                        for g in ground_truth])
    missing = sum(str(g.qid) not in by_id for g in ground_truth)
    _warn("qa", missing, len(ground_truth), len(set(by_id) - {str(g.qid) for g in ground_truth}))
    return correct


def qa_metrics(answers: Sequence[QaAnswer], ground_truth: Sequence[QaAnnotation],
               iou_thresholds: Sequence[float] = (0.5,)) -> dict[str, float]:
    """``acc`` and, when any prediction carries a span, ``loc_miou``, ``loc_r1_iou{t}``, ``loc_joint_iou{t}``."""
    if not ground_truth:
        raise ValueError("no ground-truth questions")
    by_id = {str(a.qid): a for a in answers}
    correct = _qa_correct(by_id, ground_truth)
    out = {"acc": 100.0 * float(correct.mean())}
    if not any(a.ts is not None for a in answers):
        return out
    located = [(i, g) for i, g in enumerate(ground_truth) if g.ts is not None]
    if not located:
        log.warning("qa: predictions carry spans but the ground truth has none; no localisation metrics")
        return out
    ious = np.zeros(len(located), dtype=np.float64)
    for j, (_, g) in enumerate(located):
        a = by_id.get(str(g.qid))
        if a is not None and a.ts is not None:
            ious[j] = tvqa_plus_iou(a.ts, g.ts)
    right = correct[[i for i, _ in located]]
    out["loc_miou"] = 100.0 * float(ious.mean())
    for t in iou_thresholds:
        hit = ious >= float(t)
        out[f"loc_r1_iou{t:g}"] = 100.0 * float(hit.mean())
        out[f"loc_joint_iou{t:g}"] = 100.0 * float((hit & right).mean())
    return out


def per_question_qa(answers: Sequence[QaAnswer], ground_truth: Sequence[QaAnnotation]) -> dict[str, dict[str, float]]:
    """The per-question values behind `qa_metrics`' ``acc``: ``{"acc": {str(qid): 100.0 | 0.0}}`` in ground-truth
    order (no prediction: 0.0); its mean is ``acc``."""
    if not ground_truth:
        raise ValueError("no ground-truth questions")
    correct = _qa_correct({str(a.qid): a for a in answers}, ground_truth)
    return {"acc": {str(g.qid): 100.0 * float(c) for g, c in zip(ground_truth, correct)}}


def _violin_correct(labels: Sequence[ViolinLabel], ground_truth: Sequence[ViolinAnnotation]) -> np.ndarray:
    """[Ns] bool: the statement's predicted label matches (no prediction: wrong). Logs missing / extra ids."""
    if not ground_truth:
        raise ValueError("no ground-truth statements")
    by_id = {str(x.desc_id): x.label for x in labels}
    correct = np.array([by_id.get(str(g.desc_id)) == g.label for g in ground_truth])
    missing = sum(str(g.desc_id) not in by_id for g in ground_truth)
    _warn("violin", missing, len(ground_truth), len(set(by_id) - {str(g.desc_id) for g in ground_truth}))
    return correct


def violin_metrics(labels: Sequence[ViolinLabel], ground_truth: Sequence[ViolinAnnotation]) -> dict[str, float]:
    """``acc``: share of GT statements whose predicted label matches."""
    return {"acc": 100.0 * float(np.mean(_violin_correct(labels, ground_truth)))}


def per_statement_violin(labels: Sequence[ViolinLabel],
                         ground_truth: Sequence[ViolinAnnotation]) -> dict[str, dict[str, float]]:
    """The per-statement values behind `violin_metrics`: ``{"acc": {str(desc_id): 100.0 | 0.0}}`` in ground-truth
    order; its mean is ``acc``."""
    correct = _violin_correct(labels, ground_truth)
    return {"acc": {str(g.desc_id): 100.0 * float(c) for g, c in zip(ground_truth, correct)}}


__all__ = ["accuracy_from_logits", "binary_accuracy_from_logits", "per_question_qa", "per_statement_violin",
           "qa_metrics", "tvqa_plus_iou", "violin_metrics"]
