"""The HERO encoder and its building blocks."""

from hero.model.config import ModelConfig, original_compat
from hero.model.hero import Hero, HeroOutput, use_reference_path
from hero.model.query import QueryEncoder
from hero.model.transformer import Attention, Block, Encoder

__all__ = ["Attention", "Block", "Encoder", "Hero", "HeroOutput", "ModelConfig", "QueryEncoder", "original_compat",
           "use_reference_path"]
