"""hero-mini's text side is MiniLM-L6: its text-only pass reproduces the sentence embedding."""

import pytest
import torch

from hero.model import Hero
from hero.model.pretrained import init_text_side, layer_choice
from hero.presets import get_preset
from hero.text.tokenizer import load_tokenizer, minilm_dir

SENTENCES = ["A man is eating food.", "Phoebe puts one of her ponytails in her mouth.", "hi", "Sheldon opens the door"]


def _pad(tok, sentences):
    ids = [[tok.special.cls] + tok.encode(s) + [tok.special.sep] for s in sentences]
    L = max(map(len, ids))
    x = torch.tensor([i + [tok.special.pad] * (L - len(i)) for i in ids])
    m = torch.tensor([[True] * len(i) + [False] * (L - len(i)) for i in ids])
    return x, m


def _mean_pool(h, m):
    mf = m.unsqueeze(-1).float()
    return (h * mf).sum(1) / mf.sum(1)


def test_minilm_sentence_embeddings_match_reference():
    transformers = pytest.importorskip("transformers")
    ref = transformers.BertModel.from_pretrained(str(minilm_dir())).eval()
    enc = Hero(get_preset("hero-mini").model).eval()
    init_text_side(enc, "minilm")
    x, m = _pad(load_tokenizer("minilm"), SENTENCES)
    with torch.no_grad():
        want = _mean_pool(ref(input_ids=x, attention_mask=m.long()).last_hidden_state, m)
        got = _mean_pool(enc.encode_text(x, m), m)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)
    sims = torch.nn.functional.normalize(got, dim=-1) @ torch.nn.functional.normalize(got, dim=-1).t()
    assert sims[1, 2] < sims[0, 0]  # sanity: embeddings are not collapsed


def test_every_tensor_is_loaded_or_listed_new():
    enc = Hero(get_preset("hero-mini").model)
    rep = init_text_side(enc, "minilm")
    keys = set(enc.state_dict())
    assert set(rep.loaded) | set(rep.new) == keys
    assert not set(rep.loaded) & set(rep.new)
    assert "text_embed.word.weight" in rep.loaded and "cross.layers.5.attn.qkv.weight" in rep.loaded
    assert "temporal.layers.0.attn.qkv.weight" in rep.new and "frame_embed.proj.weight" in rep.new
    assert sorted(rep.unused) == ["embeddings.position_ids", "pooler.dense.bias", "pooler.dense.weight"]


def test_fewer_layers_take_evenly_spaced_ones():
    assert layer_choice(12, 6) == [1, 3, 5, 7, 9, 11]  # HERO's RoBERTa init
    assert layer_choice(6, 6) == list(range(6))
    assert layer_choice(6, 2) == [2, 5]
    with pytest.raises(ValueError, match="only 6"):
        layer_choice(6, 7)


def test_tokenizer_special_ids():
    tok = load_tokenizer("minilm")
    sp = tok.special
    assert (sp.cls, sp.sep, sp.pad, sp.mask, sp.unk) == (101, 102, 0, 103, 100)
    assert sp.random_low == 999 and sp.random_high == 30522
    assert tok.decode(tok.encode("hello world")) == "hello world"
    assert get_preset("hero-mini").tokens == sp


def test_missing_tokenizer_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.json"):
        load_tokenizer(tmp_path / "nope.json")
