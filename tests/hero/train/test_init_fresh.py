"""`train.init_fresh`: the named parts of a finetuning model keep their fresh initialisation, everything else comes
from the pretraining checkpoint; a prefix that names no parameter is refused with the names that exist."""

import pytest
import torch
from safetensors.torch import load_file

from hero.config import ConfigError
from hero.train import run
from hero.train.finetune import build_task_model


def test_the_temporal_transformer_starts_fresh_and_the_rest_is_pretrained(tiny_cfg, tmp_path):
    cfg = tiny_cfg.override("train.max_steps=2")
    run(cfg, run_dir=tmp_path / "pre")
    saved = load_file(str(tmp_path / "pre/step-00000002/model.safetensors"))
    torch.manual_seed(0)
    fresh = build_task_model("tvr", {}, cfg.build_preset())
    init = {k: v.clone() for k, v in fresh.state_dict().items()}
    missing = fresh.load_pretrained(tmp_path / "pre", fresh=["encoder.temporal"])
    state = fresh.state_dict()

    temporal = [k for k in state if k.startswith("encoder.temporal.")]
    assert temporal and sorted(missing) == sorted(temporal)
    assert all(torch.equal(state[k], init[k]) for k in temporal)               # as initialised
    assert any(not torch.equal(saved[k], init[k]) for k in temporal)           # and pretraining had changed them
    others = [k for k in state if k.startswith("encoder.") and k not in temporal]
    assert "encoder.temporal_embed.position.weight" in others                  # a whole name component, not a prefix
    assert all(torch.equal(state[k], saved[k]) for k in others)
    assert all(torch.equal(state[k], saved["heads.vsm." + k[len("head."):]]) for k in state if k.startswith("head."))


def test_a_prefix_naming_no_parameter_is_refused(tiny_cfg, tmp_path):
    cfg = tiny_cfg.override("train.max_steps=1")
    run(cfg, run_dir=tmp_path / "pre")
    model = build_task_model("tvr", {}, cfg.build_preset())
    with pytest.raises(ConfigError, match=r"train.init_fresh: 'encoder.temporl' names no parameter .*"
                                          r"did you mean 'encoder.temporal'\?"):
        model.load_pretrained(tmp_path / "pre", fresh=["encoder.temporl"])


def test_pretraining_from_a_checkpoint_refuses_init_fresh(tiny_cfg, tmp_path):
    run(tiny_cfg.override("train.max_steps=1"), run_dir=tmp_path / "pre")
    cfg = tiny_cfg.override(f"train.init_from={tmp_path / 'pre'}", "train.init_fresh=[encoder.temporal]")
    with pytest.raises(ConfigError, match="train.init_fresh: only for finetuning"):
        run(cfg, run_dir=tmp_path / "again")
