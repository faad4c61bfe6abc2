"""Accuracy for video QA (TVQA / How2QA) and VIOLIN, plus temporal localisation for QA.

- QA accuracy: the share of GT questions whose predicted ``answer_idx`` equals the label. From logits, the
  prediction is the argmax, ties going to the lowest answer index (``torch.argmax``'s documented rule).
- VIOLIN accuracy: predicted label = 1 when the logit is > 0 (sigmoid > 0.5; exactly 0.5 -> 0, HERO's threshold).
- Localisation (QA predictions that carry a span, GT with a span): ``loc_miou`` = mean temporal IoU over those
  questions (a question without a predicted span counts IoU 0), ``loc_r1_iou{t}`` = share with IoU >= t, and
  ``loc_joint_iou{t}`` = share both answered right and localised (TVQA+'s joint answer-span accuracy). IoU is the
  TVR evaluator's (float32, exact at a threshold).
A GT question without a prediction counts as wrong; predictions for unknown ids are ignored (logged). Values are
percentages.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
from torch import Tensor

from hero.eval.formats.annotations import QaAnnotation, ViolinAnnotation
from hero.eval.formats.lines import QaAnswer, ViolinLabel
from hero.eval.moment_metrics import temporal_iou

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


def _warn(task: str, missing: int, total: int, extra: int) -> None:
    if missing or extra:
        log.warning("%s: %d of %d questions have no prediction (counted wrong); %d predictions are not in the "
                    "ground truth (ignored)", task, missing, total, extra)


def qa_metrics(answers: Sequence[QaAnswer], ground_truth: Sequence[QaAnnotation],
               iou_thresholds: Sequence[float] = (0.5,)) -> dict[str, float]:
    """``acc`` and, when any prediction carries a span, ``loc_miou``, ``loc_r1_iou{t}``, ``loc_joint_iou{t}``."""
    if not ground_truth:
        raise ValueError("no ground-truth questions")
    by_id = {str(a.qid): a for a in answers}
    correct = np.array([(a := by_id.get(str(g.qid))) is not None and a.answer_idx == g.answer_idx
                        for g in ground_truth])
    missing = sum(str(g.qid) not in by_id for g in ground_truth)
    _warn("qa", missing, len(ground_truth), len(set(by_id) - {str(g.qid) for g in ground_truth}))
    out = {"acc": 100.0 * float(correct.mean())}
    if not any(a.ts is not None for a in answers):
        return out
    located = [(i, g) for i, g in enumerate(ground_truth) if g.ts is not None]
    if not located:
        log.warning("qa: predictions carry spans but the ground truth has none; no localisation metrics")
        return out
    ious = np.zeros(len(located), dtype=np.float32)
    for j, (_, g) in enumerate(located):
        a = by_id.get(str(g.qid))
        if a is not None and a.ts is not None:
            ious[j] = temporal_iou(np.array([a.ts]), g.ts)[0]
    right = correct[[i for i, _ in located]]
    out["loc_miou"] = 100.0 * float(ious.mean())
    for t in iou_thresholds:
        hit = ious >= np.float32(t)
        out[f"loc_r1_iou{t:g}"] = 100.0 * float(hit.mean())
        out[f"loc_joint_iou{t:g}"] = 100.0 * float((hit & right).mean())
    return out


def violin_metrics(labels: Sequence[ViolinLabel], ground_truth: Sequence[ViolinAnnotation]) -> dict[str, float]:
    """``acc``: share of GT statements whose predicted label matches."""
    if not ground_truth:
        raise ValueError("no ground-truth statements")
    by_id = {str(x.desc_id): x.label for x in labels}
    correct = [by_id.get(str(g.desc_id)) == g.label for g in ground_truth]
    missing = sum(str(g.desc_id) not in by_id for g in ground_truth)
    _warn("violin", missing, len(ground_truth), len(set(by_id) - {str(g.desc_id) for g in ground_truth}))
    return {"acc": 100.0 * float(np.mean(correct))}


__all__ = ["accuracy_from_logits", "binary_accuracy_from_logits", "qa_metrics", "violin_metrics"]
