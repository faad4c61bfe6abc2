"""The frames-only probe on a hand-made corpus whose clip features show the queries' words, or show nothing."""

import json

import numpy as np
import pytest
import torch

from hero.corpus.manifest import Manifest, VideoEntry
from hero.eval.baselines.frames_probe import ProbeConfig, frames_probe, store_features

CLIP = 1.5
THINGS = ["apple", "hat", "ball", "cup", "lamp", "book", "drum", "kite"]


class BagOfWords:
    def __init__(self) -> None:
        self.vocab: dict[str, int] = {}

    def encode(self, texts):
        out = torch.zeros(len(texts), 64)
        for i, t in enumerate(texts):
            for w in t.lower().strip(".").split():
                out[i, self.vocab.setdefault(w, len(self.vocab))] += 1
        return torch.nn.functional.normalize(out, dim=-1)


def _corpus(visible: bool, seed: int = 0):
    """40 train and 8 val videos of 6 clips; each shows one thing in clips 2-3 (a one-hot block in its features when
    ``visible``, else nothing but noise), and one query names it."""
    rng = np.random.default_rng(seed)
    videos, feats, tasks = {}, {}, {"train": [], "val": []}
    for i in range(48):
        split = "train" if i < 40 else "val"
        vid, thing = f"v{i:02d}", THINGS[i % len(THINGS)]
        f = rng.normal(0, 1, (6, 32)).astype(np.float32)
        if visible:
            f[2:4, THINGS.index(thing) * 4:(THINGS.index(thing) + 1) * 4] += 3.0
        feats[vid] = f
        videos[vid] = VideoEntry(vid_name=vid, path=f"videos/{vid}.mp4", sha256=f"{i:064d}", duration=6 * CLIP,
                                 num_clips=6, fps=8.0, subs=[], sub_clips=[], unmatched=[])
        tasks[split].append({"id": i, "vid_name": vid, "ts": [2 * CLIP, 4 * CLIP], "desc": f"The {thing} appears.",
                             "type": "v"})
    return Manifest(root="/nonexistent", clip_len=CLIP, videos=videos, tasks={"tvr": tasks}), feats


CFG = ProbeConfig(dim=16, hidden=32, steps=150, batch=32)


def test_features_that_show_the_named_thing_are_found_and_noise_is_not():
    manifest, feats = _corpus(visible=True)
    seen = frames_probe(manifest, feats.__getitem__, BagOfWords(), "val", CFG)
    manifest, feats = _corpus(visible=False)
    blind = frames_probe(manifest, feats.__getitem__, BagOfWords(), "val", CFG)
    assert seen["videos"] == blind["videos"] == 8 and seen["chance"] == 12.5
    assert seen["vr_r1"]["v"] >= 75.0            # 8 val videos, 8 distinct things: the features tell them apart
    assert blind["vr_r1"]["v"] <= 50.0           # nothing to see: near chance (1 in 8)
    assert seen["queries"] == {"v": 8} and seen["train_queries"] == 40
    lo, hi = blind["vr_r1_interval"]["v"]
    assert lo <= blind["vr_r1"]["v"] <= hi and lo >= 0 and hi <= 100


def test_wilson_interval():
    from hero.eval.baselines.frames_probe import wilson_interval

    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == 100.0
    lo, hi = wilson_interval(24, 214)                        # 11.2%: about 7.6 to 16.2
    assert 7.0 < lo < 8.0 and 16.0 < hi < 16.5


def test_seeded():
    manifest, feats = _corpus(visible=True)
    a = frames_probe(manifest, feats.__getitem__, BagOfWords(), "val", CFG)
    b = frames_probe(manifest, feats.__getitem__, BagOfWords(), "val", CFG)
    assert a == b


def test_features_of_another_video_are_refused(tmp_path):
    from hero.features.store import StoreWriter, consolidate

    manifest, feats = _corpus(visible=True)
    writer = StoreWriter(tmp_path / "store")
    for vid in ("v00", "v01"):
        writer.add(vid, feats[vid], key=vid, clip_len=CLIP, extractor="test",
                   video_sha256=manifest.videos[vid].sha256 if vid == "v00" else "f" * 64)
    writer.close()
    consolidate(tmp_path / "store")
    features = store_features(manifest, tmp_path / "store")
    assert features("v00").shape == (6, 32)
    with pytest.raises(ValueError, match="v01.*another video's"):
        features("v01")
    with pytest.raises(KeyError, match="v02"):
        features("v02")


def test_nothing_to_learn_from_is_one_line():
    manifest, feats = _corpus(visible=True)
    manifest.tasks["tvr"]["train"] = []
    with pytest.raises(ValueError, match="tvr needs labelled train queries"):
        frames_probe(manifest, feats.__getitem__, BagOfWords(), "val", CFG)
    with pytest.raises(ValueError, match="steps must be >= 1"):
        ProbeConfig(steps=0)


def test_region_features_follow_the_pooled_ones(tmp_path):
    from hero.features.store import StoreWriter, consolidate

    manifest, feats = _corpus(visible=True)
    regions = np.arange(6 * 3 * 4, dtype=np.float32).reshape(6, 3, 4)
    boxes = np.zeros((6, 3, 4), dtype=np.float32)
    writer = StoreWriter(tmp_path / "store")
    writer.add("v00", feats["v00"], key="v00", clip_len=CLIP, extractor="test",
               video_sha256=manifest.videos["v00"].sha256, regions=regions, boxes=boxes)
    writer.close()
    consolidate(tmp_path / "store")
    x = store_features(manifest, tmp_path / "store", regions=True)("v00")
    assert x.shape == (6, 32 + 12)
    np.testing.assert_allclose(x[:, :32], feats["v00"], atol=1e-2)          # stored as float16
    np.testing.assert_array_equal(x[:, 32:], regions.reshape(6, 12))
    assert store_features(manifest, tmp_path / "store")("v00").shape == (6, 32)
