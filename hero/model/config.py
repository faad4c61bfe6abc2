"""Model architecture configuration (what a checkpoint's weights depend on)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from hero.config import ConfigError

Compat = Literal["native", "original"]


@dataclass(frozen=True, kw_only=True)
class ModelConfig:
    """Architecture of a HERO encoder. Every field here is checked on resume (a mismatch fails the run)."""

    encoder: Literal["hierarchical", "flat"] = "hierarchical"
    """`hierarchical` = HERO (cross-modal per subtitle, then temporal); `flat` = one transformer over all
    frames and all subtitle tokens (the paper's F-TRM ablation) with cross_layers + temporal_layers layers."""
    hidden_size: int = 768
    """Width of every transformer layer and embedding (HERO: 768)."""
    num_heads: int = 12
    """Attention heads per layer; must divide ``hidden_size`` (HERO: 12)."""
    intermediate_size: int = 3072
    """Width of each layer's feed-forward block (HERO: 3072)."""
    cross_layers: int = 6
    """Layers of the Cross-modal Transformer (HERO: 6, initialised from alternate RoBERTa layers)."""
    temporal_layers: int = 3
    """Layers of the Temporal Transformer (HERO: 3)."""
    query_layers: int = 1
    """Self-attention blocks in the moment-retrieval query encoder (HERO: 1)."""
    vocab_size: int = 50265
    """Tokenizer vocabulary; the embedding table is padded to a multiple of `pad_vocab_multiple`."""
    pad_vocab_multiple: int = 8
    """The word-embedding table's rows are ``vocab_size`` rounded up to a multiple of this (HERO's release: 8)."""
    feature_dim: int = 4352
    """Dimension of one clip feature (HERO: 2048 ResNet-152 + 2304 SlowFast)."""
    max_frames: int = 100
    """Frames per video the model accepts; also the FOM class count and the cross-modal frame-position table."""
    max_text_positions: int = 514
    """Rows of the text position table, and of the temporal level's and the query encoder's position tables
    (HERO: 514, RoBERTa's)."""
    type_vocab_size: int = 2
    """Rows of the token-type table that text and frame embeddings index (HERO: 2)."""
    dropout: float = 0.1
    """Dropout on embeddings and on the attention and feed-forward outputs (HERO: 0.1)."""
    attention_dropout: float = 0.1
    """Dropout on the attention weights (HERO: 0.1)."""
    init_std: float = 0.02
    """Standard deviation of the normal initialisation of weights and embeddings (HERO: 0.02)."""
    layer_norm_eps: float = 1e-12
    """LayerNorm eps inside transformer layers (HERO and BERT: 1e-12)."""
    embedding_norm_eps: float = 1e-12
    """LayerNorm eps of embeddings and heads (HERO quirk: 1e-5; BERT/MiniLM: 1e-12)."""
    norm_style: Literal["post", "pre"] = "post"
    """`post`: LayerNorm after each residual sum (HERO, BERT); `pre`: before each sublayer, plus a final LayerNorm."""
    activation: Literal["gelu", "gelu_tanh"] = "gelu"
    """Feed-forward activation: the exact `gelu` (HERO) or its tanh approximation `gelu_tanh`."""
    text_type_id: int = 0
    """Token-type id of subtitle/query tokens (HERO quirk: 1; BERT/MiniLM: 0)."""
    frame_type_id: int = 1
    """Token-type id of frame embeddings (HERO: 1)."""
    text_position_offset: int = 0
    """First text position id (HERO: 0; RoBERTa's own convention would be 2)."""
    frame_positions: Literal["global", "local"] = "global"
    """Cross-modal frame position ids: `global` = the frame's index in the video; `local` (HERO quirk) = its
    index within its subtitle's frame group."""
    attention_mask: Literal["boolean", "additive"] = "boolean"
    """`boolean`: padded keys get no weight; `additive` (HERO quirk): add (1 - m) * -10000 to the scores."""
    attention_impl: Literal["sdpa", "eager"] = "sdpa"
    """`sdpa` uses F.scaled_dot_product_attention; `eager` is the explicit softmax(QK^T)V reference (benchmarks)."""
    regions: bool = False
    """Region tokens: each clip's region features (a store extracted with ``features.extract.regions``) enter the
    Cross-modal Transformer right after the clip's frame token; the Temporal Transformer still gets one token per
    clip (docs/architecture.md, "Region tokens"). Not with ``encoder: flat`` nor ``compat: original``."""
    region_dim: int = 1280
    """Dimension of one region feature (efficientnet-lite0: 1280); set from the feature store like ``feature_dim``."""
    compat: Compat = "native"
    """`original` forces the released HERO's numerical quirks (see `original_compat`)."""

    def __post_init__(self) -> None:
        def check(cond: bool, key: str, msg: str) -> None:
            if not cond:
                raise ConfigError(f"model.{key}: {msg}")

        check(self.hidden_size > 0, "hidden_size", f"must be > 0, got {self.hidden_size}")
        check(self.num_heads > 0 and self.hidden_size % self.num_heads == 0, "num_heads",
              f"must divide hidden_size={self.hidden_size}, got {self.num_heads}")
        check(self.intermediate_size > 0, "intermediate_size", f"must be > 0, got {self.intermediate_size}")
        check(self.cross_layers >= 1, "cross_layers", f"must be >= 1, got {self.cross_layers}")
        check(self.temporal_layers >= 1, "temporal_layers", f"must be >= 1, got {self.temporal_layers}")
        check(self.query_layers >= 1, "query_layers", f"must be >= 1, got {self.query_layers}")
        check(self.vocab_size >= 8, "vocab_size", f"must be >= 8, got {self.vocab_size}")
        check(self.pad_vocab_multiple >= 1, "pad_vocab_multiple", f"must be >= 1, got {self.pad_vocab_multiple}")
        check(self.feature_dim > 0, "feature_dim", f"must be > 0, got {self.feature_dim}")
        check(self.max_frames >= 2, "max_frames", f"must be >= 2, got {self.max_frames}")
        check(self.max_text_positions > self.text_position_offset + 1, "max_text_positions",
              f"must exceed text_position_offset + 1, got {self.max_text_positions}")
        check(0 <= self.text_type_id < self.type_vocab_size, "text_type_id", "must index the type table")
        check(0 <= self.frame_type_id < self.type_vocab_size, "frame_type_id", "must index the type table")
        check(0.0 <= self.dropout < 1.0, "dropout", f"must be in [0, 1), got {self.dropout}")
        check(0.0 <= self.attention_dropout < 1.0, "attention_dropout", f"must be in [0, 1), got {self.attention_dropout}")
        check(self.region_dim > 0, "region_dim", f"must be > 0, got {self.region_dim}")
        check(not (self.regions and self.encoder == "flat"), "regions",
              "region tokens live at the cross-modal level, which encoder=flat has not; set model.regions=false")
        check(not (self.regions and self.compat == "original"), "regions",
              "compat=original is the released HERO, which has no region tokens; set model.regions=false")
        if self.compat == "original":
            for key, want in ORIGINAL_QUIRKS.items():
                check(getattr(self, key) == want, key,
                      f"compat=original needs {want!r}, got {getattr(self, key)!r} (use original_compat())")

    @property
    def embedding_rows(self) -> int:
        """Rows of the word-embedding table: vocab padded up to a multiple of `pad_vocab_multiple`."""
        m = self.pad_vocab_multiple
        return (self.vocab_size + m - 1) // m * m


ORIGINAL_QUIRKS = {
    "layer_norm_eps": 1e-12,
    "embedding_norm_eps": 1e-5,
    "norm_style": "post",
    "activation": "gelu",
    "text_type_id": 1,
    "frame_type_id": 1,
    "text_position_offset": 0,
    "frame_positions": "local",
    "attention_mask": "additive",
    "encoder": "hierarchical",
}
"""Numerical behaviour of the released HERO (docs/hero-fidelity.md h) that `compat: original` pins."""


def original_compat(cfg_dict: dict) -> dict:
    """A model-config dict with the original release's quirks applied and `compat: original` set."""
    return {**cfg_dict, **ORIGINAL_QUIRKS, "compat": "original"}
