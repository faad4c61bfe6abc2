"""Linear layers whose row count is rounded up to a few sizes where the CPU builds a matmul kernel per shape.

On the CPU, torch runs bf16 and fp16 matrix products through oneDNN, which builds (JIT-compiles) a kernel for
each new problem shape and keeps it in a cache. In a training step the row count of nearly every product changes
with the batch (the packed cross-modal level's valid positions, the masked tokens, the frames per video), so
nearly every bf16 product pays that build: a [~840, 256] x [256, 1024] product took 5.8 ms at 1 thread with a new
row count each call against 0.53 ms with row counts rounded to a multiple of 64 (docs/performance.md). Here the
rows are zero-padded up to one of 8 sizes per power of two (at most 1/8 more rows; `bucket`), the product runs on
the padded rows, and the padding rows are sliced off (a contiguous view). The backward products then have
bucketed shapes too (the weight gradient reduces over the padded rows, whose gradient is zero).

fp32 products on the CPU (MKL: no per-shape build) and every product on other devices run unpadded.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

_MIN_STEP = 16


def bucket(rows: int) -> int:
    """``rows`` rounded up to a multiple of max(16, 2^(k - 4)) where 2^(k-1) <= rows < 2^k: 8 sizes per power
    of two, so at most 1/8 more rows."""
    step = max(_MIN_STEP, 1 << max(rows.bit_length() - 4, 0))
    return -(-rows // step) * step


def compute_dtype(x: Tensor) -> torch.dtype:
    """The dtype a product of ``x`` runs in: autocast's where it is on for x's device, else x's own."""
    device = x.device.type
    return torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else x.dtype


def _built_per_shape(device: torch.device, dtype: torch.dtype) -> bool:
    """Whether products in ``dtype`` on ``device`` get a kernel built per shape: CPU bf16 / fp16 (oneDNN)."""
    return device.type == "cpu" and dtype in (torch.bfloat16, torch.float16)


def padded_rows(rows: int, device: torch.device, dtype: torch.dtype) -> int:
    """The row count a product of ``rows`` rows runs at: `bucket` size for CPU bf16 / fp16, else ``rows``."""
    return bucket(rows) if rows and _built_per_shape(device, dtype) else rows


def kernels_built_per_shape(x: Tensor) -> bool:
    """Whether a product of ``x`` would run as a CPU bf16 / fp16 matmul (autocast's dtype, or x's own)."""
    return _built_per_shape(x.device, compute_dtype(x))


def cast_param(w: Tensor, dtype: torch.dtype) -> Tensor:
    """``w.detach().to(dtype)``, kept per parameter until the parameter changes (an optimizer step or a load bumps
    its version counter): under autocast torch casts a weight once per forward region; a product run outside it
    (`_PaddedLinear`, `norm_project`, the tied decoder) would cast it at every call, and HERO calls some layers
    several times a step (the cross-modal layers for the video and for VSM's queries, MFM's head for masked and
    unmasked frames). A view of a parameter (a slice of the fused QKV weight) is the same view of the parameter's
    cast. When the parameter changes, its copy is refreshed in place (the word table's is 25 MB in bf16: a fresh
    allocation per step would be page-faulted in each time); a graph that saved the old copy and runs its
    backward after that fails on the version check instead of reading the new values."""
    if w.dtype == dtype:
        return w.detach()
    base = w if w._base is None else w._base
    if not isinstance(base, nn.Parameter) or not base.is_contiguous():
        return w.detach().to(dtype)
    key = (base._version, base.data_ptr(), dtype)
    entry = getattr(base, "_hero_cast", None)                # kept on the parameter: it lives and dies with it
    if entry is None or entry[0] != key:
        old = None if entry is None else entry[1]
        if old is not None and old.dtype == dtype and old.shape == base.shape and old.device == base.device:
            cast = old.copy_(base.detach())
        else:
            cast = base.detach().to(dtype)
        entry = base._hero_cast = (key, cast)
    cast = entry[1]
    if base is w:
        return cast
    return cast.as_strided(w.size(), w.stride(), w.storage_offset() - base.storage_offset())


def pad_rows(x: Tensor, rows: int, dtype: torch.dtype | None = None) -> Tensor:
    """x: [n, ...] -> [rows, ...] (rows >= n) in ``dtype`` (default x's), zeros after row n: written once, the
    data then the tail (`F.pad` zero-fills the whole tensor first). x itself when nothing changes."""
    dtype = x.dtype if dtype is None else dtype
    if rows == x.shape[0]:
        return x.to(dtype)
    out = torch.empty((rows, *x.shape[1:]), dtype=dtype, device=x.device)
    out[:x.shape[0]].copy_(x)
    out[x.shape[0]:].zero_()
    return out


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None, *, buckets: bool = True) -> Tensor:
    """``F.linear(x, weight, bias)``; with ``buckets`` and a CPU bf16 / fp16 product, computed on the rows of x
    (all dimensions but the last, flattened) zero-padded to `bucket` size and sliced back (`_PaddedLinear`)."""
    if not buckets or x.dim() < 2:
        return F.linear(x, weight, bias)
    rows, dtype = x.numel() // x.shape[-1] if x.shape[-1] else 0, compute_dtype(x)
    padded = padded_rows(rows, x.device, dtype)
    if padded == rows:
        return F.linear(x, weight, bias)
    with torch.autocast("cpu", enabled=False):
        y = _PaddedLinear.apply(x.reshape(rows, x.shape[-1]), weight, bias, padded, dtype)
    return y.view(*x.shape[:-1], weight.shape[0])


class _PaddedLinear(torch.autograd.Function):
    """``F.linear`` in ``dtype`` (autocast's casts made here) on x's rows padded to ``padded`` with zeros: the
    padded copies are written once (data, then a zeroed tail) in both directions, and the input gradient is a
    contiguous view of the padded product, where padding through autograd (`F.pad`, a slice) zero-fills whole
    tensors and copies them again in the backward."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor | None, padded: int, dtype: torch.dtype) -> Tensor:
        m = x.shape[0]
        xp = pad_rows(x, padded, dtype)
        w = cast_param(weight, dtype)
        y = xp @ w.t() if bias is None else torch.addmm(cast_param(bias, dtype), xp, w.t())
        ctx.save_for_backward(xp, w)
        ctx.m, ctx.dtypes = m, (x.dtype, weight.dtype, None if bias is None else bias.dtype)
        return y[:m]

    @staticmethod
    def backward(ctx, grad: Tensor):
        xp, w = ctx.saved_tensors
        x_dtype, w_dtype, b_dtype = ctx.dtypes
        gp = pad_rows(grad, xp.shape[0], xp.dtype)
        grad_x = (gp @ w)[:ctx.m].to(x_dtype) if ctx.needs_input_grad[0] else None
        grad_w = (gp.t() @ xp).to(w_dtype) if ctx.needs_input_grad[1] else None
        grad_b = gp[:ctx.m].sum(0).to(b_dtype) if b_dtype is not None and ctx.needs_input_grad[2] else None
        return grad_x, grad_w, grad_b, None, None


class Linear(nn.Linear):
    """`nn.Linear` (same parameters, same state_dict) computed through `linear`: bucketed row counts for CPU bf16
    / fp16 products. ``bucket_rows = False`` is the benchmark's reference path (`hero.model.use_reference_path`)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, **kwargs) -> None:
        super().__init__(in_features, out_features, bias, **kwargs)
        self.bucket_rows = True

    def forward(self, x: Tensor) -> Tensor:
        return linear(x, self.weight, self.bias, buckets=self.bucket_rows)
