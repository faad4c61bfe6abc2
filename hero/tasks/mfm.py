"""Masked frame modelling: feature regression (MFFR) and noise-contrastive estimation (MFM-NCE)
(docs/hero-fidelity.md b.2)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hero.data.batch import VideoBatch
from hero.data.masking import mask_frames
from hero.model.config import ModelConfig
from hero.model.linear import Linear, compute_dtype, pad_rows, padded_rows
from hero.tasks.base import TaskOutput
from hero.tasks.config import PretrainConfig


class MfmHead(nn.Module):
    """Linear(D, D) -> GELU -> LayerNorm -> Linear(D, Df): frame state -> predicted clip feature."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.fc1 = Linear(cfg.hidden_size, cfg.hidden_size)
        self.norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.embedding_norm_eps)
        self.fc2 = Linear(cfg.hidden_size, cfg.feature_dim)
        self.reference_path = False
        """True: MFM-NCE maps its negatives to feature space and scores them there (the benchmark's reference)."""

    def hidden(self, states: Tensor) -> Tensor:
        """The head up to its last layer: [N, D] -> [N, D]."""
        return self.norm(F.gelu(self.fc1(states)))

    def forward(self, states: Tensor) -> Tensor:
        return self.fc2(self.hidden(states))

    def score(self, pred: Tensor, states: Tensor) -> Tensor:
        """``pred @ self(states).t()``: [Nm, Df] predictions against the head's outputs at [Nn, D] states, as
        ``(pred @ W) @ hidden(states).t() + pred @ b`` (W, b: the last layer's): the same sum in another order,
        without mapping the Nn states to the Df-wide feature space (Df = 4352 against D = 256)."""
        if self.reference_path:
            return pred @ self(states).t()
        w, b = self.fc2.weight, self.fc2.bias
        # pred @ W as a product with W itself (not `linear(pred, W.t())`: the gradient of a transposed weight view
        # comes back transposed, and adding it to fc2's other gradient was a strided add, ~11 ms per MFM step);
        # rows zero-padded to a bucket size where the CPU builds bf16 kernels per shape (`hero.model.linear`)
        n = pred.shape[0]
        pw = torch.mm(pad_rows(pred, padded_rows(n, pred.device, compute_dtype(pred))), w)[:n]
        return torch.addmm((pred @ b)[:, None], pw, self.hidden(states).t())


def mffr_loss(pred: Tensor, target: Tensor) -> Tensor:
    """Mean over masked frames of the L2 distance between predicted and true feature. [N, Df] each."""
    return (pred.float() - target.float()).pow(2).sum(-1).sqrt().mean()


def mfm_nce_loss(pred: Tensor, target: Tensor, negatives: Tensor | None = None, temperature: float = 1.0, *,
                 negative_scores: Tensor | None = None) -> Tensor:
    """NCE: each prediction must score its own true feature above the other masked frames' features and
    the predictions at unmasked positions.

    pred, target: [Nm, Df]; negatives: [Nn, Df], or their scores ``pred @ negatives.t()`` [Nm, Nn]
    """
    if (negatives is None) == (negative_scores is None):
        raise ValueError("mfm_nce_loss: give negatives or negative_scores, not both")
    neg = pred @ negatives.t() if negative_scores is None else negative_scores
    logits = torch.cat([pred @ target.t(), neg], dim=1).float() / temperature   # [Nm, Nm + Nn]
    return F.cross_entropy(logits, torch.arange(pred.shape[0], device=pred.device))


@dataclass(frozen=True)
class MfmInputs:
    batch: VideoBatch
    masked: Tensor  # [B, T] bool


class _Mfm:
    head = "mfm"
    head_cls = MfmHead

    def __init__(self, cfg: PretrainConfig) -> None:
        self.prob = cfg.mask_prob
        self.temperature = cfg.nce_temperature
        self.padded_negatives = cfg.nce_padded_negatives

    def prepare(self, batch: VideoBatch, generator: torch.Generator, step: int) -> MfmInputs:
        return MfmInputs(batch=batch, masked=mask_frames(batch.frame_mask, prob=self.prob, generator=generator))

    def _predict(self, encoder, head: MfmHead, inputs: MfmInputs) -> tuple[Tensor, Tensor, Tensor]:
        out = encoder(inputs.batch, frame_masked=inputs.masked)
        return out.frame_states, head(out.frame_states[inputs.masked]), inputs.batch.frame_feats[inputs.masked]


class MfmNce(_Mfm):
    name = "mfm_nce"

    def __call__(self, encoder, head: MfmHead, inputs: MfmInputs) -> TaskOutput:
        states, pred, target = self._predict(encoder, head, inputs)
        keep = ~inputs.masked if self.padded_negatives else (inputs.batch.frame_mask & ~inputs.masked)
        loss = mfm_nce_loss(pred, target, temperature=self.temperature, negative_scores=head.score(pred, states[keep]))
        return TaskOutput(loss=loss, metrics={"mfm_nce/loss": loss.detach()}, count=pred.shape[0])


class Mffr(_Mfm):
    name = "mffr"

    def __call__(self, encoder, head: MfmHead, inputs: MfmInputs) -> TaskOutput:
        _, pred, target = self._predict(encoder, head, inputs)
        loss = mffr_loss(pred, target)
        return TaskOutput(loss=loss, metrics={"mffr/loss": loss.detach()}, count=pred.shape[0])
