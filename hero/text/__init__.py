"""Tokenizers and special-token ids."""

from hero.text.tokenizer import SpecialTokens, TextTokenizer, load_tokenizer

__all__ = ["SpecialTokens", "TextTokenizer", "load_tokenizer"]
