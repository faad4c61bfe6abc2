"""Self-attention over packed positions on the CPU, with its own backward.

The packed form of an `Encoder` layer (`hero.model.transformer`) projects queries, keys and values on the valid
positions only ([P, 3D]); the attention itself needs the padded [B, L] layout. Through `F.scaled_dot_product_attention`
that costs a chain of copies each way: the projections scattered into a zero [B, L, 3D], heads split by a permute
that its math path copies into contiguous [B*h, L, hd] operands (three copies, plus three casts to fp32 under bf16),
scaled queries and keys, a boolean mask turned into a float one, the output transposed back and gathered; and in
the backward their mirror images (a stack of the three head gradients, a copy to undo the permute, a scatter).

Here one scatter writes the packed projections straight into head-major [3, B*h, L, hd] operands, one product
computes the masked, scaled scores (``baddbmm`` onto the key bias), and one gather reads the outputs back to the
packed rows; the backward writes the query, key and value gradients into one [3, B*h, L, hd] buffer and gathers
them once. Attention-probability dropout uses the cheap CPU mask (`hero.model.dropout`). The math is the one of
torch's math path: scores, softmax, dropout and products in fp32 for fp32 inputs, and also for bf16 / fp16 inputs
(as that path computes them on the CPU), so the result is the same up to float rounding.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from hero.model.dropout import _keep_mask, _masked_scale


def key_bias(mask: Tensor, dtype: torch.dtype) -> Tensor:
    """[B, 1, 1, L] from `hero.model.transformer.attention_mask` (bool: -inf where masked; float: itself) in dtype."""
    if mask.dtype == torch.bool:
        return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill_(~mask, float("-inf"))
    return mask.to(dtype)


# torch's CPU softmax (forward and backward) takes a slow path over rows shorter than its vector width: at 1
# thread, a [1152, 14, 14] softmax took 4.1 ms against 0.65 ms as max / subtract / exp / sum / divide (backward
# 1.7 against 0.57 ms); from 16 up torch's own kernel is the faster. HERO's cross-modal sequences (a subtitle's
# frames and tokens) are often that short.
_SHORT_ROWS = 16


def _softmax_(scores: Tensor) -> Tensor:
    """softmax over the last dim, in place for rows shorter than `_SHORT_ROWS` (else torch's, a new tensor)."""
    if scores.shape[-1] >= _SHORT_ROWS:
        return scores.softmax(-1)
    scores.sub_(scores.amax(-1, keepdim=True)).exp_()
    return scores.div_(scores.sum(-1, keepdim=True))


def _softmax_backward_(grad: Tensor, probs: Tensor) -> Tensor:
    """The gradient of the scores from that of ``probs = softmax(scores)``; in place on ``grad`` for short rows."""
    if probs.shape[-1] >= _SHORT_ROWS:
        return torch._softmax_backward_data(grad, probs, -1, probs.dtype)
    return grad.sub_((grad * probs).sum(-1, keepdim=True)).mul_(probs)


class _PackedAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, qkv: Tensor, bias: Tensor, rows: Tensor, cols: Tensor, out_rows: Tensor, out_cols: Tensor,
                heads: int, p: float) -> Tensor:
        P, D3 = qkv.shape
        B, L = bias.shape[0], bias.shape[-1]
        D = D3 // 3
        hd = D // heads
        dtype = torch.float32 if qkv.dtype in (torch.bfloat16, torch.float16) else qkv.dtype
        buf = torch.zeros(3, B, heads, L, hd, dtype=dtype, device=qkv.device)
        buf.permute(1, 3, 0, 2, 4).index_put_((rows, cols), qkv.view(P, 3, heads, hd).to(dtype))
        q, k, v = buf.view(3, B * heads, L, hd).unbind(0)
        scale = 1.0 / math.sqrt(hd)
        scores = torch.empty(B * heads, L, L, dtype=dtype, device=qkv.device)
        scores.view(B, heads, L, L).copy_(bias.expand(B, heads, L, L))
        scores.baddbmm_(q, k.transpose(1, 2), alpha=scale)
        probs = _softmax_(scores)
        keep = None
        if p > 0.0:
            keep = _keep_mask(probs.shape, p, probs.device, dtype)
            dropped = _masked_scale(probs, keep, 1.0 / (1.0 - p))
        else:
            dropped = probs
        y = torch.bmm(dropped, v).view(B, heads, L, hd).permute(0, 2, 1, 3)              # [B, L, h, hd] view
        out = y[out_rows, out_cols].reshape(out_rows.shape[0], D)
        ctx.save_for_backward(buf, probs, dropped, keep, rows, cols, out_rows, out_cols)
        ctx.scale, ctx.p, ctx.heads, ctx.qkv_dtype = scale, p, heads, qkv.dtype
        return out

    @staticmethod
    def backward(ctx, grad: Tensor):
        buf, probs, dropped, keep, rows, cols, out_rows, out_cols = ctx.saved_tensors
        _, B, h, L, hd = buf.shape
        q, k, v = buf.view(3, B * h, L, hd).unbind(0)
        dy = torch.zeros(B, h, L, hd, dtype=buf.dtype, device=buf.device)
        dy.permute(0, 2, 1, 3).index_put_((out_rows, out_cols), grad.view(-1, h, hd).to(buf.dtype))
        dy = dy.view(B * h, L, hd)
        dbuf = torch.empty_like(buf).view(3, B * h, L, hd)
        torch.bmm(dropped.transpose(1, 2), dy, out=dbuf[2])
        d_dropped = torch.bmm(dy, v.transpose(1, 2))
        d_probs = d_dropped if keep is None else _masked_scale(d_dropped, keep, 1.0 / (1.0 - ctx.p))
        d_scores = _softmax_backward_(d_probs, probs)
        dbuf[0].baddbmm_(d_scores, k, beta=0.0, alpha=ctx.scale)
        dbuf[1].baddbmm_(d_scores.transpose(1, 2), q, beta=0.0, alpha=ctx.scale)
        dqkv = dbuf.view(3, B, h, L, hd).permute(1, 3, 0, 2, 4)[rows, cols]            # [P, 3, h, hd]
        return dqkv.reshape(rows.shape[0], 3 * h * hd).to(ctx.qkv_dtype), None, None, None, None, None, None, None


def packed_attention(qkv: Tensor, mask: Tensor, index: Tensor, shape: tuple[int, int], heads: int, p: float,
                     select: Tensor | None = None) -> Tensor:
    """Multi-head attention of packed projections.

    qkv:    [P, 3D] the query, key and value projections of the valid positions (row-major order)
    mask:   [B, 1, 1, L] from `hero.model.transformer.attention_mask` (bool, or the additive float form)
    index:  [P] the flat positions (into B * L) of the rows of qkv
    shape:  (B, L)
    p:      attention-probability dropout (0 off)
    select: [O] rows of qkv whose outputs to return (default all)
    returns [P or O, D] in fp32 for fp32 / bf16 / fp16 inputs (the CPU math path's dtype), else qkv's
    """
    L = shape[1]
    rows, cols = index.div(L, rounding_mode="floor"), index.remainder(L)
    out_rows, out_cols = (rows, cols) if select is None else (rows[select], cols[select])
    dtype = torch.float32 if qkv.dtype in (torch.bfloat16, torch.float16) else qkv.dtype
    with torch.autocast(qkv.device.type, enabled=False):
        return _PackedAttention.apply(qkv, key_bias(mask, dtype), rows, cols, out_rows, out_cols, heads, p)
