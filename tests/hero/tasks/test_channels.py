"""The input-channel ablation (VALUE): data.channels for finetuning and predict_split(channels=) blank the same
thing — ``video`` drops the subtitles (HERO a.5 video-only form), ``subtitles`` zeroes the frame features — while
the task's own text (queries, QA) stays; ``both`` (the default) is what the model saw before the option existed."""

import numpy as np
import pytest
import torch

from hero.config import ConfigError
from hero.corpus.manifest import Manifest
from hero.data.datasets import TaskDataset, VideoFeatures
from hero.eval.predict import predict_split, prediction_path
from hero.features.store import FeatureStore
from hero.text.tokenizer import load_tokenizer
from hero.train import run
from hero.train.config import RunConfig
from hero.train.finetune import build_task_dataset, build_task_model

from task_helpers import random_store

DIM = 24
SMALL = {"hidden_size": 32, "num_heads": 2, "intermediate_size": 64, "cross_layers": 1, "temporal_layers": 1,
         "feature_dim": DIM, "dropout": 0.0, "attention_dropout": 0.0}
CHANNELS = ("both", "video", "subtitles")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """{"path": manifest.json, "features": store}: 5 synthetic videos with random 24-d features."""
    from hero.corpus import CorpusConfig, ingest_corpus
    from hero.synth import SynthConfig, generate_corpus

    root = tmp_path_factory.mktemp("chcorpus")
    generate_corpus(root / "c", SynthConfig(size="tiny", seed=5, num_videos=5, workers=1))
    manifest = ingest_corpus(CorpusConfig(path=str(root / "c")))
    manifest.save(root / "manifest.json")
    random_store(root, manifest, DIM)
    return {"path": str(root / "manifest.json"), "features": str(root / "store")}


def _cfg(corpus, dataset, tmp_path=None, **data):
    train = {"global_batch": 2, "max_steps": 2, "log_every": 1, "run_dir": str(tmp_path / "run")} if tmp_path else {}
    return RunConfig.from_dict({"preset": "hero-mini", "model": SMALL, "text_init": False, "task": dataset,
                                "data": {"source": "corpus", **corpus, **data}, "train": train})


def _finetune_inputs(corpus, dataset):
    out = {}
    for ch in CHANNELS:
        cfg = _cfg(corpus, dataset, channels=ch)
        preset = cfg.build_preset()
        ds, collate = build_task_dataset(cfg.data, dataset, build_task_model(dataset, {}, preset), preset)
        out[ch] = collate([ds[i] for i in range(min(len(ds), 6))])
    return out


@pytest.mark.parametrize("dataset, text_field", [("tvr", "query_ids"), ("tvqa", "qa_ids")])
def test_finetune_inputs_blank_one_channel(corpus, dataset, text_field):
    got = _finetune_inputs(corpus, dataset)
    both, video, subs = (got[c].batch for c in CHANNELS)
    assert both.sub_mask[:, 1:].any() and both.frame_feats.abs().sum() > 0
    # video only: no subtitle token, every frame in a separator-only 5-frame group; same frames
    assert not video.sub_mask[:, 1:].any() and (video.sub_ids[:, 0] == both.sub_ids[0, 0]).all()
    assert (video.frame_owner()[video.frame_mask] >= 0).all()
    assert torch.equal(video.frame_feats, both.frame_feats) and torch.equal(video.frame_mask, both.frame_mask)
    # subtitles only: zero features on the same timeline, subtitles and alignment as with both
    assert not subs.frame_feats.any() and torch.equal(subs.frame_mask, both.frame_mask)
    assert torch.equal(subs.sub_ids, both.sub_ids) and torch.equal(subs.sub_frames, both.sub_frames)
    # the task's own text is never blanked
    for c in ("video", "subtitles"):
        assert torch.equal(getattr(got[c], text_field), getattr(got["both"], text_field))


def test_both_is_the_default_and_unchanged(corpus):
    cfg = _cfg(corpus, "tvr")
    assert cfg.data.channels == "both"
    manifest = Manifest.load(cfg.data.path)
    videos = VideoFeatures(manifest, FeatureStore(cfg.data.features), load_tokenizer("minilm"),
                           video_ids=manifest.split_videos("train"), max_frames=cfg.model_config.max_frames)
    preset = cfg.build_preset()
    ds, collate = build_task_dataset(cfg.data, "tvr", build_task_model("tvr", {}, preset), preset)
    plain = TaskDataset(manifest, "tvr", "train", videos)
    a, b = collate([ds[i] for i in range(len(ds))]).batch, collate([plain[i] for i in range(len(plain))]).batch
    assert all(torch.equal(getattr(a, f), getattr(b, f)) for f in ("frame_feats", "sub_ids", "sub_mask", "sub_frames"))


def test_finetune_run_with_video_only_inputs(corpus, tmp_path):
    out = run(_cfg(corpus, "tvr", tmp_path, channels="video"))
    assert out["train/step"] == 2 and np.isfinite(out["train/loss"])
    with pytest.raises(ConfigError, match=r"data\.corpora: finetuning reads one corpus"):
        run(RunConfig.from_dict({**_cfg(corpus, "tvr", tmp_path).to_dict(),
                                 "data": {"corpora": {"tv": {**corpus}}}}))


def _spy(model, seen):
    """Record the VideoBatches the model is given during prediction (calls straight through)."""
    if hasattr(model, "encode_corpus"):
        encode = model.encode_corpus

        def encode_corpus(batches, device=None):
            batches = list(batches)
            seen.extend(batches)
            return encode(iter(batches), device)

        model.encode_corpus = encode_corpus
    collate = model.collate

    def recording_collate(*args, **kwargs):
        inputs = collate(*args, **kwargs)
        seen.append(inputs.batch)
        return inputs

    model.collate = recording_collate


@pytest.mark.parametrize("dataset", ["tvr", "tvqa", "retrieval"])
def test_prediction_blanks_the_same_channel(corpus, dataset, tmp_path):
    cfg = _cfg(corpus, dataset)
    preset = cfg.build_preset()
    manifest = Manifest.load(cfg.data.path)
    store, tok = FeatureStore(cfg.data.features), load_tokenizer("minilm")
    for ch in CHANNELS:
        torch.manual_seed(0)
        model = build_task_model(dataset, {}, preset).task
        seen = []
        _spy(model, seen)
        res = predict_split(model, dataset, manifest, store, tok, "train", tmp_path / ch, batch_size=4,
                            corpus_batch_size=3, channels=ch)
        assert res["count"] > 0 and prediction_path(tmp_path / ch, dataset, "train").is_file() and res["metrics"]
        assert seen
        text = any(b.sub_mask[:, 1:].any() for b in seen)
        frames = any(b.frame_feats.any() for b in seen)
        assert (text, frames) == {"both": (True, True), "video": (False, True), "subtitles": (True, False)}[ch]
    with pytest.raises(ValueError, match=r"channels: 'audio' is not one of"):
        predict_split(model, dataset, manifest, store, tok, "train", tmp_path / "x", channels="audio")
