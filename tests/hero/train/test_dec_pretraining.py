"""Decoder pretraining through the trainer: drawn at its ratio, exact resume with it in the mix, and a TVC
finetuning run initialised from the checkpoint takes its decoder (or, from a checkpoint without one, only the
output layer, as before)."""

import torch
from safetensors.torch import load_file

from hero.tasks import TaskSampler
from hero.train import run
from hero.train.finetune import build_task_model

from train_helpers import read_metrics, strip_perf

DEC = ("pretrain.tasks.dec=2",)


def test_resume_matches_uninterrupted_with_the_decoder_in_the_mix(tiny_cfg, tmp_path):
    cfg = tiny_cfg.override(*DEC, "train.ckpt_every=2", "train.seed=6")   # seed 6 draws dec before and after step 3
    full = run(cfg, run_dir=tmp_path / "a")
    run(cfg.override("train.stop_after=3"), run_dir=tmp_path / "b")
    resumed = run(cfg, run_dir=tmp_path / "b")
    assert resumed["train/step"] == 6 and resumed["train/loss"] == full["train/loss"]
    a, b = read_metrics(tmp_path / "a"), read_metrics(tmp_path / "b")
    assert [strip_perf(r) for r in a] == [strip_perf(r) for r in b]
    # the rows follow the sampler's stream, the decoder's steps included
    stream = TaskSampler(cfg.pretrain.tasks, seed=cfg.train.seed).stream(0, 6)
    assert "dec" in stream[:3] and "dec" in stream[3:]
    for step, (task, row) in enumerate(zip(stream, a)):
        assert f"train/{task}/loss" in row, (step, task, sorted(row))
    assert all("train/dec/token_acc" in r for r, t in zip(a, stream) if t == "dec")
    wa, wb = load_file(str(tmp_path / "a/step-00000006/model.safetensors")), load_file(str(tmp_path / "b/step-00000006/model.safetensors"))
    assert any(k.startswith("heads.dec.") for k in wa)
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def test_tvc_finetuning_starts_from_the_checkpoints_decoder(tiny_cfg, tmp_path, caplog):
    cfg = tiny_cfg.override(*DEC, "train.max_steps=2")
    run(cfg, run_dir=tmp_path / "pre")
    saved = load_file(str(tmp_path / "pre/step-00000002/model.safetensors"))
    model = build_task_model("tvc", {}, cfg.build_preset())
    with caplog.at_level("INFO"):
        missing = model.load_pretrained(tmp_path / "pre")                       # what train.init_from does
    assert missing == []
    head = model.task.head.state_dict()
    assert all(torch.equal(head[k], saved[f"heads.dec.{k}"]) for k in head)
    assert all(torch.equal(v, saved[f"encoder.{k}"]) for k, v in model.task.encoder.state_dict().items())
    assert "decoder from the pretraining checkpoint (heads.dec -> head)" in caplog.text


def test_tvc_finetuning_from_a_checkpoint_without_a_decoder_starts_it_from_scratch(tiny_cfg, tmp_path, caplog):
    cfg = tiny_cfg.override("train.max_steps=1")
    run(cfg, run_dir=tmp_path / "pre")
    saved = load_file(str(tmp_path / "pre/step-00000001/model.safetensors"))
    assert not any(k.startswith("heads.dec.") for k in saved)
    model = build_task_model("tvc", {}, cfg.build_preset())
    with caplog.at_level("INFO"):
        missing = model.load_pretrained(tmp_path / "pre")
    assert missing and all(k.startswith(("head.layers.", "head.position.", "head.norm.")) for k in missing)
    assert torch.equal(model.task.head.lm.dense.weight, saved["heads.mlm.dense.weight"])
    assert model.task.decoder_init.source == "heads.mlm"
    assert "no pretrained decoder (heads.dec)" in caplog.text
