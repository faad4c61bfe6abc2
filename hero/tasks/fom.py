"""Frame order modelling: classify the original position of shuffled frames (docs/hero-fidelity.md b.4)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hero.data.batch import VideoBatch
from hero.data.masking import shuffle_frames
from hero.model.config import ModelConfig
from hero.model.linear import Linear
from hero.tasks.base import TaskOutput
from hero.tasks.config import PretrainConfig


class FomHead(nn.Module):
    """Linear(D, 2D) -> GELU -> LayerNorm -> Linear(2D, max_frames): one position class per frame slot."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.fc1 = Linear(cfg.hidden_size, 2 * cfg.hidden_size)
        self.norm = nn.LayerNorm(2 * cfg.hidden_size, eps=cfg.embedding_norm_eps)
        self.fc2 = Linear(2 * cfg.hidden_size, cfg.max_frames)

    def forward(self, states: Tensor) -> Tensor:
        return self.fc2(self.norm(F.gelu(self.fc1(states))))


def fom_loss(logits: Tensor, targets: Tensor) -> Tensor:
    """logits: [N, C]; targets: [N] original index, -1 = not shuffled (ignored)."""
    return F.cross_entropy(logits.float(), targets, ignore_index=-1)


@dataclass(frozen=True)
class FomInputs:
    batch: VideoBatch
    permutation: Tensor  # [B, T] slot p holds frame permutation[p]
    targets: Tensor      # [B, T] original index at shuffled slots, -1 elsewhere


class Fom:
    name = "fom"
    head = "fom"
    head_cls = FomHead

    def __init__(self, cfg: PretrainConfig) -> None:
        self.prob = cfg.fom_prob

    def prepare(self, batch: VideoBatch, generator: torch.Generator, step: int) -> FomInputs:
        perm, targets = shuffle_frames(batch.frame_mask, prob=self.prob, generator=generator)
        return FomInputs(batch=batch, permutation=perm, targets=targets)

    def __call__(self, encoder, head: FomHead, inputs: FomInputs) -> TaskOutput:
        out = encoder(inputs.batch, frame_permutation=inputs.permutation)
        where = inputs.targets >= 0
        logits = head(out.frame_states[where])                    # [N, max_frames]
        targets = inputs.targets[where]
        loss = fom_loss(logits, targets)
        acc = (logits.argmax(-1) == targets).float().mean()
        return TaskOutput(loss=loss, metrics={"fom/loss": loss.detach(), "fom/acc": acc.detach()}, count=int(where.sum()))
