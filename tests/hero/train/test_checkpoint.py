"""Exact resume, architecture checks, corruption fallback, retention."""

import json
import logging
import os

import pytest
import torch
from safetensors.torch import load_file

from hero.train import ArchitectureMismatch, run
from hero.train.checkpoint import find_latest, join_state, list_steps, split_state

from train_helpers import read_metrics, strip_perf


def weights(step_dir):
    return load_file(str(step_dir / "model.safetensors"))


def test_resume_matches_uninterrupted(tiny_cfg, tmp_path):
    cfg = tiny_cfg.override("train.ckpt_every=2")
    full = run(cfg, run_dir=tmp_path / "a")
    part = run(cfg.override("train.stop_after=3"), run_dir=tmp_path / "b")   # simulated preemption at step 3
    assert part["train/step"] == 3 and (tmp_path / "b" / "step-00000003").is_dir()
    resumed = run(cfg, run_dir=tmp_path / "b")                              # picks up step-3 by itself
    assert resumed["train/step"] == 6
    assert resumed["train/loss"] == full["train/loss"]                      # exact on CPU
    a, b = read_metrics(tmp_path / "a"), read_metrics(tmp_path / "b")
    assert [strip_perf(r) for r in a] == [strip_perf(r) for r in b]         # every step's losses and task
    tasks = [sorted(k for k in r if k.endswith("/loss") and k.count("/") == 2) for r in a]
    assert len({tuple(t) for t in tasks}) > 1                               # the stream really mixes tasks
    wa, wb = weights(tmp_path / "a" / "step-00000006"), weights(tmp_path / "b" / "step-00000006")
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    # a finished run has nothing left to do
    assert run(cfg, run_dir=tmp_path / "b")["train/step"] == 6


def test_architecture_mismatch_names_the_field(tiny_cfg, tmp_path):
    run(tiny_cfg.override("train.max_steps=2"), run_dir=tmp_path / "r")
    with pytest.raises(ArchitectureMismatch, match=r"model\.intermediate_size: checkpoint has 64, config has 96"):
        run(tiny_cfg.override("model.intermediate_size=96"), run_dir=tmp_path / "r")


def test_damaged_latest_falls_back_to_previous(tiny_cfg, tmp_path, caplog):
    cfg = tiny_cfg.override("train.ckpt_every=2", "train.max_steps=4", "optim.decay=constant")  # lr independent of max_steps
    ref = run(cfg.override("train.max_steps=6"), run_dir=tmp_path / "a")
    run(cfg, run_dir=tmp_path / "b")
    latest = tmp_path / "b" / "step-00000004"
    pristine = {p.name: p.read_bytes() for p in latest.iterdir()}

    def damage(name, how):
        for n, data in pristine.items():
            (latest / n).write_bytes(data)
        victim = latest / name
        if how == "truncate":
            os.truncate(victim, victim.stat().st_size // 2)
        elif how == "flip":
            data = bytearray(victim.read_bytes())
            data[-3] ^= 0xFF
            victim.write_bytes(bytes(data))
        else:
            victim.unlink()

    for name, how, why in [("model.safetensors", "truncate", "truncated"), ("state.safetensors", "flip", "checksum"),
                           ("state.json", "delete", "missing"), ("manifest.json", "delete", "manifest")]:
        damage(name, how)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="hero.train.checkpoint"):
            found = find_latest(tmp_path / "b")
        assert found.step == 2, (name, how)
        assert "step-00000004 is invalid" in caplog.text and why in caplog.text and "falling back" in caplog.text
    damage("model.safetensors", "truncate")
    out = run(cfg.override("train.max_steps=6"), run_dir=tmp_path / "b")
    assert out["train/step"] == 6
    assert out["train/loss"] == ref["train/loss"]  # continued exactly from step 2


def test_keep_last_k(tiny_cfg, tmp_path):
    run(tiny_cfg.override("train.ckpt_every=1", "train.keep_last_k=2"), run_dir=tmp_path / "r")
    assert [s for s, _ in list_steps(tmp_path / "r")] == [5, 6]
    assert not list(tmp_path.glob("r/.step-*"))  # no temporary or replaced folder left
    meta = json.loads((tmp_path / "r" / "step-00000006" / "state.json").read_text())
    assert meta["step"] == 6 and meta["model_config"]["hidden_size"] == 32 and meta["world_size"] == 1
    assert set(meta["rng"][0]) >= {"python", "numpy", "torch", "objective"}


def test_state_split_join_roundtrip():
    state = {"state": {0: {"step": torch.tensor(3.0), "exp_avg": torch.randn(2)}},
             "param_groups": [{"lr": 0.1, "params": [0], "names": ["w"]}], "t": (1, 2)}
    tensors = {}
    meta = json.loads(json.dumps(split_state(state, "optim", tensors)))
    back = join_state(meta, tensors)
    assert list(back["state"]) == [0] and torch.equal(back["state"][0]["exp_avg"], state["state"][0]["exp_avg"])
    assert back["param_groups"] == state["param_groups"] and back["t"] == [1, 2]


def test_a_resume_drops_the_rows_written_after_its_checkpoint(tiny_cfg, tmp_path):
    import shutil

    cfg = tiny_cfg.override("train.ckpt_every=4", f"train.run_dir={tmp_path / 'r'}")
    run(cfg)
    shutil.rmtree(tmp_path / "r" / "step-00000006")      # as if the job died after logging steps 5 and 6
    run(cfg)                                              # resumes at step 4
    raw = [json.loads(line)["step"] for line in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    assert raw == [1, 2, 3, 4, 5, 6]                      # each step once, in order


def test_no_valid_checkpoint_is_said_out_loud(tiny_cfg, tmp_path, caplog):
    cfg = tiny_cfg.override("train.ckpt_every=2", "train.max_steps=4", f"train.run_dir={tmp_path / 'r'}")
    run(cfg)
    for _, path in list_steps(tmp_path / "r"):
        (path / "model.safetensors").write_bytes(b"damaged")
    with caplog.at_level(logging.WARNING):
        assert run(cfg)["train/step"] == 4
    assert "none of its 2 checkpoints is valid (see above): training starts again from step 0" in caplog.text
