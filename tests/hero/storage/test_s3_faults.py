"""Fault cases through a proxy in front of the real moto server: a missing key, throttling that clears,
a download cut midway (once: resumed; always: a clear error), a multipart upload that fails midway."""

import base64
import hashlib
import os
from pathlib import Path

import pytest

from hero.storage import StorageError, TruncatedObjectError, open_storage
from hero.storage.s3 import S3Storage

MiB = 1 << 20


def gets(proxy, key):
    return [s for s in proxy.seen if s.method == "GET" and s.path.split("?")[0].endswith(key)]


def test_missing_key_raises_file_not_found_naming_the_uri(bucket, tmp_path):
    st = open_storage(bucket.uri, create=True)
    uri = f"{bucket.uri}/corpus/videos/gone.mp4"
    for call in (lambda: st.read_bytes("corpus/videos/gone.mp4"), lambda: st.local_path("corpus/videos/gone.mp4"),
                 lambda: st.download_file("corpus/videos/gone.mp4", tmp_path / "x")):
        with pytest.raises(FileNotFoundError, match=f"^{uri}: no such object$"):
            call()
    assert not (tmp_path / "x").exists()


def test_server_error_once_then_success_is_retried(bucket, proxy, monkeypatch):
    st = open_storage(bucket.uri, create=True)
    st.write_bytes("a.json", b'{"ok": true}')
    proxy.fail(1, status=503, match=lambda m, p: m == "GET")
    assert st.read_bytes("a.json") == b'{"ok": true}'
    assert [s.answered for s in gets(proxy, "a.json")] == [503, 200]  # botocore's retry carried it
    proxy.fail(1, status=500, match=lambda m, p: m == "PUT")
    st.write_bytes("b.json", b"{}")
    assert [s.answered for s in proxy.seen if s.method == "PUT"][-2:] == [500, 200]
    # the same fault with retries switched off fails: it was the retry that made it work
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    proxy.fail(1, status=503, match=lambda m, p: m == "GET")
    with pytest.raises(StorageError, match=f"{bucket.uri}/a.json: get_object failed: SlowDown"):
        open_storage(bucket.uri, create=True).read_bytes("a.json")


def test_download_cut_once_resumes_from_where_it_broke(bucket, proxy, tmp_path):
    data = os.urandom(3 * MiB + 17)
    st = open_storage(bucket.uri, create=True)
    st.write_bytes("shard.npy", data)
    proxy.truncate(1)
    assert st.read_bytes("shard.npy") == data
    first, second = gets(proxy, "shard.npy")
    assert "Range" not in first.headers and second.headers["Range"].startswith("bytes=")
    assert int(second.headers["Range"][6:-1]) > 0 and second.headers["If-Match"].strip('"')  # same version only
    proxy.truncate(1)
    assert Path(st.local_path("shard.npy")).read_bytes() == data


def test_object_that_stays_truncated_raises_naming_the_uri(bucket, proxy, tmp_path):
    st = S3Storage(bucket.uri, read_attempts=3)
    st.write_bytes("features/shards/s1.npy", os.urandom(MiB))
    proxy.truncate(100)
    with pytest.raises(TruncatedObjectError, match=rf"^{bucket.uri}/features/shards/s1.npy: truncated object: "
                                                   rf"read \d+ of {MiB} bytes \(ContentLength\) in 3 attempt"):
        st.read_bytes("features/shards/s1.npy")
    with pytest.raises(TruncatedObjectError):
        st.local_path("features/shards/s1.npy")
    cached = [f for _, _, files in os.walk(tmp_path / "cache") for f in files]
    assert cached == []  # nothing half-written left in the cache


def test_object_replaced_while_resuming_is_not_stitched(bucket, proxy):
    st = open_storage(bucket.uri, create=True)
    st.write_bytes("x.bin", os.urandom(2 * MiB))
    proxy.truncate(1)
    real = proxy.take

    def replace_then_take(method, path):  # after the cut, a writer replaces the object
        fault = real(method, path)
        if fault is None and method == "GET":
            bucket.client.put_object(Bucket=bucket.name, Key="x.bin", Body=b"new")
            proxy.take = real
        return fault

    proxy.take = replace_then_take
    with pytest.raises(StorageError, match=f"{bucket.uri}/x.bin: the object changed while it was being read"):
        st.read_bytes("x.bin")


def test_single_put_carries_content_md5(bucket, proxy, tmp_path):
    st = open_storage(bucket.uri, create=True)
    st.write_bytes("m.json", b'{"a": 1}')
    (tmp_path / "f.bin").write_bytes(b"z" * 1000)
    st.upload_file(tmp_path / "f.bin", "f.bin")
    puts = [s for s in proxy.seen if s.method == "PUT"]
    assert len(puts) == 2
    for put, body in zip(puts, (b'{"a": 1}', b"z" * 1000)):
        assert put.headers["Content-MD5"] == base64.b64encode(hashlib.md5(body).digest()).decode()


def test_multipart_upload_failing_midway_leaves_nothing_visible(bucket, proxy, tmp_path):
    st = S3Storage(f"{bucket.uri}/ckpt", multipart_threshold=MiB, multipart_chunksize=5 * MiB)
    (tmp_path / "big.bin").write_bytes(os.urandom(11 * MiB))
    proxy.fail(100, status=400, match=lambda m, p: m == "PUT" and "partNumber=2" in p)
    with pytest.raises(StorageError, match=f"{bucket.uri}/ckpt/big.bin: upload failed: InvalidRequest"):
        st.upload_file(tmp_path / "big.bin", "big.bin")
    assert any(s.answered == 200 and "partNumber=" in s.path for s in proxy.seen)  # some parts did go up
    assert not st.exists("big.bin")
    assert bucket.client.list_multipart_uploads(Bucket=bucket.name).get("Uploads", []) == []  # aborted
