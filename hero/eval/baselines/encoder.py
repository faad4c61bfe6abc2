"""Sentence embeddings for the text-only baselines: the MiniLM-L6 sentence encoder the project ships.

`MiniLMEncoder` runs the text side of a hero-mini encoder after `init_text_side(..., "minilm")`, which is the
MiniLM-L6 encoder itself (embeddings and all six layers come from the packaged weights; a test checks that it
reproduces the reference sentence embedding), and mean-pools the last hidden states over the tokens, as the
sentence encoder does. Nothing is downloaded and nothing is trained. Embeddings are L2-normalised, so a dot
product is a cosine similarity, and cached by text (subtitle lines repeat).

Anything with an ``encode(texts) -> [N, D] normalised tensor`` method can stand in (`SentenceEncoder`); the
unit tests use a bag-of-words one whose similarities are known by hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import torch
from torch.nn import functional as F

MAX_TOKENS = 256
"""Tokens per text, [CLS] and [SEP] included: the sentence encoder's own limit (its max_seq_length)."""


class SentenceEncoder(Protocol):
    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        """[N, D] float32 rows of unit length, one per text."""
        ...


class MiniLMEncoder:
    """MiniLM-L6 sentence embeddings (mean pooling, unit length), computed in batches and cached by text."""

    def __init__(self, batch_size: int = 64, *, model=None, tokenizer=None, tokens=None) -> None:
        """``model`` (a `Hero`), ``tokenizer`` and ``tokens``: another text side to pool the same way (all three, or
        none: MiniLM-L6; `hero.eval.baselines.probe`)."""
        if model is None:
            from hero.model import Hero
            from hero.model.pretrained import init_text_side
            from hero.presets import get_preset
            from hero.text import load_tokenizer

            preset = get_preset("hero-mini")
            # Building the encoder draws random weights for its video side (never used here): keep the caller's
            # random stream as it was.
            with torch.random.fork_rng(devices=[]):
                model = Hero(preset.model).eval()
            init_text_side(model, "minilm")
            tokenizer, tokens = load_tokenizer("minilm"), preset.tokens
        elif tokenizer is None or tokens is None:
            raise TypeError("MiniLMEncoder: give model, tokenizer and tokens together")
        self.model = model
        self.tokenizer = tokenizer
        self.tokens = tokens
        self.batch_size = batch_size
        self._cache: dict[str, torch.Tensor] = {}

    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        todo = sorted({t for t in texts if t not in self._cache}, key=len)  # similar lengths batch together
        for i in range(0, len(todo), self.batch_size):
            chunk = todo[i:i + self.batch_size]
            for text, vec in zip(chunk, self._embed(chunk)):
                self._cache[text] = vec
        if not texts:
            return torch.zeros(0, self.model.cfg.hidden_size)
        return torch.stack([self._cache[t] for t in texts])

    def _embed(self, texts: Sequence[str]) -> torch.Tensor:
        ids = [[self.tokens.cls, *self.tokenizer.encode(t)[: MAX_TOKENS - 2], self.tokens.sep] for t in texts]
        length = max(map(len, ids))
        x = torch.full((len(ids), length), self.tokens.pad, dtype=torch.long)
        mask = torch.zeros(len(ids), length, dtype=torch.bool)
        for row, seq in enumerate(ids):
            x[row, : len(seq)] = torch.tensor(seq)
            mask[row, : len(seq)] = True
        with torch.no_grad():
            hidden = self.model.encode_text(x, mask)                               # [N, L, D]
        m = mask.unsqueeze(-1).float()
        return F.normalize((hidden * m).sum(1) / m.sum(1), dim=-1)
