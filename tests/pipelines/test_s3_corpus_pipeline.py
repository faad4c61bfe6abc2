"""The platform path for a corpus in S3, against a real moto server on 127.0.0.1: the corpus nodes
take ``corpus.path=s3://bucket/prefix`` (fingerprinted by listing, ingested through the storage cache), and
``kedro run --pipelines=features --params=corpus.path=s3://…`` extracts its features in a subprocess whose only
credentials are the AWS environment, which leaves no secret in data/ or mlruns/."""

import json
import os
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import boto3
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "hero" / "storage"))
from s3_server import FAKE_CREDENTIALS, moto_server, s3_env
from test_s3_consumers import upload_tree

SECRETS = (FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"], FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"])


@pytest.fixture(scope="module")
def moto_endpoint(tmp_path_factory):
    with moto_server(tmp_path_factory.mktemp("moto") / "moto.log") as endpoint:
        yield endpoint


@pytest.fixture(scope="module")
def three_videos(tmp_path_factory) -> Path:
    """A tiny synthetic corpus of 3 videos (as `python -m hero.synth --size tiny --seed 0` writes it)."""
    from hero.synth import SynthConfig, generate_corpus

    root = tmp_path_factory.mktemp("s3pipeline") / "tiny"
    generate_corpus(root, SynthConfig(size="tiny", seed=0, num_videos=3, workers=1))
    return root


@pytest.fixture
def s3_corpus(moto_endpoint, three_videos, tmp_path, monkeypatch) -> str:
    """The corpus uploaded to a fresh bucket; this process's AWS environment holds only moto's endpoint and fake
    credentials (nothing from ~/.aws), and the S3 cache lies under tmp_path."""
    for key in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(key)
    env = {**s3_env(moto_endpoint), "AWS_CONFIG_FILE": str(tmp_path / "none"),
           "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"), "HERO_CACHE_DIR": str(tmp_path / "cache")}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    bucket = f"hero-{uuid.uuid4().hex[:12]}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    upload_tree(three_videos, f"s3://{bucket}/corpus")
    return f"s3://{bucket}/corpus"


READER = {"reader": {"clip_len": 1.5, "on_error": "raise"}}


def test_corpus_nodes_take_an_s3_uri(s3_corpus, tmp_path, monkeypatch):
    from pipelines.corpus.nodes import build_manifest, prepare_corpus
    from pipelines.datasets import ManifestDataset

    monkeypatch.setenv("HERO_PROJECT_ROOT", str(tmp_path / "project"))
    manifests = ManifestDataset(filepath=str(tmp_path / "project/data/02_intermediate/manifest_info.json"))
    info = prepare_corpus({"path": f"{s3_corpus}/"})
    assert info["path"] == s3_corpus and info["source"] == "user"
    assert prepare_corpus({"path": s3_corpus}) == info  # same objects, same fingerprint
    manifests.save(build_manifest(info, READER))
    manifest_info = manifests.load()
    assert manifest_info["root"] == s3_corpus and manifest_info["videos"] == 3 and manifest_info["examples"]
    assert manifest_info["path"].startswith("data/02_intermediate/manifest-")  # relative to the project
    manifest = json.loads((tmp_path / "project" / manifest_info["path"]).read_text())
    assert manifest["root"] == s3_corpus and manifest["config"]["path"] == s3_corpus

    bucket, prefix = s3_corpus.removeprefix("s3://").split("/", 1)  # one annotation line fewer
    key = f"{prefix}/annotations/tvr_val.jsonl"
    body = boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read().splitlines(keepends=True)
    boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=b"".join(body[:-1]))
    changed = prepare_corpus({"path": s3_corpus})
    assert changed["fingerprint"] != info["fingerprint"]
    manifests.save(build_manifest(changed, READER))
    rebuilt = manifests.load()
    assert rebuilt["key"] != manifest_info["key"] and rebuilt["examples"]["tvr/val"] == len(body) - 1


def test_corpus_node_names_the_uri_it_cannot_use(s3_corpus, tmp_path, monkeypatch):
    from pipelines.corpus.nodes import prepare_corpus

    monkeypatch.setenv("HERO_PROJECT_ROOT", str(tmp_path / "project"))
    bucket = s3_corpus.removeprefix("s3://").split("/")[0]
    with pytest.raises(FileNotFoundError, match=f"s3://{bucket}/elsewhere: no object under this prefix"):
        prepare_corpus({"path": f"s3://{bucket}/elsewhere"})
    with pytest.raises(ValueError, match="names a bucket and a prefix only") as err:
        prepare_corpus({"path": f"s3://AKIAEXAMPLE:s3cr3t@{bucket}/corpus"})
    assert "s3cr3t" not in str(err.value)


@pytest.mark.slow  # ~40 s: kedro + mlflow start-up, two feature worker processes
def test_kedro_features_pipeline_on_an_s3_corpus(project, s3_corpus):
    env = {k: v for k, v in os.environ.items() if k != "HERO_PROJECT_ROOT"}  # the AWS environment of s3_corpus
    cmd = [sys.executable, "-m", "kedro", "run", "--env", "test", "--pipelines=features",
           f"--params=corpus.path={s3_corpus},features.extract.workers=2"]
    out = subprocess.run(cmd, check=False, cwd=project, env=env, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]

    data = project / "data"
    corpus_info = json.loads((data / "01_raw/corpus_info.json").read_text())
    assert corpus_info["path"] == s3_corpus and corpus_info["source"] == "user"
    manifest_info = json.loads((data / "02_intermediate/manifest_info.json").read_text())
    assert manifest_info["root"] == s3_corpus and manifest_info["videos"] == 3
    assert json.loads((project / manifest_info["path"]).read_text())["root"] == s3_corpus
    features_info = json.loads((data / "03_primary/features_info.json").read_text())
    assert features_info["videos"] == 3 and features_info["stats"]["extracted"] == 3
    assert features_info["stats"]["workers"] == 2
    assert not list(data.glob("01_raw/synthetic-*"))  # the default synthetic corpus was never generated
    cached = sorted(p.name for p in Path(os.environ["HERO_CACHE_DIR"]).rglob("*.mp4"))
    assert cached == ["synth_00000.mp4", "synth_00001.mp4", "synth_00002.mp4"]  # ingest and workers shared one copy

    db = sqlite3.connect(project / "mlruns/mlflow.db")
    params = dict(db.execute("select key, value from params").fetchall())
    tags = dict(db.execute("select key, value from tags").fetchall())
    assert params["corpus.path"] == s3_corpus and tags["corpus_source"] == "user"

    leaks = [p for root in (data, project / "mlruns") for p in root.rglob("*")
             if p.is_file() and any(s.encode() in p.read_bytes() for s in SECRETS)]
    assert not leaks
    assert not any(s in out.stdout + out.stderr for s in SECRETS)
