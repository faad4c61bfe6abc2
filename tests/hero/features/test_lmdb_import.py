"""Import of precomputed features in the original HERO video_db layout (docs/hero-fidelity.md d.1), written here."""

import numpy as np
import pytest

from hero.corpus.errors import CorpusError
from hero.features.lmdb_import import import_video_db, write_video_db
from hero.features.store import FeatureStore


@pytest.mark.parametrize("compressed", [False, True])
def test_import_reads_the_original_layout(tmp_path, compressed):
    rng = np.random.default_rng(0)
    videos = {"friends_s01e01_seg01_clip_00": rng.normal(size=(5, 4352)).astype(np.float32),
              "s03e21_seg02_clip_08": rng.normal(size=(3, 4352)).astype(np.float16)}
    db = write_video_db(tmp_path / "video_db" / "tv", videos, compressed=compressed,
                        id2nframe={"friends_s01e01_seg01_clip_00": 4, "s03e21_seg02_clip_08": 3})
    stats = import_video_db(db, tmp_path / "store")
    assert stats["imported"] == 2 and stats["dim"] == 4352 and stats["clip_len"] == 1.5
    store = FeatureStore(tmp_path / "store")
    np.testing.assert_allclose(store["friends_s01e01_seg01_clip_00"], videos["friends_s01e01_seg01_clip_00"][:4],
                               atol=2e-3, rtol=1e-3)  # truncated to id2nframe, float16 on disk
    assert store["s03e21_seg02_clip_08"].shape == (3, 4352)
    assert store.entry("s03e21_seg02_clip_08")["extractor"].startswith("video_db:resnet_slowfast_1.5")
    # the LMDB folder itself works too
    name = "resnet_slowfast_1.5" + ("_compressed" if compressed else "")
    assert import_video_db(db / name, tmp_path / "store2", max_clips=2)["imported"] == 2
    assert FeatureStore(tmp_path / "store2")["friends_s01e01_seg01_clip_00"].shape == (2, 4352)


@pytest.mark.parametrize(("bad", "rule"), [
    (np.full((3, 16), np.nan, np.float32), "features.non_finite"),
    (np.ones((3, 12), np.float32), "features.wrong_dim"),
])
def test_bad_feature_entries(tmp_path, bad, rule):
    videos = {"a": np.ones((3, 16), np.float32), "b": bad, "c": np.zeros((2, 16), np.float32)}
    db = write_video_db(tmp_path / "db", videos)
    with pytest.raises(CorpusError) as err:
        import_video_db(db, tmp_path / "store", dim=16)
    assert err.value.rule == rule and "resnet_slowfast_1.5" in err.value.file and "'b'" in err.value.file
    stats = import_video_db(db, tmp_path / "store2", dim=16, on_error="skip")
    assert stats["imported"] == 2 and stats["report"]["skipped"] == {rule: 1}
    assert set(FeatureStore(tmp_path / "store2").videos) == {"a", "c"}
