"""Configuration of the pretraining objectives and their sampling ratios (docs/hero-fidelity.md b; the decoder
objective ``dec`` is beyond the original HERO: docs/hero-fidelity.md b.6)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from hero.config import ConfigError

OBJECTIVE_NAMES = ("mlm", "mfm_nce", "mffr", "fom", "vsm", "dec")


@dataclass(frozen=True, kw_only=True)
class RankingLossConfig:
    """The in-batch ranking loss that VSM pretraining, moment retrieval and text-to-video retrieval share
    (`hero.tasks.vsm.ranking_loss`): every query against every other video of the batch, and every video against
    every other video's queries, optionally hard-weighted from a step on. Defaults: HERO's pretraining."""

    ranking_loss: Literal["hinge", "lse"] = "hinge"
    """`hinge`: max(0, margin + negative - positive) per negative (HERO); `lse`: softplus(negative - positive)."""
    margin: float = 0.1
    """Hinge margin (``hinge`` only)."""
    lw_neg_ctx: float = 8.0
    """Weight of the negative-video (context) term."""
    lw_neg_q: float = 8.0
    """Weight of the negative-query term."""
    hard_negative_start_step: int = 20000
    """From this step on, the ``hard_pool_size`` hardest negatives weigh ``hard_weight``, the rest ``easy_weight``."""
    hard_pool_size: int = 20
    """How many of the hardest negatives of each query (and of each video) count as hard."""
    hard_weight: float = 10.0
    """Weight of a hard negative's loss once hard negatives are on."""
    easy_weight: float = 0.1
    """Weight of every other negative's loss once hard negatives are on (before that step every negative weighs 1)."""

    def __post_init__(self) -> None:
        if self.margin < 0:
            raise ConfigError(f"margin: must be >= 0, got {self.margin}")
        for key in ("lw_neg_ctx", "lw_neg_q", "hard_weight", "easy_weight"):
            if getattr(self, key) < 0:
                raise ConfigError(f"{key}: must be >= 0, got {getattr(self, key)}")
        if self.hard_pool_size < 1:
            raise ConfigError(f"hard_pool_size: must be >= 1, got {self.hard_pool_size}")


@dataclass(frozen=True, kw_only=True)
class SpanLossConfig(RankingLossConfig):
    """The ranking loss plus the local start/end loss over a query's frames (VSM, moment retrieval)."""

    lw_st_ed: float = 0.01
    """Weight of the local (start/end) loss."""
    drop_svmr_prob: float = 0.8
    """Probability that a training step skips the local loss."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 <= self.drop_svmr_prob <= 1.0:
            raise ConfigError(f"drop_svmr_prob: must be in [0, 1], got {self.drop_svmr_prob}")
        if self.lw_st_ed < 0:
            raise ConfigError(f"lw_st_ed: must be >= 0, got {self.lw_st_ed}")


@dataclass(frozen=True, kw_only=True)
class VsmConfig(SpanLossConfig):
    """Video-subtitle matching: a video's subtitles, blanked from its context, are queries for its frames."""

    queries_per_video: int = 5
    """Subtitles per video used as queries (and blanked from the context)."""
    gather_across_ranks: bool = False
    """All-gather queries and videos (differentiably) across ranks to enlarge the negative pool."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.queries_per_video < 1:
            raise ConfigError(f"queries_per_video: must be >= 1, got {self.queries_per_video}")


@dataclass(frozen=True, kw_only=True)
class DecConfig:
    """Decoder pretraining (``dec``, beyond HERO): a caption decoder generates a subtitle, hidden from the encoder,
    from the frame states around it. Its head has the TVC decoder's layout, so ``decoder_layers`` and
    ``max_positions`` must equal the TVC finetuning's (``finetune.decoder_layers`` / ``finetune.max_positions``)
    for TVC to start from it."""

    captions_per_video: int = 2
    """Subtitles per video (with text and aligned frames) generated at a step; each is hidden from the encoder."""
    context_frames: int = 2
    """The decoder's memory: the subtitle's aligned frames and this many frames on each side (the clip around it)."""
    decoder_layers: int = 2
    """Layers of the decoder (as the TVC decoder's; HERO's TVC: 2)."""
    max_positions: int = 1024
    """Rows of the decoder's position table (as the TVC decoder's; HERO's TVC: 1024)."""
    max_caption_len: int = 60
    """Subtitle tokens kept as the target, the special token included (a longer subtitle is cut)."""
    label_smoothing: float = 0.0
    """Label smoothing of the token cross-entropy (0: plain cross-entropy)."""

    def __post_init__(self) -> None:
        for key in ("captions_per_video", "decoder_layers"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key}: must be >= 1, got {getattr(self, key)}")
        if self.context_frames < 0:
            raise ConfigError(f"context_frames: must be >= 0, got {self.context_frames}")
        if not 2 <= self.max_caption_len <= self.max_positions:
            raise ConfigError(f"max_caption_len: must be in [2, max_positions={self.max_positions}], "
                              f"got {self.max_caption_len}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ConfigError(f"label_smoothing: must be in [0, 1), got {self.label_smoothing}")


@dataclass(frozen=True, kw_only=True)
class PretrainConfig:
    """Pretraining: which objectives run and how often (one per optimizer step), and their settings."""

    tasks: dict[str, float] = field(default_factory=lambda: {"mlm": 2.0, "mfm_nce": 2.0, "fom": 1.0, "vsm": 2.0})
    """Objective -> sampling ratio (HERO: mlm 2, mfm-nce 2, fom 1, vsm 2). One objective per optimizer step.
    ``dec`` (decoder pretraining for captioning, beyond HERO) is off unless given a ratio > 0."""
    mask_prob: float = 0.15
    """MLM token and MFM frame masking probability."""
    fom_prob: float = 0.15
    """Share of frame positions FOM shuffles."""
    nce_temperature: float = 1.0
    """MFM-NCE: the prediction-to-feature scores are divided by it before the softmax (HERO: 1.0)."""
    nce_padded_negatives: bool = False
    """HERO quirk: MFM-NCE negatives also include predictions at padded frame positions."""
    vsm: VsmConfig = field(default_factory=VsmConfig)
    """Video-subtitle matching's ranking and local losses (the table below)."""
    dec: DecConfig = field(default_factory=DecConfig)
    """Decoder pretraining (``tasks.dec``): the hidden subtitles, the memory around them, the decoder's shape."""

    def __post_init__(self) -> None:
        if not self.tasks:
            raise ConfigError("pretrain.tasks: needs at least one objective")
        for name, w in self.tasks.items():
            if name not in OBJECTIVE_NAMES:
                raise ConfigError(f"pretrain.tasks.{name}: unknown objective (known: {', '.join(OBJECTIVE_NAMES)})")
            if w < 0:
                raise ConfigError(f"pretrain.tasks.{name}: ratio must be >= 0, got {w}")
        if sum(self.tasks.values()) <= 0:
            raise ConfigError("pretrain.tasks: ratios sum to 0")
        for key in ("mask_prob", "fom_prob"):
            v = getattr(self, key)
            if not 0.0 < v < 1.0:
                raise ConfigError(f"pretrain.{key}: must be in (0, 1), got {v}")
        if self.nce_temperature <= 0:
            raise ConfigError(f"pretrain.nce_temperature: must be > 0, got {self.nce_temperature}")
