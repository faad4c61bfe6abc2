"""The transformer block shared by every level of HERO (cross-modal, temporal, query, flat)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hero.model.config import ModelConfig

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


class Attention(nn.Module):
    """Multi-head self-attention with a fused QKV projection; SDPA or an explicit eager reference."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.num_heads = cfg.num_heads
        self.qkv = nn.Linear(cfg.hidden_size, 3 * cfg.hidden_size)
        self.out = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.dropout = cfg.attention_dropout
        self.impl = cfg.attention_impl

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """x: [B, L, D]; mask: [B, 1, 1, L] from `attention_mask`; returns [B, L, D]."""
        B, L, D = x.shape
        q, k, v = self.qkv(x).view(B, L, 3, self.num_heads, D // self.num_heads).permute(2, 0, 3, 1, 4)  # 3 x [B, h, L, hd]
        p = self.dropout if self.training else 0.0
        if self.impl == "sdpa":
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask.to(q.dtype) if mask.is_floating_point() else mask,
                                               dropout_p=p)
        else:
            scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])  # [B, h, L, L]
            scores = scores + mask.to(scores.dtype) if mask.is_floating_point() else scores.masked_fill(~mask, float("-inf"))
            y = F.dropout(scores.softmax(-1), p, self.training) @ v
        return self.out(y.transpose(1, 2).reshape(B, L, D))


class MLP(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.fc1 = nn.Linear(cfg.hidden_size, cfg.intermediate_size)
        self.fc2 = nn.Linear(cfg.intermediate_size, cfg.hidden_size)
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
        self.drop = nn.Dropout(cfg.dropout)
        self.pre_norm = cfg.norm_style == "pre"

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        if self.pre_norm:
            x = x + self.drop(self.attn(self.attn_norm(x), mask))
            return x + self.drop(self.mlp(self.mlp_norm(x)))
        x = self.attn_norm(x + self.drop(self.attn(x, mask)))
        return self.mlp_norm(x + self.drop(self.mlp(x)))


class Encoder(nn.Module):
    """A stack of `Block`s over a padded batch of sequences."""

    def __init__(self, cfg: ModelConfig, num_layers: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(Block(cfg) for _ in range(num_layers))
        self.final_norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps) if cfg.norm_style == "pre" else None
        self.mask_mode = cfg.attention_mask

    def forward(self, x: Tensor, valid: Tensor) -> Tensor:
        """x: [B, L, D]; valid: [B, L] bool; returns [B, L, D]."""
        mask = attention_mask(valid, self.mask_mode, x.dtype)
        for layer in self.layers:
            x = layer(x, mask)
        return self.final_norm(x) if self.final_norm is not None else x
