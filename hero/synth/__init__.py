"""The synthetic TV-show corpus: the platform's built-in default data (no download)."""

from hero.synth.generate import SIZES, SynthConfig, generate_corpus, load_episodes

__all__ = ["SIZES", "SynthConfig", "generate_corpus", "load_episodes"]
