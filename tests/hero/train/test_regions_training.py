"""Region tokens end to end on a tiny synthetic corpus: a store with regions, pretraining with every objective,
finetuning TVR, retrieval and TVQA, all with ``model.regions``; a store without regions refused in one line."""

import math

import pytest
from hero.corpus import CorpusConfig, CorpusError, ingest_corpus
from hero.synth import SynthConfig, generate_corpus
from hero.train import run
from hero.train.config import RunConfig
from hero.train.finetune import build_task_dataset, build_task_model

from train_helpers import random_feature_store, read_metrics

DIM, R, DR = 16, 3, 8
SMALL = {"hidden_size": 32, "num_heads": 2, "intermediate_size": 64, "cross_layers": 1, "temporal_layers": 1,
         "dropout": 0.0, "attention_dropout": 0.0, "regions": True}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("regions")
    generate_corpus(root / "c", SynthConfig(size="tiny", seed=3, num_videos=6, workers=1))
    manifest = ingest_corpus(CorpusConfig(path=str(root / "c")))
    manifest.save(root / "manifest.json")
    return {"path": str(root / "manifest.json"),
            "features": random_feature_store(manifest, root / "store", DIM, regions=(R, DR)),
            "plain": random_feature_store(manifest, root / "plain", DIM)}


def _cfg(corpus, tmp_path, task="pretrain", features=None, steps=3):
    return RunConfig.from_dict({
        "preset": "hero-mini", "model": SMALL, "text_init": False, "task": task,
        "pretrain": {"tasks": {"mlm": 1, "mfm_nce": 1, "mffr": 1, "fom": 1, "vsm": 1}},
        "data": {"source": "corpus", "path": corpus["path"], "features": features or corpus["features"]},
        "optim": {"lr": 1e-3, "warmup_steps": 0},
        "train": {"global_batch": 2, "max_steps": steps, "log_every": 1, "run_dir": str(tmp_path / task)}})


def test_pretraining_with_regions_runs_every_objective(corpus, tmp_path):
    run(_cfg(corpus, tmp_path, steps=10))
    rows = read_metrics(tmp_path / "pretrain")
    assert len(rows) == 10 and all(math.isfinite(r["train/loss"]) for r in rows)
    seen = {k.split("/")[1] for r in rows for k in r if k.startswith("train/") and k.endswith("/loss")}
    assert {"mlm", "mfm_nce", "mffr", "fom", "vsm"} <= seen
    from hero.train.checkpoint import find_latest

    ck = find_latest(tmp_path / "pretrain")
    assert ck.meta["model_config"]["regions"] and ck.meta["model_config"]["region_dim"] == DR  # from the store


@pytest.mark.parametrize("task", ["tvr", "retrieval", "tvqa"])
def test_finetuning_with_regions(corpus, tmp_path, task):
    run(_cfg(corpus, tmp_path, task=task, steps=2))
    assert all(math.isfinite(r["train/loss"]) for r in read_metrics(tmp_path / task))


def test_task_batches_carry_the_region_axis(corpus):
    cfg = RunConfig.from_dict({"preset": "hero-mini", "model": {**SMALL, "feature_dim": DIM, "region_dim": DR},
                               "task": "tvqa", "data": {"source": "corpus", "path": corpus["path"],
                                                        "features": corpus["features"]}})
    preset = cfg.build_preset()
    ds, collate = build_task_dataset(cfg.data, "tvqa", build_task_model("tvqa", cfg.finetune, preset), preset)
    batch = collate([ds[0], ds[1]]).batch
    B, T = batch.frame_mask.shape
    assert batch.region_feats.shape == (B, T, R, DR) and batch.region_boxes.shape == (B, T, R, 4)
    assert (batch.region_feats[~batch.frame_mask] == 0).all()
    assert batch.region_feats[batch.frame_mask].abs().sum(-1).gt(0).all()


def test_store_without_regions_is_refused_in_one_line(corpus, tmp_path):
    with pytest.raises(CorpusError) as err:
        run(_cfg(corpus, tmp_path, features=corpus["plain"]))
    msg = str(err.value)
    assert "\n" not in msg and corpus["plain"] in msg and "[features.no_regions]" in msg and "model.regions" in msg
