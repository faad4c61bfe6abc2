"""The storage layer's users against a real moto server: a corpus ingested from s3://, a feature store published
to and read from s3://, checkpoints mirrored to s3:// during training and used to initialise another run."""

import dataclasses
import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from s3_server import FAKE_CREDENTIALS
from safetensors.torch import load_file

from hero.corpus import CorpusConfig, CorpusError, ingest_corpus
from hero.features.store import FeatureStore, StoreWriter, publish_store
from hero.storage import open_storage
from hero.train import run
from hero.train.checkpoint import fetch_checkpoint, publish_checkpoint
from hero.train.config import RunConfig
from hero.train.distributed import DistInfo
from hero.train.trainer import Trainer


@pytest.fixture(scope="session")
def local_corpus(tmp_path_factory):
    from hero.synth import SynthConfig, generate_corpus

    root = tmp_path_factory.mktemp("s3corpus") / "tiny"
    generate_corpus(root, SynthConfig(size="tiny", seed=0, num_videos=3, workers=1))
    return root


def upload_tree(local: Path, uri: str) -> None:
    dest = open_storage(uri, create=True)
    for p in sorted(local.rglob("*")):
        if p.is_file():
            dest.upload_file(p, p.relative_to(local).as_posix())


def test_corpus_ingested_from_s3_equals_the_local_ingest(bucket, local_corpus):
    upload_tree(local_corpus, f"{bucket.uri}/corpora/tiny")
    remote = ingest_corpus(CorpusConfig(path=f"{bucket.uri}/corpora/tiny"))
    local = ingest_corpus(CorpusConfig(path=str(local_corpus)))
    assert remote.root == f"{bucket.uri}/corpora/tiny"
    relocated = {k: dataclasses.replace(v, subtitle_source=v.subtitle_source.replace(remote.root, local.root))
                 for k, v in remote.videos.items()}
    assert len(remote.videos) == 3 and relocated == local.videos  # durations, hashes, subtitles, alignment
    assert remote.videos["synth_00000"].subtitle_source == f"{remote.root}/subtitles/synth_00000.srt"
    assert remote.tasks == local.tasks and remote.tasks


def test_bad_video_in_an_s3_corpus_is_named_by_its_uri(bucket, local_corpus):
    upload_tree(local_corpus, f"{bucket.uri}/c")
    bucket.client.put_object(Bucket=bucket.name, Key="c/videos/broken.mp4", Body=b"not a video")
    with pytest.raises(CorpusError, match=f"^{bucket.uri}/c/videos/broken.mp4: \\[video.undecodable\\]"):
        ingest_corpus(CorpusConfig(path=f"{bucket.uri}/c"))
    with pytest.raises(FileNotFoundError, match=f"{bucket.uri}/no-corpus: no object under this prefix"):
        ingest_corpus(CorpusConfig(path=f"{bucket.uri}/no-corpus"))


def write_store(root: Path) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    w = StoreWriter(root, max_rows=10)
    feats = {}
    for vid, n in (("v1", 6), ("v2", 7), ("v3", 3)):  # two shards
        feats[vid] = rng.normal(size=(n, 8)).astype(np.float32)
        w.add(vid, feats[vid], key=f"k-{vid}", clip_len=1.5, extractor="test", dim=8)
    w.close()
    return feats


def test_feature_store_published_to_s3_reads_back_equal(bucket, proxy, tmp_path):
    feats = write_store(tmp_path / "store")
    uri = f"{bucket.uri}/features"
    index = publish_store(tmp_path / "store", uri)
    puts = [s.path.split("?")[0].removeprefix(f"/{bucket.name}/features/") for s in proxy.seen if s.method == "PUT"]
    assert len(index["shards"]) == 2 and puts[-1] == "index.json"  # the index is the last thing published
    for shard in index["shards"]:
        assert puts.index(f"shards/{shard}.npy") < puts.index(f"shards/{shard}.json")

    store = FeatureStore(uri)
    local = FeatureStore(tmp_path / "store")
    assert len(store) == 3 and store.videos == local.videos
    for vid, x in feats.items():
        got = store[vid]
        assert isinstance(got.base, np.memmap) and got.dtype == np.float16
        np.testing.assert_array_equal(got, local[vid])
        np.testing.assert_allclose(got, x, rtol=1e-3, atol=1e-3)
    cached = sorted(p.name for p in (tmp_path / "cache").rglob("*.npy"))
    assert cached == sorted(f"{s}.npy" for s in index["shards"])  # fetched into the content-addressed cache

    n = len(proxy.seen)  # publishing again sends only index.json; a second reader downloads nothing
    publish_store(tmp_path / "store", uri)
    FeatureStore(uri)["v2"]
    assert [s.method for s in proxy.seen[n:]].count("PUT") == 1
    assert not [s for s in proxy.seen[n:] if s.method == "GET" and s.path.split("?")[0].endswith(".npy")]


def test_feature_store_refuses_what_is_not_one(bucket, tmp_path):
    with pytest.raises(FileNotFoundError, match=f"{bucket.uri}/nothing: no object under this prefix"):
        FeatureStore(f"{bucket.uri}/nothing")
    with pytest.raises(ValueError, match="written locally, then published"):
        StoreWriter(f"{bucket.uri}/features")


@pytest.fixture
def tiny_cfg(tmp_path) -> RunConfig:
    return RunConfig.from_dict({
        "preset": "hero-tiny",
        "data": {"source": "random", "size": 16, "frames": [4, 6], "sub_len": [3, 5]},
        "train": {"global_batch": 2, "max_steps": 2, "ckpt_every": 1, "log_every": 1, "run_dir": str(tmp_path / "a")},
    })


def test_checkpoints_mirrored_to_s3_and_loaded_back(bucket, tiny_cfg, tmp_path, caplog):
    caplog.set_level(logging.DEBUG, logger="hero")
    mirror = f"{bucket.uri}/runs/a"
    run(tiny_cfg.override(f"train.mirror_to={mirror}"))
    remote = sorted(open_storage(mirror).list_files(""))
    assert remote == [f"step-0000000{s}/{n}" for s in (1, 2)
                      for n in ("manifest.json", "model.safetensors", "state.json", "state.safetensors")]

    fetched = fetch_checkpoint(mirror)  # a run folder: its newest step
    assert fetched.name == "step-00000002" and str(fetched).startswith(str(tmp_path / "cache"))
    for name in ("model.safetensors", "state.safetensors"):
        a, b = load_file(str(tmp_path / "a" / "step-00000002" / name)), load_file(str(fetched / name))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert fetch_checkpoint(f"{mirror}/step-00000002") == fetched  # cached by manifest: no second copy

    # a fresh run initialised from the mirror starts from those weights
    cfg = tiny_cfg.override(f"train.run_dir={tmp_path / 'b'}", f"train.init_from={mirror}/step-00000001")
    trainer = Trainer(cfg, DistInfo(device=torch.device("cpu")))
    want = load_file(str(tmp_path / "a" / "step-00000001" / "model.safetensors"))
    got = trainer.model.state_dict()
    assert all(torch.equal(got[k], v) for k, v in want.items())

    # the credentials appear in no log line and no file the run wrote
    secret, key_id = FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"], FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"]
    assert "mirrored to" in caplog.text and secret not in caplog.text and key_id not in caplog.text
    for p in (tmp_path / "a").rglob("*"):
        if p.is_file():
            assert secret.encode() not in p.read_bytes() and key_id.encode() not in p.read_bytes()
    assert json.loads((fetched / "state.json").read_text())["config"]["train"]["mirror_to"] == mirror


def test_damaged_published_checkpoint_is_refused(bucket, tiny_cfg, tmp_path):
    run(tiny_cfg.override("train.max_steps=1"))
    step = tmp_path / "a" / "step-00000001"
    published = publish_checkpoint(step, f"{bucket.uri}/runs/x")
    assert published == f"{bucket.uri}/runs/x/step-00000001"
    data = bytearray((step / "model.safetensors").read_bytes())
    data[-5] ^= 0xFF
    bucket.client.put_object(Bucket=bucket.name, Key="runs/x/step-00000001/model.safetensors", Body=bytes(data))
    with pytest.raises(ValueError, match="runs/x/step-00000001 is invalid: model.safetensors does not match its checksum"):
        fetch_checkpoint(published)
    assert not any(p.name.startswith("step-") for p in (tmp_path / "cache").rglob("*"))  # nothing cached
    with pytest.raises(FileNotFoundError, match="no published checkpoint"):
        fetch_checkpoint(f"{bucket.uri}/runs")
