"""A real moto S3 server for the session, and per test an empty bucket with the AWS environment pointing at it."""

import os
import uuid
from dataclasses import dataclass

import pytest
from s3_server import fault_proxy, moto_server, s3_env

from hero.storage.s3 import make_client


@dataclass
class Bucket:
    name: str
    client: object

    @property
    def uri(self) -> str:
        return f"s3://{self.name}"


@pytest.fixture(scope="session")
def moto_endpoint(tmp_path_factory):
    with moto_server(tmp_path_factory.mktemp("moto") / "moto.log") as endpoint:
        yield endpoint


def point_aws_at(endpoint: str, monkeypatch, tmp_path) -> None:
    """Only our fake credentials and ``endpoint``: nothing from the developer's shell or ~/.aws."""
    for key in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(key)
    for key, value in s3_env(endpoint).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))


@pytest.fixture
def bucket(moto_endpoint, monkeypatch, tmp_path) -> Bucket:
    point_aws_at(moto_endpoint, monkeypatch, tmp_path)
    monkeypatch.setenv("HERO_CACHE_DIR", str(tmp_path / "cache"))
    name = f"hero-{uuid.uuid4().hex[:12]}"
    client = make_client()
    client.create_bucket(Bucket=name)
    return Bucket(name, client)


@pytest.fixture
def proxy(bucket, moto_endpoint, monkeypatch):
    """A `FaultProxy` in front of moto; the AWS environment points at the proxy."""
    with fault_proxy(moto_endpoint) as (p, url):
        monkeypatch.setenv("AWS_ENDPOINT_URL", url)
        yield p
