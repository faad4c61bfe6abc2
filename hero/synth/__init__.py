"""The synthetic corpora, the platform's built-in data (no download): a TV show (the default) and how-to
tutorials (``SynthConfig(domain="instructional")``)."""

from hero.synth.generate import DOMAINS, SIZES, SynthConfig, generate_corpus, load_episodes

__all__ = ["DOMAINS", "SIZES", "SynthConfig", "generate_corpus", "load_episodes"]
