"""A corpus in S3 all the way to features, against a real moto server: `python -m hero.corpus` ingests it,
`Manifest.video_path` hands PyAV a cached copy of each video, feature extraction reads the videos from there,
and the feature store's content addresses (video sha256) are those of the local corpus. Storage failures reach the
CLI user as one line naming the URI."""

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from s3_server import FAKE_CREDENTIALS, free_port
from test_s3_consumers import upload_tree

from hero.corpus import Manifest
from hero.corpus.__main__ import main as corpus_cli
from hero.features.extract import ExtractConfig, run_extraction
from hero.features.store import FeatureStore

EXTRACT = ExtractConfig(extractor_config={"image_size": 64, "motion_frames": 4}, workers=1, progress=False)


@pytest.fixture(scope="session")
def three_videos(tmp_path_factory) -> Path:
    """A tiny synthetic corpus of 3 videos (as `python -m hero.synth --size tiny --seed 0` writes it), made once."""
    from hero.synth import SynthConfig, generate_corpus

    root = tmp_path_factory.mktemp("s3manifest") / "tiny"
    generate_corpus(root, SynthConfig(size="tiny", seed=0, num_videos=3, workers=1))
    return root


@pytest.fixture
def s3_corpus(bucket, three_videos) -> str:
    uri = f"{bucket.uri}/corpora/tiny"
    upload_tree(three_videos, uri)
    return uri


def _sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_s3_corpus_ingested_by_the_cli_extracts_like_the_local_one(s3_corpus, three_videos, tmp_path):
    assert corpus_cli(["--corpus", s3_corpus, "--out", str(tmp_path / "s3.json")]) == 0
    assert corpus_cli(["--corpus", str(three_videos), "--out", str(tmp_path / "local.json")]) == 0
    remote, local = Manifest.load(tmp_path / "s3.json"), Manifest.load(tmp_path / "local.json")
    assert remote.root == s3_corpus and list(remote.videos) == ["synth_00000", "synth_00001", "synth_00002"]

    for vid, entry in remote.videos.items():
        assert remote.video_uri(vid) == f"{s3_corpus}/videos/{vid}.mp4"
        cached = remote.video_path(vid)
        assert cached.startswith(str(tmp_path / "cache")) and Path(cached).name == f"{vid}.mp4"
        assert _sha256(cached) == entry.sha256 == local.videos[vid].sha256 == _sha256(local.video_path(vid))
        assert remote.video_path(vid) == cached  # the second call reuses the cached copy

    stats = run_extraction(remote, tmp_path / "store", EXTRACT)
    assert (stats["extracted"], stats["cached"], stats["skipped"]) == (3, 0, 0)
    run_extraction(local, tmp_path / "local-store", EXTRACT)
    from_s3, from_disk = FeatureStore(tmp_path / "store"), FeatureStore(tmp_path / "local-store")
    for vid in remote.videos:
        assert from_s3.entry(vid)["key"] == from_disk.entry(vid)["key"]  # the same content address
        np.testing.assert_array_equal(from_s3[vid], from_disk[vid])
    again = run_extraction(local, tmp_path / "store", EXTRACT)  # the local corpus finds the S3 videos' features
    assert (again["extracted"], again["cached"]) == (0, 3)

    text = (tmp_path / "s3.json").read_text()
    assert all(secret not in text for secret in FAKE_CREDENTIALS.values() if secret != "us-east-1")


def test_video_gone_from_s3_after_ingest_is_named_by_its_uri(s3_corpus, bucket, tmp_path):
    assert corpus_cli(["--corpus", s3_corpus, "--out", str(tmp_path / "m.json")]) == 0
    manifest = Manifest.load(tmp_path / "m.json")
    bucket.client.delete_object(Bucket=bucket.name, Key="corpora/tiny/videos/synth_00001.mp4")
    with pytest.raises(FileNotFoundError, match=f"^{s3_corpus}/videos/synth_00001.mp4: no such object"):
        manifest.video_path("synth_00001")


def _cli_error(capsys, corpus: str, out: Path) -> str:
    """Run the CLI expecting exit status 2; returns its one stderr line (no traceback, no summary)."""
    assert corpus_cli(["--corpus", corpus, "--out", str(out)]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and not captured.out, captured.err
    assert not out.exists()
    return lines[0]


def test_cli_storage_failures_are_one_line_naming_the_uri(s3_corpus, bucket, proxy, monkeypatch, tmp_path, capsys):
    out = tmp_path / "m.json"
    assert _cli_error(capsys, f"{bucket.uri}/nothing", out) == f"error: {bucket.uri}/nothing: no object under this prefix"
    assert _cli_error(capsys, "s3://no-such-bucket-hero/c", out).startswith("error: s3://no-such-bucket-hero/c: bucket")

    proxy.fail(n=100, status=403)  # AccessDenied on every request
    line = _cli_error(capsys, s3_corpus, out)
    assert line.startswith(f"error: {s3_corpus}: access denied (list)")

    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    line = _cli_error(capsys, s3_corpus, out)
    assert line.startswith(f"error: {s3_corpus}: list failed: Could not connect to the endpoint URL")


def test_cli_process_prints_only_the_error_line(bucket, tmp_path):
    out = subprocess.run([sys.executable, "-m", "hero.corpus", "--corpus", f"{bucket.uri}/nothing", "--out",
                          str(tmp_path / "m.json")], capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 2 and not out.stdout
    assert out.stderr == f"error: {bucket.uri}/nothing: no object under this prefix\n"  # no traceback, no log noise


def test_cli_refuses_credentials_in_the_uri_without_repeating_them(capsys, tmp_path):
    line = _cli_error(capsys, "s3://AKIAEXAMPLE:s3cr3t-value@bucket/corpus", tmp_path / "m.json")
    assert line.startswith("error: --corpus: an s3:// URI names a bucket and a prefix only")
    assert "s3cr3t-value" not in line and "AKIAEXAMPLE" not in line
