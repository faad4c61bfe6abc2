"""DVC and MLflow against a real S3-compatible server (moto) on 127.0.0.1: a DVC S3 remote (push, then pull into
an emptied workspace) and MLflow artifacts in an S3 artifact root, configured as docs/s3.md describes.
Both are marked slow (about 20 s each here)."""

import os
import subprocess
import sys
import uuid
from pathlib import Path

import boto3
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "hero" / "storage"))
from s3_server import FAKE_CREDENTIALS, moto_server, s3_env


@pytest.fixture(scope="module")
def moto_endpoint(tmp_path_factory):
    with moto_server(tmp_path_factory.mktemp("moto") / "moto.log") as endpoint:
        yield endpoint


@pytest.fixture
def aws_env(moto_endpoint, tmp_path, monkeypatch) -> dict[str, str]:
    """The environment of this process and its children: fake credentials, the moto endpoint, no ~/.aws."""
    for key in [k for k in os.environ if k.startswith(("AWS_", "MLFLOW_"))]:
        monkeypatch.delenv(key)
    env = {**s3_env(moto_endpoint), "AWS_CONFIG_FILE": str(tmp_path / "none"),
           "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"), "DVC_NO_ANALYTICS": "1"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}


@pytest.fixture
def bucket(aws_env) -> str:
    name = f"hero-{uuid.uuid4().hex[:12]}"
    boto3.client("s3").create_bucket(Bucket=name)
    return name


def _run(cmd, cwd, env):
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, f"{' '.join(cmd)}:\n{(out.stdout + out.stderr)[-4000:]}"
    return out.stdout + out.stderr


@pytest.mark.slow  # ~20 s: seven dvc processes
def test_dvc_push_and_pull_through_an_s3_remote(tmp_path, aws_env, bucket, moto_endpoint):
    repo = tmp_path / "repo"
    repo.mkdir()
    dvc = [sys.executable, "-m", "dvc"]
    _run(["git", "init", "-q"], repo, aws_env)
    _run(dvc + ["init", "-q"], repo, aws_env)
    data = repo / "data"
    data.mkdir()
    (data / "features.bin").write_bytes(os.urandom(200_000))
    (data / "manifest.json").write_text('{"videos": 3}\n')
    _run(dvc + ["add", "data"], repo, aws_env)
    _run(dvc + ["remote", "add", "-d", "s3remote", f"s3://{bucket}/dvc"], repo, aws_env)
    _run(dvc + ["remote", "modify", "s3remote", "endpointurl", moto_endpoint], repo, aws_env)
    config = (repo / ".dvc" / "config").read_text()
    assert FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"] not in config and FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"] not in config
    _run(dvc + ["push"], repo, aws_env)
    keys = [o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=bucket, Prefix="dvc/")["Contents"]]
    assert len(keys) == 3 and all(k.startswith("dvc/files/md5/") for k in keys)  # 2 files + the directory listing

    expected = {p.name: p.read_bytes() for p in data.iterdir()}
    subprocess.run(["rm", "-rf", str(data), str(repo / ".dvc" / "cache")], check=True)
    _run(dvc + ["pull"], repo, aws_env)
    assert {p.name: p.read_bytes() for p in data.iterdir()} == expected


@pytest.mark.slow  # ~20 s: mostly creating the sqlite tracking store
def test_mlflow_artifact_logged_to_an_s3_artifact_root(tmp_path, aws_env, bucket, moto_endpoint, monkeypatch):
    import mlflow
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("MLFLOW_S3_ENDPOINT_URL", moto_endpoint)  # as a tracking server / kedro-mlflow would read it
    tracking_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=tracking_uri)
    exp = client.create_experiment("s3-artifacts", artifact_location=f"s3://{bucket}/mlflow")
    run = client.create_run(exp)
    report = tmp_path / "results.md"
    report.write_text("| task | metric | pretrained | scratch | gain |\n")
    client.log_artifact(run.info.run_id, str(report), artifact_path="reports")
    client.set_terminated(run.info.run_id)

    assert run.info.artifact_uri == f"s3://{bucket}/mlflow/{run.info.run_id}/artifacts"
    key = f"mlflow/{run.info.run_id}/artifacts/reports/results.md"
    assert boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read() == report.read_bytes()
    back = mlflow.artifacts.download_artifacts(artifact_uri=f"{run.info.artifact_uri}/reports/results.md",
                                               dst_path=str(tmp_path / "dl"), tracking_uri=tracking_uri)
    assert Path(back).read_bytes() == report.read_bytes()
    stored = client.get_run(run.info.run_id).data
    for secret in FAKE_CREDENTIALS.values():
        assert all(secret not in str(v) for v in (*stored.params.values(), *stored.tags.values()))
