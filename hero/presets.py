"""Named model presets: `hero-base` (the paper), `hero-small` (the benchmark reference), `hero-mini` (the
offline default, text side from MiniLM-L6), `hero-tiny` (tests, seconds on CPU)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from hero.config import ConfigError, from_dict
from hero.model.config import ModelConfig
from hero.text.tokenizer import TOKENIZER_FORMS, SpecialTokens, TextTokenizer, load_tokenizer

ROBERTA_TOKENS = SpecialTokens(cls=0, pad=1, sep=2, unk=3, mask=50264, random_low=4, random_high=50257)
MINILM_TOKENS = SpecialTokens(cls=101, pad=0, sep=102, unk=100, mask=103, random_low=999, random_high=30522)
TINY_TOKENS = SpecialTokens(cls=0, pad=1, sep=2, unk=3, mask=4, random_low=5, random_high=128)


@dataclass(frozen=True, kw_only=True)
class Preset:
    name: str
    model: ModelConfig
    tokens: SpecialTokens
    tokenizer: str | None
    """`"minilm"` (the packaged vocabulary), a tokenizer path (`hero.text.load_tokenizer`), or None: a run
    names one (``data.tokenizer``; hero-base / hero-small: RoBERTa's vocab.json + merges.txt)."""
    text_init: Literal["minilm"] | None = None
    """Pretrained weights for the text side (embeddings + cross-modal layers)."""


def _presets() -> dict[str, Preset]:
    base = ModelConfig(embedding_norm_eps=1e-5)
    return {
        "hero-base": Preset(name="hero-base", model=base, tokens=ROBERTA_TOKENS, tokenizer=None),
        "hero-small": Preset(
            name="hero-small",
            model=ModelConfig(hidden_size=256, num_heads=4, intermediate_size=1024, cross_layers=2, temporal_layers=2,
                              embedding_norm_eps=1e-5),
            tokens=ROBERTA_TOKENS,
            tokenizer=None,
        ),
        "hero-mini": Preset(
            name="hero-mini",
            model=ModelConfig(hidden_size=384, num_heads=12, intermediate_size=1536, cross_layers=6, temporal_layers=2,
                              vocab_size=30522, max_text_positions=512, feature_dim=2648),
            tokens=MINILM_TOKENS,
            tokenizer="minilm",
            text_init="minilm",
        ),
        "hero-tiny": Preset(
            name="hero-tiny",
            model=ModelConfig(hidden_size=32, num_heads=2, intermediate_size=64, cross_layers=1, temporal_layers=1,
                              vocab_size=128, feature_dim=16, max_frames=32, max_text_positions=64),
            tokens=TINY_TOKENS,
            tokenizer=None,
        ),
    }


PRESETS = _presets()


def get_preset(name: str, **model_overrides) -> Preset:
    """The preset ``name``, optionally with some model fields replaced (validated like any config)."""
    if name not in PRESETS:
        raise ConfigError(f"preset: unknown preset {name!r} (known: {', '.join(PRESETS)})")
    p = PRESETS[name]
    if not model_overrides:
        return p
    from hero.config import merge, to_dict

    model = from_dict(ModelConfig, merge(to_dict(p.model), model_overrides), _path="model")
    return Preset(name=p.name, model=model, tokens=p.tokens, tokenizer=p.tokenizer, text_init=p.text_init)


def preset_tokenizer(preset: Preset, name_or_path: str | None = None, *, key: str = "data.tokenizer") -> TextTokenizer:
    """The tokenizer of ``preset``'s text side: ``name_or_path`` (a run's ``data.tokenizer``), else the preset's own,
    checked against the preset: the same vocabulary size and special-token ids (``preset.tokens``).

    Raises:
        ConfigError: one line starting with ``key``: no tokenizer named, a missing file, or a vocabulary that
            disagrees with the preset (naming the file and the rule).
    """
    choice = name_or_path or preset.tokenizer
    if choice is None:
        raise ConfigError(f"{key}: preset {preset.name} names no tokenizer; give {TOKENIZER_FORMS}")
    try:
        tok = load_tokenizer(choice)
        tok.check_matches(preset.tokens, preset.model.vocab_size, f"preset {preset.name}")
    except (FileNotFoundError, ConfigError) as err:
        raise ConfigError(f"{key}: {err}") from None
    return tok
