"""The transformer block shared by every level of HERO (cross-modal, temporal, query, flat).

An `Encoder` runs either on a padded batch ``[N, L, D]`` or *packed*: every per-position operation (QKV and
output projections, feed-forward, LayerNorms, dropout) on the valid positions only (``[P, D]``), and only the
attention itself on the padded ``[N, L]`` layout, so that a sequence attends to its own positions. Where many
positions are padding (HERO's cross-modal level: each subtitle padded to the longest frames + tokens) the packed
form does the same math with less work; the padded form is the reference (``Encoder.forward(packed=False)``).
On the CPU the packed form attends through `hero.model.packed_attention` (one scatter into the padded head
layout, one gather back, its own backward); elsewhere through SDPA on the unpacked projections.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hero.model.config import ModelConfig
from hero.model.dropout import Dropout
from hero.model.linear import Linear, linear
from hero.model.packed_attention import packed_attention

NEG_INF_ADDITIVE = -10000.0  # the original's additive mask value (HERO quirk)


def attention_mask(valid: Tensor, mode: str, dtype: torch.dtype) -> Tensor:
    """Turn a key-validity mask into what `Attention` consumes.

    valid:   [B, L] bool, True where a key may be attended to
    returns: [B, 1, 1, L] bool (mode "boolean") or float bias (mode "additive": 0 or -10000)
    """
    mask = valid[:, None, None, :]
    if mode == "boolean":
        return mask
    return (1.0 - mask.to(dtype)) * NEG_INF_ADDITIVE


@dataclass(frozen=True)
class Packing:
    """Where the valid positions of a padded ``[N, L]`` batch are: ``index`` [P] into its N * L flat positions."""

    index: Tensor
    shape: tuple[int, int]

    @classmethod
    def of(cls, valid: Tensor) -> Packing:
        """valid: [N, L] bool."""
        return cls(index=valid.reshape(-1).nonzero().squeeze(1), shape=(valid.shape[0], valid.shape[1]))

    def pack(self, x: Tensor) -> Tensor:
        """[N, L, ...] -> [P, ...] (the valid positions, in row-major order)."""
        return x.flatten(0, 1).index_select(0, self.index)

    def unpack(self, y: Tensor) -> Tensor:
        """[P, ...] -> [N, L, ...], zeros at padded positions."""
        out = y.new_zeros(self.shape[0] * self.shape[1], *y.shape[1:])
        return out.index_copy(0, self.index, y).view(*self.shape, *y.shape[1:])


class Attention(nn.Module):
    """Multi-head self-attention with a fused QKV projection; SDPA or an explicit eager reference."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.num_heads = cfg.num_heads
        self.qkv = Linear(cfg.hidden_size, 3 * cfg.hidden_size)
        self.out = Linear(cfg.hidden_size, cfg.hidden_size)
        self.dropout = cfg.attention_dropout
        self.impl = cfg.attention_impl

    def forward(self, x: Tensor, mask: Tensor, packing: Packing | None = None, select: Tensor | None = None) -> Tensor:
        """x: [B, L, D], or packed [P, D] with ``packing``; mask: [B, 1, 1, L] from `attention_mask`.

        Returns the same shape as x; with ``select`` ([O] long, packed form only) the outputs of those packed
        positions alone, [O, D]: queries are projected there only, keys and values everywhere.
        """
        if select is None:
            qkv = self.qkv(x)
        else:
            D = x.shape[-1]
            w, b = self.qkv.weight, self.qkv.bias
            buckets = self.qkv.bucket_rows
            q = linear(x.index_select(0, select), w[:D], b[:D], buckets=buckets)
            qkv = torch.cat([x.new_zeros(x.shape[0], D, dtype=q.dtype).index_copy(0, select, q),
                             linear(x, w[D:], b[D:], buckets=buckets)], dim=1)
        p = self.dropout if self.training else 0.0
        if packing is not None and self.impl == "sdpa" and qkv.device.type == "cpu":
            return self.out(packed_attention(qkv, mask, packing.index, packing.shape, self.num_heads, p, select))
        if packing is not None:                       # projections ran on valid positions; attention needs [B, L]
            qkv = packing.unpack(qkv)
        B, L, D3 = qkv.shape
        D = D3 // 3
        q, k, v = qkv.view(B, L, 3, self.num_heads, D // self.num_heads).permute(2, 0, 3, 1, 4)  # 3 x [B, h, L, hd]
        if self.impl == "sdpa":
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask.to(q.dtype) if mask.is_floating_point() else mask,
                                               dropout_p=p)
        else:
            scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])  # [B, h, L, L]
            scores = scores + mask.to(scores.dtype) if mask.is_floating_point() else scores.masked_fill(~mask, float("-inf"))
            y = F.dropout(scores.softmax(-1), p, self.training) @ v
        y = y.transpose(1, 2).reshape(B, L, D)
        if packing is not None:
            y = packing.pack(y)
        return self.out(y if select is None else y.index_select(0, select))


class MLP(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.fc1 = Linear(cfg.hidden_size, cfg.intermediate_size)
        self.fc2 = Linear(cfg.intermediate_size, cfg.hidden_size)
        self.approximate = "tanh" if cfg.activation == "gelu_tanh" else "none"

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(F.gelu(self.fc1(x), approximate=self.approximate))


class Block(nn.Module):
    """One transformer layer: post-LN (BERT/HERO) or pre-LN."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.attn = Attention(cfg)
        self.attn_norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.mlp = MLP(cfg)
        self.mlp_norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.drop = Dropout(cfg.dropout)
        self.pre_norm = cfg.norm_style == "pre"

    def forward(self, x: Tensor, mask: Tensor, packing: Packing | None = None, select: Tensor | None = None) -> Tensor:
        """x: [B, L, D] or packed [P, D]; with ``select`` (packed only) the outputs of those positions, [O, D]."""
        picked = x if select is None else x.index_select(0, select)
        if self.pre_norm:
            x = self.drop.residual(picked, self.attn(self.attn_norm(x), mask, packing, select))
            return self.drop.residual(x, self.mlp(self.mlp_norm(x)))
        x = self.attn_norm(self.drop.residual(picked, self.attn(x, mask, packing, select)))
        return self.mlp_norm(self.drop.residual(x, self.mlp(x)))


class Encoder(nn.Module):
    """A stack of `Block`s over a batch of sequences, padded or packed (see the module docstring)."""

    def __init__(self, cfg: ModelConfig, num_layers: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(Block(cfg) for _ in range(num_layers))
        self.final_norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps) if cfg.norm_style == "pre" else None
        self.mask_mode = cfg.attention_mask

    def forward(self, x: Tensor, valid: Tensor, packed: bool = False, outputs: Tensor | None = None,
                context: Tensor | None = None) -> Tensor:
        """x: [B, L, D]; valid: [B, L] bool; returns [B, L, D].

        ``packed=True`` computes every per-position operation on the valid positions only and returns zeros at
        the padded ones (the padded form returns what the layers computed there: values nothing should read).
        ``outputs`` ([B, L] bool, packed form only) names the positions whose result the caller reads: a
        sequence without one is skipped, and the last layer runs queries, feed-forward and norms there alone
        (keys and values still come from every valid position); the other positions come back as zeros.
        The padded form ignores it and computes everything (the reference).
        ``context`` ([B, L] bool): positions that are context only: every layer reads keys and values from their
        input states, which no layer updates (the packed form computes no query, feed-forward or norm there; the
        padded form computes them and puts the input back). They come back as their input.
        """
        if not packed:
            return self.run(x, valid, context=context)
        if outputs is not None:
            outputs = outputs & valid
            rows = outputs.any(1).nonzero().squeeze(1)
            if rows.numel() < valid.shape[0]:                   # sequences nobody reads are skipped
                sub = None if context is None else context.index_select(0, rows)
                y = self.forward(x.index_select(0, rows), valid.index_select(0, rows), True,
                                 outputs.index_select(0, rows), sub)
                return y.new_zeros(x.shape[0], *y.shape[1:]).index_copy(0, rows, y)
        packing = Packing.of(valid)
        live = None if context is None else (~context).reshape(-1).index_select(0, packing.index).nonzero().squeeze(1)
        if outputs is None:
            return packing.unpack(self.run(packing.pack(x), valid, packing, live=live))
        select = outputs.reshape(-1).index_select(0, packing.index).nonzero().squeeze(1)   # [O] into packed
        y = self.run(packing.pack(x), valid, packing, select, live=live)
        return Packing(index=packing.index.index_select(0, select), shape=packing.shape).unpack(y)

    def run(self, x: Tensor, valid: Tensor, packing: Packing | None = None, select: Tensor | None = None, *,
            live: Tensor | None = None, context: Tensor | None = None) -> Tensor:
        """The layers on x: [B, L, D], or on packed [P, D] given its ``packing`` of ``valid`` [B, L]; ``select``
        ([O] into the packed positions): the last layer computes those outputs only ([O, D]). ``live`` ([N] into
        the packed positions): the positions the layers update, the others are context (`forward`); ``context``
        ([B, L] bool) says the same for the padded form."""
        mask = attention_mask(valid, self.mask_mode, x.dtype)
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            if live is not None and not (i == last and select is not None):
                x = x.index_copy(0, live, layer(x, mask, packing, live))
            elif context is not None:
                x = torch.where(context.unsqueeze(-1), x, layer(x, mask, packing))
            else:
                x = layer(x, mask, packing, select if i == last else None)
        return self.final_norm(x) if self.final_norm is not None else x
