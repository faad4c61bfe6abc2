"""Dropout with a cheaper mask on CPU, and dropout fused with the residual sum that follows it.

torch's CPU dropout draws one Bernoulli sample per element (a scalar generator call each); here the mask comes
from 16 random bits per element, drawn 64 at a time from the same (default) generator, so it is about twice as
fast forward and backward together and stays a function of the seed (exact resume holds). The drop probability is
``p`` rounded to a multiple of 1/65536 (0.1 -> 0.100006). Other devices use torch's own fused kernel.

Applying the mask is one pass each way: the keep-mask is written as 0.0 / 1.0 in the compute dtype (by the
comparison itself, which is faster than writing bools), and ``addcmul`` writes ``value * scale * keep`` (plus the
residual, in `residual_dropout`: a transformer layer's ``x + dropout(f(x))``): the same floats as a multiply, a
masked fill and an add, in one pass instead of three. (A boolean mask would cost a cast to float in each
``addcmul``; the float mask takes 4 bytes per element of saved activations instead of 1.)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

_LEVELS = 1 << 16


def _keep_mask(shape: torch.Size, p: float, device: torch.device, dtype: torch.dtype) -> Tensor:
    """Mask of ``shape`` in ``dtype``: 0 (drop) with probability round(p * 65536) / 65536, else 1."""
    n = shape.numel()
    bits = torch.empty((n + 3) // 4, dtype=torch.int64, device=device).random_(-(1 << 63), (1 << 63) - 1)
    threshold = round(p * _LEVELS) - _LEVELS // 2          # int16 values are uniform on [-32768, 32767]
    keep = torch.empty(shape, dtype=dtype, device=device)
    return torch.ge(bits.view(torch.int16)[:n].view(shape), threshold, out=keep)


def _masked_scale(x: Tensor, keep: Tensor, scale: float, residual: Tensor | None = None) -> Tensor:
    """``residual + x * scale * keep`` (residual None: 0) in one pass; ``keep`` is 0 / 1 in the result's dtype."""
    return torch.addcmul(x.new_zeros(()) if residual is None else residual, x, keep, value=scale)


class _MaskedScale(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, keep: Tensor, scale: float) -> Tensor:
        ctx.save_for_backward(keep)
        ctx.scale = scale
        return _masked_scale(x, keep, scale)

    @staticmethod
    def backward(ctx, grad: Tensor):
        (keep,) = ctx.saved_tensors
        return _masked_scale(grad, keep, ctx.scale), None, None


class _ResidualMaskedScale(torch.autograd.Function):
    @staticmethod
    def forward(ctx, residual: Tensor, x: Tensor, keep: Tensor, scale: float) -> Tensor:
        ctx.save_for_backward(keep)
        ctx.scale = scale
        return _masked_scale(x, keep, scale, residual)

    @staticmethod
    def backward(ctx, grad: Tensor):
        (keep,) = ctx.saved_tensors
        return grad, _masked_scale(grad, keep, ctx.scale), None, None


def _cheap(x: Tensor, p: float, training: bool) -> bool:
    return training and 0.0 < p < 1.0 and x.device.type == "cpu"


def dropout(x: Tensor, p: float, training: bool) -> Tensor:
    """Inverted dropout (kept values scaled by 1 / (1 - p)), as `torch.nn.functional.dropout`."""
    if not _cheap(x, p, training):
        return F.dropout(x, p, training) if training and p > 0.0 else x
    return _MaskedScale.apply(x, _keep_mask(x.shape, p, x.device, x.dtype), 1.0 / (1.0 - p))


def residual_dropout(residual: Tensor, x: Tensor, p: float, training: bool) -> Tensor:
    """``residual + dropout(x, p, training)`` with the mask applied and the sum taken in one pass (same shapes)."""
    if not _cheap(x, p, training) or residual.shape != x.shape:
        return residual + dropout(x, p, training)
    keep = _keep_mask(x.shape, p, x.device, torch.promote_types(residual.dtype, x.dtype))
    return _ResidualMaskedScale.apply(residual, x, keep, 1.0 / (1.0 - p))


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

    def residual(self, residual: Tensor, x: Tensor) -> Tensor:
        """``residual + self(x)``; on the cheap path in one pass (`residual_dropout`)."""
        if not self.cheap_mask:
            return residual + F.dropout(x, self.p, self.training)
        return residual_dropout(residual, x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"
