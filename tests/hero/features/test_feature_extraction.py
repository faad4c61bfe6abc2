import shutil

import numpy as np
import pytest
import torch
from torch import nn

from hero.corpus import CorpusConfig, CorpusError, ingest_corpus
from hero.features import (ExtractConfig, FeatureStore, build_extractor, consolidate,
                           extract_features, register_extractor, run_extraction)
from hero.features.appearance import TorchImageExtractor

FAST = {"image_size": 64, "batch_size": 16}


def test_default_extractor_gives_2648_finite_dims_per_clip(small_corpus, tmp_path):
    root, manifest = small_corpus
    vid = next(iter(manifest.videos))
    one = manifest.__class__(root=manifest.root, clip_len=manifest.clip_len, videos={vid: manifest.videos[vid]})
    stats = run_extraction(one, tmp_path / "store", ExtractConfig(progress=False))
    store = FeatureStore(tmp_path / "store")
    feats = np.asarray(store[vid], np.float32)
    assert stats["extracted"] == 1 and feats.shape == (manifest.videos[vid].num_clips, 2648)
    assert np.isfinite(feats).all() and store[vid].dtype == np.float16
    from hero.presets import get_preset

    assert get_preset("hero-mini").model.feature_dim == 2648
    hist = feats[:, -24:].reshape(-1, 3, 8)
    np.testing.assert_allclose(hist.sum(-1), 1.0, atol=2e-2)  # colour histograms
    energy = feats[:, 2560:2576]
    assert (energy >= 0).all() and energy.max() > 0  # something moves in some clip


def test_second_run_is_a_cache_hit_and_changes_invalidate_what_they_should(small_corpus, tmp_path):
    root, manifest = small_corpus
    cfg = ExtractConfig(extractor_config=FAST, progress=False)
    first = run_extraction(manifest, tmp_path / "store", cfg)
    assert first["extracted"] == len(manifest.videos) and first["cached"] == 0
    before = {v: FeatureStore(tmp_path / "store").entry(v)["key"] for v in manifest.videos}
    second = run_extraction(manifest, tmp_path / "store", cfg)
    assert second["extracted"] == 0 and second["cached"] == len(manifest.videos)
    # batch size does not change the output: still a hit
    assert run_extraction(manifest, tmp_path / "store", ExtractConfig(extractor_config={**FAST, "batch_size": 3},
                                                                     progress=False))["extracted"] == 0
    # a changed video re-extracts that video only
    copy = tmp_path / "corpus"
    shutil.copytree(root, copy)
    vids = sorted(manifest.videos)
    shutil.copy(copy / "videos" / f"{vids[1]}.mp4", copy / "videos" / f"{vids[0]}.mp4")
    changed = ingest_corpus(CorpusConfig(path=str(copy), tasks=(), ts_tolerance=100))
    third = run_extraction(changed, tmp_path / "store", cfg)
    assert third["extracted"] == 1 and third["cached"] == len(vids) - 1
    # a changed extractor config re-extracts everything
    fourth = run_extraction(manifest, tmp_path / "store", ExtractConfig(extractor_config={**FAST, "hist_bins": 4},
                                                                        progress=False))
    assert fourth["extracted"] == len(vids)
    store = FeatureStore(tmp_path / "store")
    assert store[vids[1]].shape[1] == 2648 - 12
    assert all(store.entry(v)["key"] != before[v] for v in vids)
    assert store.garbage()  # the superseded shards


def test_ranks_split_the_videos_and_together_cover_all(small_corpus, tmp_path):
    _, manifest = small_corpus
    cfg = ExtractConfig(extractor_config=FAST, progress=False)
    ex = build_extractor("efficientnet-lite0", FAST)
    a = extract_features(manifest, tmp_path / "s", cfg, rank=0, world_size=2, extractor=ex)
    b = extract_features(manifest, tmp_path / "s", cfg, rank=1, world_size=2, extractor=ex)
    assert a["extracted"] + b["extracted"] == len(manifest.videos) and min(a["extracted"], b["extracted"]) >= 1
    assert len(FeatureStore(tmp_path / "s")) == len(manifest.videos)  # visible before consolidation
    index = consolidate(tmp_path / "s")
    assert index["num_videos"] == len(manifest.videos) and index["dims"] == [2648]


class TinyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, stride=2)

    def forward(self, x):
        return self.conv(x)


def test_user_extractor_with_weights_from_a_path(small_corpus, tmp_path):
    _, manifest = small_corpus
    weights = tmp_path / "tiny.pt"
    torch.manual_seed(0)
    torch.save(TinyNet().state_dict(), weights)

    @register_extractor("tiny-test-net")
    def build(config, path):
        net = TinyNet()
        net.load_state_dict(torch.load(path, weights_only=True))
        return TorchImageExtractor("tiny-test-net", net, dim=6, weights=path, image_size=config.get("image_size", 32))

    cfg = ExtractConfig(extractor="tiny-test-net", weights=str(weights), progress=False)
    assert run_extraction(manifest, tmp_path / "s", cfg)["extracted"] == len(manifest.videos)
    assert run_extraction(manifest, tmp_path / "s", cfg)["extracted"] == 0
    vid = next(iter(manifest.videos))
    assert FeatureStore(tmp_path / "s")[vid].shape == (manifest.videos[vid].num_clips, 6)
    torch.save(TinyNet().state_dict(), weights)  # new weights -> new hash -> re-extracted
    assert run_extraction(manifest, tmp_path / "s", cfg)["extracted"] == len(manifest.videos)


def test_undecodable_video_at_extraction(small_corpus, tmp_path):
    root, manifest = small_corpus
    copy = tmp_path / "corpus"
    shutil.copytree(root, copy)
    m = ingest_corpus(CorpusConfig(path=str(copy), tasks=()))
    bad = sorted(m.videos)[0]
    (copy / "videos" / f"{bad}.mp4").write_bytes(b"\x00" * 1000)
    with pytest.raises(CorpusError, match=r"\[video.undecodable\]") as err:
        run_extraction(m, tmp_path / "s", ExtractConfig(extractor_config=FAST, progress=False))
    assert err.value.file.endswith(f"{bad}.mp4")
    stats = run_extraction(m, tmp_path / "s", ExtractConfig(extractor_config=FAST, progress=False, on_error="skip"))
    assert stats["skipped"] == 1 and stats["extracted"] == len(m.videos) - 1


@pytest.mark.slow
def test_worker_processes(small_corpus, tmp_path):
    _, manifest = small_corpus
    stats = run_extraction(manifest, tmp_path / "s", ExtractConfig(extractor_config=FAST, progress=False, workers=2))
    assert stats["extracted"] == len(manifest.videos) and len(stats["per_rank"]) == 2
    assert FeatureStore(tmp_path / "s").videos.keys() == manifest.videos.keys()


def test_one_progress_bar_over_every_rank(tmp_path, capfd):
    """Workers write their clips done to a file each; the parent draws one bar over all of them (total = every
    rank's clips), and none when progress is off."""
    import subprocess
    import sys

    from hero.features.extract import _poll_progress

    script = ("import sys, time\nfrom hero.features.extract import _FileProgress\n"
              "bar = _FileProgress(sys.argv[1])\n"
              "for _ in range(int(sys.argv[2])):\n    bar.update(5); time.sleep(0.05)\nbar.close()\n")
    for enabled in (True, False):
        files = [tmp_path / f"{enabled}-progress-{r}" for r in range(2)]
        procs = [subprocess.Popen([sys.executable, "-c", script, str(f), str(n)]) for f, n in zip(files, (6, 10))]
        assert _poll_progress(procs, files, total=80, enabled=enabled) == [0, 0]
        err = capfd.readouterr().err
        assert ("80/80" in err and "features" in err and "30/30" not in err) if enabled else "features" not in err
