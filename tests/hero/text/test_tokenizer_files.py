"""A tokenizer from a path: an HF tokenizers JSON, or a byte-level BPE vocab.json + merges.txt (RoBERTa's files),
checked against the preset that will read its ids (hero-base: `ROBERTA_TOKENS`, 50265 tokens)."""

import json

import pytest

from hero.config import ConfigError
from hero.presets import ROBERTA_TOKENS, get_preset, preset_tokenizer
from hero.text.tokenizer import load_tokenizer

SPECIAL = ("cls", "sep", "pad", "mask", "unk")


def test_bpe_folder_has_hero_base_ids_and_splits_like_roberta(roberta_like_vocab):
    tok = preset_tokenizer(get_preset("hero-base"), str(roberta_like_vocab))
    assert tok.vocab_size == 50265
    assert all(getattr(tok.special, k) == getattr(ROBERTA_TOKENS, k) for k in SPECIAL)
    vocab = json.loads((roberta_like_vocab / "vocab.json").read_text())
    ids = tok.encode("hello world")
    assert ids == [vocab["hello"], vocab["\u0120world"]]         # byte-level: the space is part of the next token
    assert tok.decode(ids) == "hello world"
    assert tok.decode(tok.encode("Yeah. That's \u00e9t\u00e9!")) == "Yeah. That's \u00e9t\u00e9!"   # any byte round-trips
    assert tok.encode("<mask>") == [50264]                       # special tokens are never split


def test_every_path_form_gives_the_same_ids(roberta_like_vocab, tmp_path):
    text = "hello world, hello"
    by_folder = load_tokenizer(roberta_like_vocab)
    by_vocab = load_tokenizer(roberta_like_vocab / "vocab.json")
    by_folder._tok.save(str(tmp_path / "tokenizer.json"))
    by_json = load_tokenizer(tmp_path / "tokenizer.json")
    by_json_folder = load_tokenizer(tmp_path)          # a folder with a tokenizer.json: that one first
    assert by_folder.encode(text) == by_vocab.encode(text) == by_json.encode(text) == by_json_folder.encode(text)
    by_json.check_matches(ROBERTA_TOKENS, 50265, "preset hero-base")


def test_a_vocabulary_of_another_size_is_refused_in_one_line(tmp_path, bpe_vocab_writer):
    small = bpe_vocab_writer(tmp_path / "small", mask_id=300)
    with pytest.raises(ConfigError) as err:
        preset_tokenizer(get_preset("hero-base"), str(small))
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("data.tokenizer: ")
    assert f"{small / 'vocab.json'}: 301 tokens, preset hero-base has 50265" in msg and "must equal" in msg


def test_other_special_ids_are_refused(roberta_like_vocab):
    vocab = json.loads((roberta_like_vocab / "vocab.json").read_text())
    vocab["<s>"], vocab["<pad>"] = vocab["<pad>"], vocab["<s>"]       # BERT-style order: pad first
    (roberta_like_vocab / "vocab.json").write_text(json.dumps(vocab))
    with pytest.raises(ConfigError, match=r"vocab.json: cls token id 1, preset hero-base uses 0 \(a tokenizer's size "
                                          r"and special ids must equal those of preset hero-base\)"):
        preset_tokenizer(get_preset("hero-base"), str(roberta_like_vocab), key="text.tokenizer")


def test_the_packaged_minilm_vocabulary_does_not_fit_hero_base():
    with pytest.raises(ConfigError, match="30522 tokens, preset hero-base has 50265"):
        preset_tokenizer(get_preset("hero-base"), "minilm")
    preset_tokenizer(get_preset("hero-mini"))      # hero-mini's own: fits


@pytest.mark.parametrize("make", ["nothing", "empty folder", "no merges"])
def test_missing_files_are_named(tmp_path, roberta_like_vocab, make):
    if make == "nothing":
        path, named = tmp_path / "nope", tmp_path / "nope"
    elif make == "empty folder":
        (tmp_path / "empty").mkdir()
        path, named = tmp_path / "empty", tmp_path / "empty"
    else:
        (roberta_like_vocab / "merges.txt").unlink()
        path, named = roberta_like_vocab / "vocab.json", roberta_like_vocab / "merges.txt"
    with pytest.raises(ConfigError) as err:
        preset_tokenizer(get_preset("hero-base"), str(path))
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(f"data.tokenizer: {named}: ")


def test_hero_base_without_a_tokenizer_says_what_to_give():
    with pytest.raises(ConfigError, match="data.tokenizer: preset hero-base names no tokenizer; give a tokenizer.json"):
        preset_tokenizer(get_preset("hero-base"))
