"""RunConfig: strict keys with dotted errors, YAML + overrides, derived batch layout."""

import pytest

from hero.config import ConfigError
from hero.train.config import RunConfig, batch_layout, load_run_config


def test_yaml_and_overrides(tmp_path):
    p = tmp_path / "run.yaml"
    p.write_text("preset: hero-tiny\nmodel: {dropout: 0.0}\noptim: {lr: 1e-4, head_lr_mult: {vsm: 2}}\n"
                 "train: {global_batch: 8, max_steps: 10}\n")
    cfg = load_run_config(p, ["train.max_steps=20", "optim.warmup_steps=5", "data.frames=[3, 9]"])
    assert cfg.optim.lr == 1e-4 and cfg.optim.head_lr_mult == {"vsm": 2.0}
    assert cfg.train.max_steps == 20 and cfg.optim.warmup_steps == 5 and cfg.data.frames == (3, 9)
    assert cfg.model_config.dropout == 0.0
    assert RunConfig.from_dict(cfg.to_dict()) == cfg  # the resolved YAML round-trips


@pytest.mark.parametrize("override, match", [
    ("train.lr_warmup=3", r"^train\.lr_warmup: unknown key"),
    ("optim.lr=-1", r"^optim\.lr: must be in \(0, 1\]"),
    ("train.keep_last_k=1", r"^train\.keep_last_k: must be >= 2"),
    ("model.num_heads=3", r"^model\.num_heads: must divide"),
    ("model.hidden_sise=3", r"^model\.hidden_sise: unknown key"),
    ("pretrain.tasks.foo=1", r"^pretrain\.tasks\.foo: unknown objective"),
    ("data.frames=[5, 2]", r"^data\.frames: need 1 <= low <= high"),
    ("train.precision=fp8", r"^train\.precision: 'fp8' is not one of"),
    ("train.micro_batch=3", r"^train\.micro_batch: 3 must divide train\.global_batch"),
    ("preset=hero-huge", r"^preset: unknown preset"),
    ("train.sinks=[jsonl]", r"^train\.sinks: 'jsonl' must look like"),
])
def test_errors_name_the_dotted_key(override, match):
    with pytest.raises(ConfigError, match=match):
        RunConfig().override(override)


def test_corpus_needs_a_path():
    with pytest.raises(ConfigError, match=r"^data\.path: required"):
        RunConfig().override("data.source=corpus")


def test_batch_layout_derived_and_checked():
    t = RunConfig().override("train.global_batch=8", "train.micro_batch=2").train
    assert batch_layout(t, 1).accum == 4
    lay = batch_layout(t, 2)
    assert (lay.micro_batch, lay.accum, lay.world_size) == (2, 2, 2)
    with pytest.raises(ConfigError, match="train.global_batch: 8 videos cannot be split evenly over 3 ranks"):
        batch_layout(t, 3)
    t = RunConfig().override("train.global_batch=8", "train.micro_batch=8").train
    with pytest.raises(ConfigError, match="train.micro_batch: 8 must divide the per-rank batch 4"):
        batch_layout(t, 2)
    assert batch_layout(RunConfig().override("train.global_batch=6").train, 2).micro_batch == 3


@pytest.mark.parametrize("lr", [".nan", ".inf", "1.0e9", "0", "-1.0e-4"])
def test_a_learning_rate_that_cannot_train_fails_at_load_naming_the_key(lr, tmp_path):
    from hero.train import main

    path = tmp_path / "run.yaml"
    path.write_text("preset: hero-tiny\noptim: {lr: %s}\ntrain: {max_steps: 2, run_dir: %s}\n" % (lr, tmp_path / "run"))
    with pytest.raises(ConfigError, match=r"^optim\.lr: must be in \(0, 1\]"):
        main(["--config", str(path)])
    assert not (tmp_path / "run").exists()  # nothing created before the config was checked


def test_a_misspelled_key_suggests_the_right_one():
    with pytest.raises(ConfigError, match=r"^optim\.lrr: unknown key \(did you mean 'lr'\? known: "):
        RunConfig.from_dict({"optim": {"lrr": 1e-4}})


def test_the_cli_says_a_bad_config_in_one_line_and_exits_2(tmp_path):
    import subprocess
    import sys

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "hero.train", *args], capture_output=True, text=True, cwd=tmp_path)

    out = cli("--config", "missing.yaml")
    assert out.returncode == 2 and out.stderr.strip().splitlines() == [out.stderr.strip()]
    assert out.stderr.startswith("error: ") and "missing.yaml" in out.stderr
    out = cli("optim.lrr=1")
    assert out.returncode == 2 and out.stderr.strip().startswith("error: optim.lrr: unknown key (did you mean 'lr'?")
    out = cli("--config", "missing.yaml", "--debug")
    assert out.returncode == 1 and "Traceback" in out.stderr


def test_lr_mult_needs_positive_finite_multipliers():
    from hero.train.config import OptimConfig

    with pytest.raises(ConfigError, match=r"^optim\.lr_mult\.encoder\.cross: must be finite and > 0, got 0"):
        RunConfig.from_dict({"optim": {"lr_mult": {"encoder.cross": 0}}})
    assert OptimConfig(lr_mult={"encoder.cross": 0.1}).lr_mult == {"encoder.cross": 0.1}
