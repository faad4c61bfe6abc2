"""VIOLIN labels are decided on the logit, by the scorer's rule: no disagreement where sigmoid rounds to 0.5."""

import torch

from hero.metrics.qa import binary_accuracy_from_logits
from hero.tasks.video_inference import violin_labels


def test_labels_follow_the_scorers_rule_at_tiny_logits():
    logits = torch.tensor([0.0, 1e-9, -1e-9, 2e-8, 3.0, -3.0])
    assert torch.sigmoid(logits[1]) == 0.5  # where a sigmoid >= 0.5 rule would call 1e-9 and 0.0 alike
    labels = violin_labels(logits)
    assert labels.tolist() == [0, 1, 0, 1, 1, 0]
    assert binary_accuracy_from_logits(logits, labels) == 100.0


def test_other_thresholds_are_a_logit_offset():
    logits = torch.tensor([0.0, 1.0, 1.2, 2.0])  # logit(0.75) = ln 3 = 1.0986
    assert violin_labels(logits, 0.75).tolist() == [0, 0, 1, 1]
