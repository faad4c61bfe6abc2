"""Query encoder for video-subtitle matching and moment retrieval (HERO's QueryFeatEncoder)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from hero.model.config import ModelConfig
from hero.model.dropout import Dropout
from hero.model.embeddings import PositionEmbedding
from hero.model.linear import Linear
from hero.model.transformer import Attention, attention_mask


class AttentionOnly(nn.Module):
    """Self-attention -> dropout -> LayerNorm(x + .), no feed-forward (BERT's BertAttention)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.attn = Attention(cfg)
        self.norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.drop = Dropout(cfg.dropout)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        return self.norm(x + self.drop(self.attn(x, mask)))


class QueryEncoder(nn.Module):
    """Token states of a query (from the text-only cross-modal pass) -> one query vector.

    LayerNorm -> dropout -> Linear -> ReLU, + positions, one self-attention block, then attention pooling
    with a learned "modular" vector over the valid tokens.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.in_norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.embedding_norm_eps)
        self.in_drop = Dropout(cfg.dropout)
        self.in_proj = Linear(cfg.hidden_size, cfg.hidden_size)
        self.position = PositionEmbedding(cfg)
        self.layers = nn.ModuleList(AttentionOnly(cfg) for _ in range(cfg.query_layers))
        self.pool = Linear(cfg.hidden_size, 1, bias=False)
        self.mask_mode = cfg.attention_mask

    def forward(self, token_states: Tensor, mask: Tensor) -> Tensor:
        """token_states: [N, L, D]; mask: [N, L] bool -> [N, D]."""
        x = self.position(torch.relu(self.in_proj(self.in_drop(self.in_norm(token_states)))))
        attn = attention_mask(mask, self.mask_mode, x.dtype)
        for layer in self.layers:
            x = layer(x, attn)
        logits = self.pool(x).squeeze(-1).masked_fill(~mask, float("-inf"))     # [N, L]
        return (logits.softmax(-1).unsqueeze(-1) * x).sum(1)
