"""Typed configs: unknown or bad keys fail with their dotted path."""

import pytest

from hero.config import ConfigError, from_dict, override, parse_overrides, to_dict
from hero.model.config import ModelConfig, original_compat
from hero.presets import PRESETS, get_preset
from hero.tasks import PretrainConfig


def test_unknown_key_names_dotted_path():
    with pytest.raises(ConfigError, match=r"^vsm\.margn: unknown key"):
        from_dict(PretrainConfig, {"vsm": {"margn": 0.2}})


def test_wrong_type_names_dotted_path():
    with pytest.raises(ConfigError, match=r"^vsm\.hard_pool_size: expected an integer"):
        from_dict(PretrainConfig, {"vsm": {"hard_pool_size": "many"}})
    with pytest.raises(ConfigError, match=r"^encoder: 'deep' is not one of"):
        from_dict(ModelConfig, {"encoder": "deep"})


def test_validation_errors_name_the_key():
    with pytest.raises(ConfigError, match=r"model\.num_heads: must divide hidden_size=32"):
        get_preset("hero-tiny", num_heads=5)
    with pytest.raises(ConfigError, match=r"pretrain\.tasks\.mlmm: unknown objective"):
        from_dict(PretrainConfig, {"tasks": {"mlmm": 1}})
    with pytest.raises(ConfigError, match=r"vsm\.drop_svmr_prob"):
        from_dict(PretrainConfig, {"vsm": {"drop_svmr_prob": 2}})
    with pytest.raises(ConfigError, match="compat=original needs"):
        ModelConfig(compat="original")
    with pytest.raises(ConfigError, match="unknown preset"):
        get_preset("hero-huge")


def test_round_trip_and_overrides():
    cfg = from_dict(PretrainConfig, {"tasks": {"mlm": 1, "vsm": 3}, "vsm": {"margin": 0.2}})
    assert from_dict(PretrainConfig, to_dict(cfg)) == cfg
    cfg2 = override(cfg, "vsm.margin=0.3", "mask_prob=0.2")
    assert cfg2.vsm.margin == 0.3 and cfg2.mask_prob == 0.2 and cfg2.tasks == cfg.tasks
    assert parse_overrides(["a.b.c=1", "a.d=x"]) == {"a": {"b": {"c": 1}, "d": "x"}}
    with pytest.raises(ConfigError, match="dotted.key=value"):
        parse_overrides(["nonsense"])


def test_presets_are_valid_and_original_compat_applies():
    for p in PRESETS.values():
        assert from_dict(ModelConfig, to_dict(p.model)) == p.model
    assert PRESETS["hero-base"].model.embedding_rows == 50272
    cfg = ModelConfig(**original_compat({}))
    assert cfg.text_type_id == 1 and cfg.frame_positions == "local" and cfg.attention_mask == "additive"


def test_overrides_read_exponent_floats_as_numbers():
    assert parse_overrides(["optim.lr=1e-3", "x=2", "y=abc"]) == {"optim": {"lr": 0.001}, "x": 2, "y": "abc"}
