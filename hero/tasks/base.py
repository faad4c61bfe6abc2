"""What every task returns, and the `Objective` contract of the pretraining objectives."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import torch
from torch import Tensor, nn

from hero.data.batch import VideoBatch

if TYPE_CHECKING:
    from hero.model.hero import Hero


@dataclass
class TaskOutput:
    """loss: scalar to backpropagate; metrics: detached scalars named ``<task>/<metric>``; count: examples scored
    (0: the batch had nothing this task applies to, and ``loss`` is a zero that still reaches the head, so every
    rank's backward matches under DDP); counters: event counts named ``<task>/<event>`` that the trainer sums
    over micro-batches, steps and ranks instead of averaging (e.g. ``mlm/skipped_videos``)."""

    loss: Tensor
    metrics: dict[str, Tensor] = field(default_factory=dict)
    count: int = 1
    counters: dict[str, int] = field(default_factory=dict)


class Objective(Protocol):
    """A pretraining objective: prepares its inputs (masking etc.) and computes its loss from the encoder and its
    own head. ``head`` names the head (objectives may share one: MFM-NCE and MFFR use ``mfm``) and ``head_cls``
    builds it from the model config (a class, or a callable that binds the objective's own config: the decoder's);
    `PretrainModel` holds it as ``heads.<head>`` (the checkpoint layout)."""

    name: str
    head: str
    head_cls: type[nn.Module]

    def prepare(self, batch: VideoBatch, generator: torch.Generator, step: int) -> Any:
        """Objective inputs from a plain batch (CPU tensors; seeded by ``generator``)."""
        ...

    def __call__(self, encoder: "Hero", head: nn.Module, inputs: Any) -> TaskOutput:
        ...


def nothing_to_score(head: nn.Module) -> Tensor:
    """The loss of a batch an objective does not apply to (e.g. MLM on videos without subtitles): zero, yet
    connected to one parameter of ``head``, so backward() runs on every rank as DDP needs; that gradient is 0."""
    return next(head.parameters()).sum() * 0.0
