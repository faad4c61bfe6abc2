"""Dropout with a cheaper mask on CPU.

torch's CPU dropout draws one Bernoulli sample per element (a scalar generator call each); here the mask comes
from 16 random bits per element, drawn 64 at a time from the same (default) generator, so it is about twice as
fast forward and backward together and stays a function of the seed (exact resume holds). The drop probability is
``p`` rounded to a multiple of 1/65536 (0.1 -> 0.100006). Other devices use torch's own fused kernel.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

_LEVELS = 1 << 16


def _drop_mask(shape: torch.Size, p: float, device: torch.device) -> Tensor:
    """Bool mask of ``shape``: True (drop) with probability round(p * 65536) / 65536."""
    n = shape.numel()
    bits = torch.empty((n + 3) // 4, dtype=torch.int64, device=device).random_(-(1 << 63), (1 << 63) - 1)
    threshold = round(p * _LEVELS) - _LEVELS // 2          # int16 values are uniform on [-32768, 32767]
    return (bits.view(torch.int16)[:n] < threshold).view(shape)


class _MaskedScale(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, drop: Tensor, scale: float) -> Tensor:
        ctx.save_for_backward(drop)
        ctx.scale = scale
        return x.mul(scale).masked_fill_(drop, 0)

    @staticmethod
    def backward(ctx, grad: Tensor):
        (drop,) = ctx.saved_tensors
        return grad.mul(ctx.scale).masked_fill_(drop, 0), None, None


def dropout(x: Tensor, p: float, training: bool) -> Tensor:
    """Inverted dropout (kept values scaled by 1 / (1 - p)), as `torch.nn.functional.dropout`."""
    if not training or p == 0.0:
        return x
    if x.device.type != "cpu" or p >= 1.0:
        return F.dropout(x, p, training)
    return _MaskedScale.apply(x, _drop_mask(x.shape, p, x.device), 1.0 / (1.0 - p))


class Dropout(nn.Module):
    """`torch.nn.Dropout` with the cheaper CPU mask (no state: checkpoints are unchanged)."""

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability must be in [0, 1], got {p}")
        self.p = p
        self.cheap_mask = True
        """False: torch's own kernel (the reference path of the benchmark)."""

    def forward(self, x: Tensor) -> Tensor:
        if not self.cheap_mask:
            return F.dropout(x, self.p, self.training)
        return dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"
