"""Adding a task is one module and one registration (docs/adding-a-task.md): the toy task of `toy_task.py` is
ingested from its own annotation files, finetuned by the trainer, predicted and scored, and the pipelines see its
dataset and headlines, with no other file of the project touched."""

import shutil

import numpy as np
import pytest

from hero.corpus import CorpusConfig, ingest_corpus
from hero.features.store import FeatureStore
from hero.synth import SynthConfig, generate_corpus
from hero.tasks import TASKS, datasets, headlines, task_of_dataset
from hero.tasks.registry import register_task, unregister_task

from task_helpers import random_store

DIM = 24
SMALL = {"hidden_size": 32, "num_heads": 2, "intermediate_size": 64, "cross_layers": 1, "temporal_layers": 1,
         "feature_dim": DIM, "dropout": 0.0, "attention_dropout": 0.0}


@pytest.fixture(scope="module")
def toy():
    import toy_task  # this folder is on sys.path under pytest

    yield toy_task.ToyTask
    unregister_task(toy_task.ToyTask.name)


@pytest.fixture(scope="module")
def corpus(toy, tmp_path_factory):
    root = tmp_path_factory.mktemp("toycorpus")
    generate_corpus(root / "c", SynthConfig(size="tiny", seed=7, num_videos=5, workers=1))
    for split in ("train", "val"):   # the toy task's own annotation files (VIOLIN form, its dataset name)
        src = root / "c" / "annotations" / f"violin_{split}.jsonl"
        if src.exists():
            shutil.copy(src, root / "c" / "annotations" / f"toyvi_{split}.jsonl")
    manifest = ingest_corpus(CorpusConfig(path=str(root / "c"), tasks=("toyvi",)))
    manifest.save(root / "manifest.json")
    random_store(root, manifest, DIM)
    return root, manifest


def test_the_registry_knows_the_new_task(toy):
    assert TASKS["toy_match"] is toy and task_of_dataset("toyvi") is toy
    assert "toyvi" in datasets() and headlines("toyvi") == ("acc",)
    with pytest.raises(ValueError, match="already read by task 'toy_match'"):
        register_task(type("Other", (toy,), {"name": "other_toy"}))


def test_ingest_finetune_predict_score(toy, corpus, tmp_path):
    from hero.eval.predict import predict_split
    from hero.presets import preset_tokenizer
    from hero.train import run
    from hero.train.config import RunConfig
    from hero.train.finetune import load_task_model
    from pipelines.finetune.pipeline import create_pipeline

    root, manifest = corpus
    assert len(manifest.tasks["toyvi"]["train"]) > 0
    cfg = RunConfig.from_dict({
        "preset": "hero-mini", "model": SMALL, "text_init": False, "task": "toyvi", "finetune": {"max_txt_len": 16},
        "data": {"source": "corpus", "path": str(root / "manifest.json"), "features": str(root / "store")},
        "train": {"global_batch": 4, "max_steps": 3, "log_every": 1, "run_dir": str(tmp_path / "run")}})
    assert type(cfg.finetune).__name__ == "ToyConfig" and cfg.finetune.max_txt_len == 16
    out = run(cfg)
    assert out["train/step"] == 3 and np.isfinite(out["train/loss"])
    model, preset = load_task_model(tmp_path / "run")
    assert isinstance(model, toy)
    split = "val" if manifest.tasks["toyvi"].get("val") else "train"
    res = predict_split(model, "toyvi", manifest, FeatureStore(root / "store"), preset_tokenizer(preset), split,
                        tmp_path / "pred", batch_size=3)
    assert res["count"] == len(manifest.tasks["toyvi"][split])
    assert 0.0 <= res["metrics"][f"toyvi/{split}/acc"] <= 100.0 and res["metrics"][f"toyvi/{split}/log_loss"] > 0
    # the finetune pipeline builds a namespace for it like for any dataset
    assert {n.name for n in create_pipeline(datasets=("toyvi",)).nodes} == {"toyvi.finetune"}
