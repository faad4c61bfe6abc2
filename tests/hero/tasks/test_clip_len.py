"""The corpus clip length is a fact of the data, read from the manifest by every task: a corpus ingested at 2.0 s
per clip (HERO's How2 features) gets TVR / TVQA / TVC span labels in 2-s frames, and features extracted at another
clip length are refused with an error naming both sources."""

import math

import numpy as np
import pytest

from hero.corpus import CorpusConfig, CorpusError, ingest_corpus
from hero.data.task_collate import moment_frames, span_labels
from hero.features.store import StoreWriter, consolidate
from hero.synth import SynthConfig, generate_corpus
from hero.train.config import RunConfig
from hero.train.finetune import build_task_dataset, build_task_model

DIM = 16
SMALL = {"hidden_size": 32, "num_heads": 2, "intermediate_size": 64, "cross_layers": 1, "temporal_layers": 1,
         "feature_dim": DIM, "dropout": 0.0, "attention_dropout": 0.0}


def _store(root, manifest, clip_len, name):
    rng = np.random.default_rng(0)
    w = StoreWriter(root / name)
    for vid, entry in manifest.videos.items():
        w.add(vid, rng.normal(size=(entry.num_clips, DIM)).astype(np.float32), key=f"k-{vid}", clip_len=clip_len,
              extractor="random", dim=DIM)
    w.close()
    consolidate(root / name)
    return str(root / name)


@pytest.fixture(scope="module")
def corpus2(tmp_path_factory):
    root = tmp_path_factory.mktemp("clip2")
    generate_corpus(root / "c", SynthConfig(size="tiny", seed=11, num_videos=5, workers=1))
    manifest = ingest_corpus(CorpusConfig(path=str(root / "c"), clip_len=2.0))
    manifest.save(root / "manifest.json")
    return root, manifest, _store(root, manifest, 2.0, "store2"), _store(root, manifest, 1.5, "store15")


def _dataset(root, store, dataset):
    cfg = RunConfig.from_dict({"preset": "hero-mini", "model": SMALL, "text_init": False, "task": dataset,
                               "data": {"source": "corpus", "path": str(root / "manifest.json"), "features": store}})
    preset = cfg.build_preset()
    return build_task_dataset(cfg.data, dataset, build_task_model(dataset, cfg.finetune, preset), preset)


@pytest.mark.parametrize("dataset", ["tvr", "tvqa"])
def test_span_labels_are_in_the_corpus_clip_length(corpus2, dataset):
    root, manifest, store2, _ = corpus2
    assert manifest.clip_len == 2.0
    ds, collate = _dataset(root, store2, dataset)
    items = [ds[i] for i in range(min(len(ds), 8))]
    inputs = collate(items)
    frames = inputs.batch.frame_mask.sum(1).tolist()
    owner = inputs.query_video if dataset == "tvr" else inputs.question_video
    want = [span_labels(it["ts"], int(frames[int(v)]), 2.0) for it, v in zip(items, owner)]
    assert [(int(s), int(e)) for s, e in zip(inputs.start, inputs.end)] == want
    # the labels a 1.5-s copy would have given differ: the test can tell the two apart
    old = [span_labels(it["ts"], int(frames[int(v)]), 1.5) for it, v in zip(items, owner)]
    assert want != old
    # and they cover the annotated seconds: frame f spans [2f, 2f + 2)
    for it, (s, e) in zip(items, want):
        if it["ts"] is not None and e > s:
            assert s * 2.0 <= it["ts"][0] < (s + 1) * 2.0 or s == int(frames[0]) - 1


def test_caption_moments_are_in_the_corpus_clip_length(corpus2):
    root, manifest, store2, _ = corpus2
    ds, collate = _dataset(root, store2, "tvc")
    items = [ds[i] for i in range(min(len(ds), 6))]
    inputs = collate(items)
    frames = inputs.batch.frame_mask.sum(1).tolist()
    want = [moment_frames(it["ts"], int(frames[int(v)]), 2.0) for it, v in zip(items, inputs.caption_video)]
    assert [(int(s), int(e)) for s, e in zip(inputs.moment_start, inputs.moment_end)] == want
    assert all(math.floor(it["ts"][0] / 2.0) == s or s == int(frames[int(v)]) - 1
               for it, (s, _), v in zip(items, want, inputs.caption_video))


def test_features_at_another_clip_length_are_refused(corpus2):
    root, manifest, _, store15 = corpus2
    with pytest.raises(CorpusError, match=r"extracted at 1\.5 s per clip; the manifest of .* says 2\.0 s"):
        _dataset(root, store15, "tvr")


def test_no_task_config_carries_a_clip_length():
    from hero.tasks import TASKS

    for task in TASKS.values():
        assert "clip_len" not in task.config_cls.__dataclass_fields__, task.name
