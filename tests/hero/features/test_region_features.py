"""Region features: cut from the CNN's feature map at extraction, stored in their own memory-mapped shard files,
imported from a HERO video_db, and carried into batches; a store without them reads as before."""

import dataclasses

import numpy as np
import pytest
import torch

from hero.config import ConfigError, from_dict
from hero.corpus.errors import CorpusError
from hero.corpus.manifest import Manifest
from hero.data.collate import collate_videos
from hero.features.extract import ExtractConfig, run_extraction
from hero.features.lmdb_import import import_video_db, write_video_db
from hero.features.regions import RegionConfig, cut_regions
from hero.features.store import FeatureStore, StoreWriter, consolidate


def _write(root, videos, regions=True):
    w = StoreWriter(root)
    for vid, n in videos.items():
        rng = np.random.default_rng(n)
        extra = {"regions": rng.normal(size=(n, 3, 5)).astype(np.float32),
                 "boxes": rng.uniform(0, 0.5, size=(n, 3, 4)).astype(np.float32)} if regions else {}
        w.add(vid, rng.normal(size=(n, 8)).astype(np.float32), key=vid, clip_len=1.5, extractor="t", dim=8, **extra)
    w.close()
    return consolidate(root)


def test_store_round_trip_with_regions(tmp_path):
    index = _write(tmp_path / "s", {"a": 4, "b": 2})
    _write(tmp_path / "s", {"c": 3}, regions=False)            # one store, shards with and without regions
    store = FeatureStore(tmp_path / "s")
    assert index["regions"] == [[3, 5]]
    for vid, n in {"a": 4, "b": 2}.items():
        rng = np.random.default_rng(n)
        reg, box, feats = rng.normal(size=(n, 3, 5)), rng.uniform(0, 0.5, size=(n, 3, 4)), rng.normal(size=(n, 8))
        r, b = store.regions(vid)
        assert isinstance(r, np.memmap) and r.dtype == np.float16 and b.dtype == np.float32
        np.testing.assert_allclose(store[vid], feats, atol=2e-3, rtol=1e-3)
        np.testing.assert_allclose(r, reg, atol=2e-3, rtol=1e-3)
        np.testing.assert_allclose(b, box, rtol=1e-6)
        assert store.entry(vid)["regions"] == 3 and store.entry(vid)["region_dim"] == 5
    assert store["c"].shape == (3, 8) and not store.has_regions("c") and "regions" not in store.entry("c")
    assert store.check_regions(["a", "b"]) == (3, 5)
    assert store.garbage() == []                                   # region files belong to their shard


def test_a_store_without_regions_is_refused_in_one_line(tmp_path):
    _write(tmp_path / "s", {"a": 2}, regions=False)
    store = FeatureStore(tmp_path / "s")
    with pytest.raises(CorpusError) as err:
        store.check_regions(["a"])
    msg = str(err.value)
    assert "\n" not in msg and str(tmp_path / "s") in msg and "[features.no_regions]" in msg and "'a'" in msg


def test_region_input_is_checked(tmp_path):
    w = StoreWriter(tmp_path / "s")
    ok = {"key": "k", "clip_len": 1.5, "extractor": "t"}
    with pytest.raises(CorpusError, match="features.wrong_dim"):
        w.add("a", np.ones((2, 4), np.float32), regions=np.ones((3, 2, 5), np.float32),
              boxes=np.zeros((3, 2, 4), np.float32), **ok)
    with pytest.raises(CorpusError, match="normalised"):
        w.add("a", np.ones((2, 4), np.float32), regions=np.ones((2, 2, 5), np.float32),
              boxes=np.full((2, 2, 4), 2.0, np.float32), **ok)


@pytest.mark.parametrize("compressed", [False, True])
def test_video_db_import_keeps_regions(tmp_path, compressed):
    rng = np.random.default_rng(0)
    videos = {"v1": {"features": rng.normal(size=(4, 6)).astype(np.float32),
                     "regions": rng.normal(size=(4, 2, 3)).astype(np.float32),
                     "boxes": rng.uniform(0, 0.5, size=(4, 2, 4)).astype(np.float32)},
              "v2": rng.normal(size=(3, 6)).astype(np.float32)}
    db = write_video_db(tmp_path / "db", videos, compressed=compressed, id2nframe={"v1": 3, "v2": 3})
    import_video_db(db, tmp_path / "store")
    store = FeatureStore(tmp_path / "store")
    r, b = store.regions("v1")
    assert r.shape == (3, 2, 3)                                   # cut to id2nframe like the features
    np.testing.assert_allclose(b, videos["v1"]["boxes"][:3], rtol=1e-6)
    assert not store.has_regions("v2") and store["v2"].shape == (3, 6)


def test_grid_and_motion_cells():
    fmap = torch.arange(2 * 3 * 6 * 6, dtype=torch.float32).view(2, 3, 6, 6)
    motion = torch.zeros(2, 6, 6)
    motion[0, 5, 1], motion[0, 2, 4] = 9.0, 5.0
    reg, box = cut_regions(fmap, motion, RegionConfig(grid=2, top_motion=2))
    assert reg.shape == (2, 6, 3) and box.shape == (2, 6, 4)
    torch.testing.assert_close(reg[:, 0], fmap[:, :, :3, :3].mean((2, 3)))          # top-left grid cell
    torch.testing.assert_close(box[0, :4], torch.tensor([[0, 0, .5, .5], [.5, 0, .5, .5], [0, .5, .5, .5], [.5, .5, .5, .5]]))
    torch.testing.assert_close(reg[0, 4], fmap[0, :, 5, 1])                          # most moving cell first
    torch.testing.assert_close(box[0, 4], torch.tensor([1 / 6, 5 / 6, 1 / 6, 1 / 6]))
    torch.testing.assert_close(reg[0, 5], fmap[0, :, 2, 4])
    torch.testing.assert_close(reg[1, 4:], fmap[1, :, 0, :2].T)                      # still clip: row-major order


def test_region_config_is_checked():
    with pytest.raises(ConfigError, match="features.extract.regions.grid"):
        from_dict(ExtractConfig, {"regions": {"grid": 4}})
    assert from_dict(ExtractConfig, {"regions": {"grid": 3, "top_motion": 2}}).regions.num_regions == 11
    assert not ExtractConfig().regions.enabled


def test_extraction_with_regions_reuses_the_feature_map(small_corpus, tmp_path):
    """One video: the pooled features are those of an extraction without regions (the same CNN pass), the
    regions come with boxes, and the region settings are part of the content key."""
    _, manifest = small_corpus
    vid = next(iter(manifest.videos))
    one = dataclasses.replace(manifest, videos={vid: manifest.videos[vid]})
    plain = run_extraction(one, tmp_path / "s", ExtractConfig(workers=1, progress=False))
    cfg = ExtractConfig(workers=1, progress=False, regions=RegionConfig(grid=2, top_motion=3))
    stats = run_extraction(one, tmp_path / "s", cfg)
    assert plain["extracted"] == stats["extracted"] == 1                # the region settings changed the key
    assert run_extraction(one, tmp_path / "s", cfg)["extracted"] == 0    # and a re-run is a cache hit
    store = FeatureStore(tmp_path / "s")
    reg, box = store.regions(vid)
    n = manifest.videos[vid].num_clips
    assert reg.shape == (n, 7, 1280) and box.shape == (n, 7, 4) and np.isfinite(reg).all()
    old = [p for p in (tmp_path / "s" / "shards").glob("*.npy") if not p.name.endswith(("regions.npy", "boxes.npy"))]
    first = min(old, key=lambda p: p.stat().st_mtime_ns)
    np.testing.assert_array_equal(np.load(first)[:n], store[vid])      # pooled: identical with and without regions
    # the grid cells average the 1280-d map the pooled appearance vector averages
    np.testing.assert_allclose(reg[:, :4].astype(np.float32).mean(1), store[vid][:, :1280].astype(np.float32),
                               atol=2e-2, rtol=1e-2)


def test_collate_shapes_with_regions():
    items = [{"video_id": f"v{n}", "frame_feats": torch.ones(n, 8), "sub_ids": [[2, 5]], "sub_frames": [[0]],
              "region_feats": torch.ones(n, 3, 5), "region_boxes": torch.full((n, 3, 4), 0.25)} for n in (2, 4)]
    b = collate_videos(items)
    assert b.region_feats.shape == (2, 4, 3, 5) and b.region_boxes.shape == (2, 4, 3, 4)
    assert (b.region_feats[0, 2:] == 0).all() and (b.region_feats[1] == 1).all()
    assert b.trimmed().region_feats.shape == (2, 4, 3, 5)
    assert not collate_videos([{k: v for k, v in it.items() if not k.startswith("region")} for it in items]).has_regions
    with pytest.raises(ValueError, match="'v2' has no region features"):
        collate_videos([items[1], {k: v for k, v in items[0].items() if not k.startswith("region")} | {"video_id": "v2"}])
