"""main([...]) end to end in-process, hooks, sinks, non-finite loss."""

import json

import pytest
import torch
import yaml

from hero.config import ConfigError
from hero.tasks.pretrain import PretrainModel
from hero.train import main, run
from hero.train.config import RunConfig

from train_helpers import ListSink, read_metrics


def test_main_end_to_end(tmp_path):
    cfg_path = tmp_path / "run.yaml"
    cfg_path.write_text(yaml.safe_dump({
        "preset": "hero-tiny",
        "data": {"size": 32, "frames": [4, 8]},
        "optim": {"lr": 2e-3, "warmup_steps": 2},
        "train": {"global_batch": 4, "max_steps": 8, "log_every": 4, "precision": "bf16",
                  "sinks": ["hero.train.sinks:JsonlSink", "train_helpers:ListSink"]},
    }))
    out = main(["--config", str(cfg_path), f"train.run_dir={tmp_path / 'run'}", "train.max_steps=6"])
    assert out["train/step"] == 6 and torch.isfinite(torch.tensor(out["train/loss"]))
    assert out["perf/samples_per_s"] > 0 and out["perf/tokens_per_s"] > out["perf/samples_per_s"]
    assert 0 <= out["perf/data_wait_frac"] < 1
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["train"]["max_steps"] == 6 and saved["train"]["precision"] == "bf16"
    assert RunConfig.from_dict(saved).train.run_dir == str(tmp_path / "run")
    rows = read_metrics(tmp_path / "run")
    assert [r["step"] for r in rows] == [4, 6]
    assert {"train/loss", "train/lr", "perf/samples_per_s", "perf/tokens_per_s"} <= set(rows[0])
    assert any(k.count("/") == 2 and k.endswith("/loss") for k in rows[0])  # per-task losses
    assert [s for s, _ in ListSink.rows[:-1]] == [4, 6] and ListSink.rows[-1] == "closed"
    assert (tmp_path / "run" / "step-00000006" / "manifest.json").is_file()


def test_eval_hook_and_accumulation(tiny_cfg):
    calls = []

    def on_eval(step, model):
        assert not model.training
        calls.append(step)
        return {"val/score": float(step)}

    out = run(tiny_cfg.override("train.eval_every=2"), on_eval=on_eval)
    assert calls == [2, 4, 6] and out["val/score"] == 6.0
    rows = [json.loads(line) for line in open(f"{tiny_cfg.train.run_dir}/metrics.jsonl")]
    assert [r["val/score"] for r in rows if "val/score" in r] == [2.0, 4.0, 6.0]


def test_non_finite_loss_names_step_and_task(tiny_cfg, monkeypatch):
    forward = PretrainModel.forward
    calls = {"n": 0}

    def poisoned(self, objective, inputs):
        out = forward(self, objective, inputs)
        calls["n"] += 1
        if calls["n"] == 5:  # step 2 (0-based), first micro-batch
            out.loss = out.loss * float("nan")
        return out

    monkeypatch.setattr(PretrainModel, "forward", poisoned)
    task = __import__("hero.tasks", fromlist=["TaskSampler"]).TaskSampler(tiny_cfg.pretrain.tasks, seed=3).task_at(2)
    with pytest.raises(FloatingPointError, match=rf"non-finite loss nan at step 2 \(task {task}\)"):
        run(tiny_cfg)


@pytest.mark.slow
def test_corpus_source_trains_on_a_synthetic_corpus(tmp_path):
    from hero.corpus import CorpusConfig, ingest_corpus
    from hero.features import ExtractConfig, run_extraction
    from hero.synth import SynthConfig, generate_corpus

    root = tmp_path / "corpus"
    generate_corpus(root, SynthConfig(size="tiny", seed=2, num_videos=4, workers=1))
    manifest = ingest_corpus(CorpusConfig(path=str(root)))
    manifest.save(tmp_path / "manifest.json")
    run_extraction(manifest, tmp_path / "store", ExtractConfig(extractor_config={"image_size": 64, "batch_size": 16},
                                                               progress=False))
    small = {"hidden_size": 32, "num_heads": 2, "intermediate_size": 64, "cross_layers": 1, "temporal_layers": 1}
    cfg = RunConfig.from_dict({
        "preset": "hero-mini", "model": small, "text_init": False,
        "data": {"source": "corpus", "path": str(tmp_path / "manifest.json"), "features": str(tmp_path / "store")},
        "train": {"global_batch": 2, "max_steps": 3, "log_every": 1, "run_dir": str(tmp_path / "run")},
    })
    out = run(cfg)
    assert out["train/step"] == 3 and torch.isfinite(torch.tensor(out["train/loss"]))
    with pytest.raises(ConfigError, match="model.feature_dim: 16 in the run config, but the feature store at .* holds 2648-d"):
        run(cfg.override("model.feature_dim=16", f"train.run_dir={tmp_path / 'other'}"))
