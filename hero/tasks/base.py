"""What every task returns, and the `Objective` contract of the pretraining objectives."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import torch
from torch import Tensor

from hero.data.batch import VideoBatch

if TYPE_CHECKING:
    from hero.tasks.pretrain import PretrainModel


@dataclass
class TaskOutput:
    """loss: scalar to backpropagate; metrics: detached scalars named ``<task>/<metric>``; count: examples scored."""

    loss: Tensor
    metrics: dict[str, Tensor] = field(default_factory=dict)
    count: int = 1


class Objective(Protocol):
    """A pretraining objective: prepares its inputs (masking etc.) and computes its loss with the model's heads."""

    name: str

    def prepare(self, batch: VideoBatch, generator: torch.Generator, step: int) -> Any:
        """Objective inputs from a plain batch (CPU tensors; seeded by ``generator``)."""
        ...

    def __call__(self, model: "PretrainModel", inputs: Any) -> TaskOutput:
        ...
