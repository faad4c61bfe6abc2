"""Input embeddings: subtitle/query tokens, clip features at the cross-modal level, positions at the temporal level."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from hero.model.config import ModelConfig


class TextEmbedding(nn.Module):
    """word + position + token type -> LayerNorm -> dropout (BERT-style; HERO's SubEmbeddings)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.word = nn.Embedding(cfg.embedding_rows, cfg.hidden_size)
        self.position = nn.Embedding(cfg.max_text_positions, cfg.hidden_size)
        self.token_type = nn.Embedding(cfg.type_vocab_size, cfg.hidden_size)
        self.norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.embedding_norm_eps)
        self.drop = nn.Dropout(cfg.dropout)
        self.offset = cfg.text_position_offset
        self.type_id = cfg.text_type_id

    def default_positions(self, ids: Tensor) -> Tensor:
        """[N, L] positions offset + 0..L-1, clipped to the table (HERO clips at 511)."""
        pos = torch.arange(ids.shape[-1], device=ids.device) + self.offset
        return pos.clamp(max=self.position.num_embeddings - 1).expand_as(ids)

    def forward(self, ids: Tensor, positions: Tensor | None = None) -> Tensor:
        """ids: [N, L] long -> [N, L, D]."""
        if positions is None:
            positions = self.default_positions(ids)
        x = self.word(ids) + self.position(positions) + self.token_type.weight[self.type_id]
        return self.drop(self.norm(x))


def add_mask_vectors(feats: Tensor, masked: Tensor, mask_vector: Tensor, unmasked_vector: Tensor | None) -> Tensor:
    """MFM input: feats [..., Df] + ``mask_vector`` where ``masked`` [...] is True, + ``unmasked_vector`` (when
    given) where it is False. The latter is row 0 of the original HERO's 2-row mask table (``compat: original``)."""
    if unmasked_vector is None:
        return feats + masked.unsqueeze(-1).to(feats.dtype) * mask_vector
    return feats + torch.where(masked.unsqueeze(-1), mask_vector, unmasked_vector).to(feats.dtype)


def fill_missing_buffer(module: nn.Module, state_dict: dict, prefix: str, name: str) -> None:
    """Zeros for buffer ``name`` when ``state_dict`` lacks it: checkpoints written before it existed ran with zero."""
    buf = getattr(module, name, None)
    if buf is not None and prefix + name not in state_dict:
        state_dict[prefix + name] = torch.zeros_like(buf)


class FrameEmbedding(nn.Module):
    """Clip features entering the cross-modal level (HERO's ImageEmbeddings).

    feature (+ learned mask vector where MFM masked it) -> LayerNorm(Df) -> Linear(Df, D)
    + position + token type (the text table's frame row) -> LayerNorm -> dropout

    Under ``compat: original`` the MFM input also gets ``unmasked_vector`` on every frame MFM did not mask: the
    original looks both cases up in a 2-row table whose row 0 (``padding_idx``) its weight init overwrites with
    random values and no gradient ever reaches. It is a buffer (never trained), zero unless imported.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.feat_norm = nn.LayerNorm(cfg.feature_dim, eps=cfg.embedding_norm_eps)
        self.proj = nn.Linear(cfg.feature_dim, cfg.hidden_size)
        self.position = nn.Embedding(cfg.max_frames, cfg.hidden_size)
        self.mask_vector = nn.Parameter(torch.zeros(cfg.feature_dim))
        self.register_buffer("unmasked_vector", torch.zeros(cfg.feature_dim) if cfg.compat == "original" else None)
        self.norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.embedding_norm_eps)
        self.drop = nn.Dropout(cfg.dropout)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        fill_missing_buffer(self, state_dict, prefix, "unmasked_vector")
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def project(self, feats: Tensor, masked: Tensor | None = None) -> Tensor:
        """The position-free part, once per frame: feats [..., Df] (masked: [...] bool) -> [..., D]."""
        if masked is not None:
            feats = add_mask_vectors(feats, masked, self.mask_vector, self.unmasked_vector)
        return self.proj(self.feat_norm(feats))

    def finish(self, projected: Tensor, positions: Tensor, type_embedding: Tensor) -> Tensor:
        """projected: [N, F, D] from `project`; positions: [N, F] long; type_embedding: [D] -> [N, F, D]."""
        return self.drop(self.norm(projected + self.position(positions) + type_embedding))

    def forward(self, feats: Tensor, positions: Tensor, type_embedding: Tensor, masked: Tensor | None = None) -> Tensor:
        """feats: [N, F, Df]; positions: [N, F] long; type_embedding: [D]; masked: [N, F] bool -> [N, F, D]."""
        return self.finish(self.project(feats, masked), positions, type_embedding)


class FrameResidual(nn.Module):
    """Raw clip feature -> D, added to the cross-modal frame output before the temporal level
    (HERO's frame_transform: LayerNorm(Df) -> dropout -> Linear -> ReLU)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(cfg.feature_dim, eps=cfg.embedding_norm_eps)
        self.drop = nn.Dropout(cfg.dropout)
        self.proj = nn.Linear(cfg.feature_dim, cfg.hidden_size)

    def forward(self, feats: Tensor) -> Tensor:
        return torch.relu(self.proj(self.drop(self.norm(feats))))


class PositionEmbedding(nn.Module):
    """x + position -> LayerNorm -> dropout (HERO's FrameEmbeddings / QueryFeatEmbeddings)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.position = nn.Embedding(cfg.max_text_positions, cfg.hidden_size)
        self.norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.embedding_norm_eps)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: Tensor) -> Tensor:
        """x: [N, L, D] -> [N, L, D] with positions 0..L-1 added."""
        pos = torch.arange(x.shape[1], device=x.device).clamp(max=self.position.num_embeddings - 1)
        return self.drop(self.norm(x + self.position(pos)))
