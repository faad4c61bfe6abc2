import json
import os

import numpy as np
import pytest

from hero.corpus.errors import CorpusError
from hero.features.store import FeatureStore, StoreWriter, consolidate, entry_key


def _add(w, vid, n, dim=8, value=None, key=None):
    feats = np.full((n, dim), value, np.float32) if value is not None else np.random.default_rng(n).normal(size=(n, dim))
    w.add(vid, feats, key=key or f"k-{vid}", clip_len=1.5, extractor="test", video_sha256="sha", dim=dim)
    return feats


def test_round_trip_memory_mapped_float16(tmp_path):
    w = StoreWriter(tmp_path, max_rows=10)
    a = _add(w, "a", 6)
    b = _add(w, "b", 7)  # 13 rows >= 10: a shard is written
    c = _add(w, "c", 2)
    w.close()
    assert len(w.shards_written) == 2
    store = FeatureStore(tmp_path)
    for vid, x in (("a", a), ("b", b), ("c", c)):
        got = store[vid]
        assert isinstance(got, np.memmap) or isinstance(got.base, np.memmap)
        assert got.dtype == np.float16
        np.testing.assert_allclose(got, x, rtol=1e-3, atol=1e-3)
    index = consolidate(tmp_path)
    assert index["dims"] == [8] and index["clip_lens"] == [1.5] and index["num_clips"] == 15
    assert index["videos"]["b"]["key"] == "k-b" and index["videos"]["b"]["video_sha256"] == "sha"
    on_disk = json.loads((tmp_path / "index.json").read_text())
    assert on_disk["videos"].keys() == {"a", "b", "c"}


@pytest.mark.parametrize(("bad", "rule"), [
    (np.array([[1.0, np.nan]] * 3), "features.non_finite"),
    (np.ones((3, 5)), "features.wrong_dim"),
    (np.ones((0, 8)), "features.wrong_dim"),
    (np.full((2, 8), 1e6), "features.non_finite"),  # overflows float16
])
def test_bad_features_are_rejected_and_nothing_is_written(tmp_path, bad, rule):
    w = StoreWriter(tmp_path)
    with pytest.raises(CorpusError) as err:
        w.add("v1", bad, key="k", clip_len=1.5, extractor="x", dim=8 if bad.shape[1] != 2 else 2)
    assert err.value.rule == rule and "v1" in err.value.file
    w.close()
    assert os.listdir(tmp_path / "shards") == []


def test_a_crash_while_writing_leaves_no_committed_shard(tmp_path, monkeypatch):
    w = StoreWriter(tmp_path)
    _add(w, "a", 4)
    real_save = np.save

    def half_save(f, arr):
        real_save(f, arr[:1])
        raise OSError("disk full")

    monkeypatch.setattr(np, "save", half_save)
    with pytest.raises(OSError):
        w.close()
    assert os.listdir(tmp_path / "shards") == []  # the temp file is gone; no .npy, no .json
    monkeypatch.undo()
    # an .npy without its .json (killed between the two writes) is not committed either
    (tmp_path / "shards" / "orphan.npy").write_bytes(b"junk")
    store = FeatureStore(tmp_path)
    assert len(store) == 0 and [p.name for p in store.garbage()] == ["orphan.npy"]


def test_newer_entry_wins_and_cache_lookup_by_key(tmp_path):
    w = StoreWriter(tmp_path)
    _add(w, "a", 3, value=1.0, key="old")
    w.close()
    w = StoreWriter(tmp_path, rank=1)
    _add(w, "a", 4, value=2.0, key="new")
    w.close()
    store = FeatureStore(tmp_path)
    assert store[("a")].shape == (4, 8) and float(store["a"][0, 0]) == 2.0
    assert store.has("a", "new") and not store.has("a", "old")
    consolidate(tmp_path)
    assert FeatureStore(tmp_path).has("a", "new")
    store.check({"a": 4}, 8)
    with pytest.raises(CorpusError, match=r"\[features.wrong_dim\]"):
        store.check({"a": 5}, 8)
    with pytest.raises(CorpusError, match=r"\[features.missing\]"):
        store.check({"zzz": 1}, 8)


def test_entry_key_depends_on_every_input():
    fp = {"name": "x", "config": {"a": 1}, "weights_sha256": "w"}
    k = entry_key("v", fp, 1.5)
    assert k == entry_key("v", dict(fp), 1.5)
    assert len({k, entry_key("v2", fp, 1.5), entry_key("v", {**fp, "config": {"a": 2}}, 1.5),
                entry_key("v", {**fp, "weights_sha256": "w2"}, 1.5), entry_key("v", fp, 2.0)}) == 5
