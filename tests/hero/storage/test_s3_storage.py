"""S3Storage against a real moto server: round trips, multipart uploads, the local cache, URIs, local storage."""

import os
from pathlib import Path

import pytest

from hero.storage import LocalStorage, local_file, open_storage, publish_file
from hero.storage.s3 import S3Storage

MiB = 1 << 20


def test_round_trip_list_exists_and_names(bucket, tmp_path):
    st = open_storage(f"{bucket.uri}/data/", create=True)
    assert st.root == f"{bucket.uri}/data"
    st.write_bytes("a/x.txt", b"hello")
    st.write_bytes("a/b/y.bin", bytes(range(256)))
    st.write_bytes("a/.hidden", b"nope")
    st.write_bytes("top.json", b"{}")
    bucket.client.put_object(Bucket=bucket.name, Key="data-other/z", Body=b"outside the prefix")
    assert st.list_files("a") == ["a/b/y.bin", "a/x.txt"]
    assert st.list_files("") == ["a/b/y.bin", "a/x.txt", "top.json"]
    assert st.list_files("nothing-here") == []
    assert st.exists("a/x.txt") and not st.exists("a/missing") and not st.exists("a")  # a "folder" is no file
    assert st.read_bytes("a/b/y.bin") == bytes(range(256))
    assert st.uri("a/x.txt") == f"{bucket.uri}/data/a/x.txt"
    src = tmp_path / "src.bin"
    src.write_bytes(os.urandom(3000))
    st.upload_file(src, "up/src.bin")
    st.download_file("up/src.bin", tmp_path / "out" / "back.bin")
    assert (tmp_path / "out" / "back.bin").read_bytes() == src.read_bytes()
    assert os.listdir(tmp_path / "out") == ["back.bin"]  # no temporary left behind


def test_opening_a_prefix_to_read_requires_objects(bucket):
    with pytest.raises(FileNotFoundError, match=f"{bucket.uri}/empty: no object under this prefix"):
        open_storage(f"{bucket.uri}/empty")
    with pytest.raises(FileNotFoundError, match="bucket 'hero-no-such-bucket' does not exist"):
        open_storage("s3://hero-no-such-bucket/x")
    open_storage(f"{bucket.uri}/empty", create=True)  # a destination need not exist yet


@pytest.mark.parametrize("uri", ["s3://KEY:SECRET@bucket/x", "s3://bucket:9000/x", "s3:///x"])
def test_uris_carry_no_credentials_or_endpoint(uri):
    with pytest.raises(ValueError, match="s3://"):
        S3Storage(uri)


def test_unknown_scheme_is_refused():
    with pytest.raises(ValueError, match="unsupported storage scheme 'gs'"):
        open_storage("gs://bucket/x")


def test_large_file_goes_up_in_parts_and_comes_back_whole(bucket, tmp_path):
    st = S3Storage(f"{bucket.uri}/big", multipart_threshold=1 * MiB, multipart_chunksize=5 * MiB)
    data = os.urandom(11 * MiB)
    (tmp_path / "big.bin").write_bytes(data)
    st.upload_file(tmp_path / "big.bin", "big.bin")
    head = bucket.client.head_object(Bucket=bucket.name, Key="big/big.bin")
    assert head["ETag"].strip('"').endswith("-3")  # 5 + 5 + 1 MiB: a multipart object
    assert head["ContentLength"] == len(data)
    assert st.read_bytes("big.bin") == data
    small = S3Storage(f"{bucket.uri}/big", multipart_threshold=1 * MiB)
    (tmp_path / "small.bin").write_bytes(data[: MiB - 1])
    small.upload_file(tmp_path / "small.bin", "small.bin")
    assert "-" not in bucket.client.head_object(Bucket=bucket.name, Key="big/small.bin")["ETag"]  # one PUT


def test_multipart_threshold_from_the_environment(bucket, monkeypatch):
    monkeypatch.setenv("HERO_S3_MULTIPART_THRESHOLD", str(MiB))
    assert S3Storage(bucket.uri).transfer.multipart_threshold == MiB
    monkeypatch.setenv("HERO_S3_MULTIPART_THRESHOLD", "8MB")
    with pytest.raises(ValueError, match="HERO_S3_MULTIPART_THRESHOLD: must be a positive number of bytes"):
        S3Storage(bucket.uri)


def test_local_path_is_cached_by_etag(bucket, tmp_path):
    st = open_storage(bucket.uri, create=True)
    st.write_bytes("v/clip.mp4", b"first version")
    p1 = st.local_path("v/clip.mp4")
    assert p1.startswith(str(tmp_path / "cache")) and p1.endswith("/clip.mp4")  # HERO_CACHE_DIR, name kept
    assert Path(p1).read_bytes() == b"first version"
    mtime = os.stat(p1).st_mtime_ns
    assert st.local_path("v/clip.mp4") == p1 and os.stat(p1).st_mtime_ns == mtime  # a hit: not fetched again
    st.write_bytes("v/clip.mp4", b"second version")  # new ETag: a new cache entry
    p2 = st.local_path("v/clip.mp4")
    assert p2 != p1 and Path(p2).read_bytes() == b"second version"
    Path(p2).write_bytes(b"x")  # a damaged entry (wrong length) is fetched again
    assert Path(st.local_path("v/clip.mp4")).read_bytes() == b"second version"


def test_publish_and_fetch_a_single_file(bucket, tmp_path):
    report = tmp_path / "results.md"
    report.write_text("| task | metric |\n")
    uri = f"{bucket.uri}/reports/run-1/results.md"
    assert publish_file(report, uri) == uri
    assert Path(local_file(uri)).read_text() == "| task | metric |\n"
    with pytest.raises(FileNotFoundError, match=f"{bucket.uri}/reports/run-1/missing.md: no such object"):
        local_file(f"{bucket.uri}/reports/run-1/missing.md")
    # the same helpers for local destinations
    assert publish_file(report, tmp_path / "pub" / "r.md") == str(tmp_path / "pub" / "r.md")
    assert local_file(f"file://{tmp_path}/pub/r.md") == f"{tmp_path}/pub/r.md"


def test_local_storage_writes_whole_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="folder not found"):
        LocalStorage(tmp_path / "nope")
    st = LocalStorage(tmp_path / "root", create=True)
    st.write_bytes("a/b.bin", b"12345")
    (tmp_path / "src").write_bytes(b"abc")
    st.upload_file(tmp_path / "src", "c/d.bin")
    st.download_file("c/d.bin", tmp_path / "back")
    assert st.list_files("") == ["a/b.bin", "c/d.bin"] and (tmp_path / "back").read_bytes() == b"abc"
    assert st.read_bytes("a/b.bin") == b"12345" and st.local_path("a/b.bin") == str(tmp_path / "root" / "a" / "b.bin")
