"""`S3Storage`: a `Storage` over ``s3://bucket/prefix`` through boto3.

Where the endpoint, region and credentials come from: the standard AWS chain only (``AWS_ENDPOINT_URL`` /
``AWS_ENDPOINT_URL_S3``, ``AWS_PROFILE``, ``AWS_ACCESS_KEY_ID``…, ``~/.aws/config``, instance roles), resolved by
boto3. Nothing here reads, logs or stores them; URIs carrying credentials are refused.

Failures it survives, and how:

- throttling (503 SlowDown) and transient 5xx/connection errors: botocore's retry handler, mode ``standard``
  (exponential backoff with jitter) and 8 attempts, or ``AWS_RETRY_MODE`` / ``AWS_MAX_ATTEMPTS`` when set;
- a download cut midway (connection reset, short body): our own loop re-requests the rest with ``Range`` and
  ``If-Match: <ETag>`` (so the pieces belong to one version of the object), with backoff, ``read_attempts`` times;
  a read that still falls short of ``ContentLength`` raises `TruncatedObjectError` naming the URI.

Writes are never visible half done: a single PUT carries ``Content-MD5`` (S3 rejects a body that does not match
it); files from ``multipart_threshold`` bytes go up as a multipart upload (boto3's TransferConfig), with a CRC32
per part, and S3 shows the object only after CompleteMultipartUpload; a failed upload is aborted.

Reads for local use (`local_path`) land in a content-addressed cache (`hero.storage.cache_root`), keyed by
bucket, key and ETag, written under a temporary name and renamed, so concurrent readers share one copy and a
changed object gets a new one.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import io
import logging
import os
import random
import time
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

import boto3
from boto3.exceptions import S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    IncompleteReadError,
    ReadTimeoutError,
    ResponseStreamingError,
)

from hero.storage.atomic import atomic_path
from hero.storage.base import StorageError, TruncatedObjectError, cache_root

log = logging.getLogger(__name__)

MiB = 1 << 20
CHUNK = MiB
STREAM_ERRORS = (IncompleteReadError, ResponseStreamingError, ReadTimeoutError, ConnectionClosedError)
"""What a body stream raises when the connection breaks midway (botocore wraps urllib3's errors in these)."""
NOT_FOUND = ("404", "NoSuchKey", "NotFound")


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """(bucket, prefix without surrounding slashes) of ``s3://bucket/prefix``."""
    if not uri.lower().startswith("s3://"):
        raise ValueError(f"{uri}: not an s3:// URI")
    bucket, _, prefix = uri[5:].partition("/")
    if "@" in bucket or ":" in bucket:
        raise ValueError("an s3:// URI names a bucket and a prefix only: credentials and endpoints come from the "
                         "AWS environment (AWS_PROFILE, AWS_ACCESS_KEY_ID, AWS_ENDPOINT_URL, ...)")
    if not bucket:
        raise ValueError(f"{uri}: no bucket (expected s3://bucket/prefix)")
    return bucket, prefix.strip("/")


def make_client() -> Any:
    """An S3 client configured by the AWS environment, with retries in mode ``standard`` unless
    ``AWS_RETRY_MODE`` / ``AWS_MAX_ATTEMPTS`` say otherwise."""
    retries = {"mode": os.environ.get("AWS_RETRY_MODE", "standard"),  # AWS_MAX_ATTEMPTS counts the first try too
               "total_max_attempts": int(os.environ.get("AWS_MAX_ATTEMPTS", "8"))}
    config = Config(retries=retries, connect_timeout=10, read_timeout=60)
    return boto3.session.Session().client("s3", config=config)


@functools.lru_cache(maxsize=4)
def _client_for(pid: int, aws_env: tuple[tuple[str, str], ...]) -> Any:
    return make_client()


def shared_client() -> Any:
    """One client per process and AWS environment (making one costs ~0.2 s; a client is thread-safe, but must
    not cross a fork)."""
    return _client_for(os.getpid(), tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("AWS_"))))


def _env_bytes(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None:
        return default
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{name}: must be a positive number of bytes, got {value!r}")
    return int(value)


def _md5_b64(chunks: Any) -> str:
    h = hashlib.md5()
    for c in chunks:
        h.update(c)
    return base64.b64encode(h.digest()).decode()


def _backoff(attempt: int) -> float:
    """Seconds to wait before retry ``attempt`` (1, 2, ...): exponential from 0.2 s, capped at 5 s, full jitter."""
    return random.uniform(0, min(5.0, 0.2 * 2 ** attempt))


class S3Storage:
    """Files under ``s3://bucket/prefix``.

    Args:
        must_exist: raise `FileNotFoundError` when no object lies under the prefix (a corpus or store to read).
        client: a boto3 S3 client; by default `shared_client` (one per process).
        multipart_threshold / multipart_chunksize: files of at least this many bytes are uploaded in parts of
            that size (defaults: ``$HERO_S3_MULTIPART_THRESHOLD`` or 64 MiB, ``$HERO_S3_MULTIPART_CHUNKSIZE`` or
            16 MiB; S3 takes parts of 5 MiB at least, boto3 raises smaller ones).
        read_attempts: tries of a download that breaks midway before `TruncatedObjectError`.
        cache_dir: the local cache (default `cache_root`).
    """

    def __init__(self, uri: str, *, must_exist: bool = False, client: Any = None,
                 multipart_threshold: int | None = None, multipart_chunksize: int | None = None,
                 read_attempts: int = 5, cache_dir: str | Path | None = None) -> None:
        self.bucket, self.prefix = parse_s3_uri(uri)
        self.root = f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"
        self._client = client
        self.transfer = TransferConfig(
            multipart_threshold=multipart_threshold or _env_bytes("HERO_S3_MULTIPART_THRESHOLD", 64 * MiB),
            multipart_chunksize=multipart_chunksize or _env_bytes("HERO_S3_MULTIPART_CHUNKSIZE", 16 * MiB))
        self.read_attempts = read_attempts
        self.cache_dir = Path(cache_dir) if cache_dir is not None else cache_root()
        if must_exist and not self._has_objects():
            raise FileNotFoundError(f"{self.root}: no object under this prefix")

    @property
    def client(self) -> Any:
        return self._client if self._client is not None else shared_client()

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_client": None}  # a client does not pickle; the other process makes its own

    # ------------------------------------------------------------------ names and errors
    def _key(self, rel: str) -> str:
        rel = rel.strip("/")
        return f"{self.prefix}/{rel}" if self.prefix and rel else (self.prefix or rel)

    def _uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def uri(self, rel: str) -> str:
        return self._uri(self._key(rel))

    def _error(self, err: ClientError, key: str, op: str) -> OSError:
        code = str(err.response.get("Error", {}).get("Code", ""))
        status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        uri = self._uri(key)
        if code == "NoSuchBucket":
            return FileNotFoundError(f"{uri}: bucket {self.bucket!r} does not exist")
        if code in NOT_FOUND:
            return FileNotFoundError(f"{uri}: no such object")
        if status == 403 or code in ("403", "AccessDenied"):
            return PermissionError(f"{uri}: access denied ({op}); credentials come from the AWS environment "
                                   "(AWS_PROFILE, AWS_ACCESS_KEY_ID, ...)")
        if code == "PreconditionFailed":
            return StorageError(f"{uri}: the object changed while it was being read; read it again")
        return StorageError(f"{uri}: {op} failed: {code} {err.response.get('Error', {}).get('Message', '')}".rstrip())

    def _call(self, op: str, key: str, **kwargs: Any) -> dict[str, Any]:
        try:
            return getattr(self.client, op)(Bucket=self.bucket, Key=key, **kwargs)
        except ClientError as err:
            raise self._error(err, key, op) from err
        except BotoCoreError as err:
            raise StorageError(f"{self._uri(key)}: {op} failed: {err}") from err

    # ------------------------------------------------------------------ reading
    def _has_objects(self) -> bool:
        try:
            page = self.client.list_objects_v2(Bucket=self.bucket, Prefix=f"{self.prefix}/" if self.prefix else "",
                                               MaxKeys=1)
        except ClientError as err:
            raise self._error(err, self.prefix, "list") from err
        except BotoCoreError as err:  # no credentials, endpoint unreachable: name the URI, as _call does
            raise StorageError(f"{self._uri(self.prefix)}: list failed: {err}") from err
        return page.get("KeyCount", 0) > 0

    def list_files(self, prefix: str) -> list[str]:
        base = self._key(prefix)
        out = []
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(
                    Bucket=self.bucket, Prefix=f"{base}/" if base else ""):
                for obj in page.get("Contents", []):
                    key = obj["Key"]
                    rel = key[len(self.prefix) + 1:] if self.prefix else key
                    if not key.endswith("/") and not PurePosixPath(rel).name.startswith("."):
                        out.append(rel)
        except ClientError as err:
            raise self._error(err, base, "list") from err
        except BotoCoreError as err:
            raise StorageError(f"{self._uri(base)}: list failed: {err}") from err
        return sorted(out)

    def head(self, rel: str) -> dict[str, Any]:
        """The object's metadata (``ContentLength``, ``ETag``, ...); `FileNotFoundError` when missing."""
        return self._call("head_object", self._key(rel))

    def exists(self, rel: str) -> bool:
        try:
            self.head(rel)
        except FileNotFoundError:
            return False
        return True

    def read_bytes(self, rel: str) -> bytes:
        buf = io.BytesIO()
        self._stream(self._key(rel), buf)
        return buf.getvalue()

    def local_path(self, rel: str) -> str:
        """The cached copy of ``rel`` (downloaded on first use, and again once the object's ETag changes)."""
        key = self._key(rel)
        head = self._call("head_object", key)
        digest = hashlib.sha256(f"{self.bucket}\n{key}\n{head['ETag']}".encode()).hexdigest()
        dest = self.cache_dir / "objects" / digest[:2] / digest / PurePosixPath(key).name
        if not (dest.is_file() and dest.stat().st_size == head["ContentLength"]):
            self._download(key, dest, head)
        return str(dest)

    def download_file(self, rel: str, local: str | Path) -> None:
        key = self._key(rel)
        self._download(key, Path(local), self._call("head_object", key))

    def _download(self, key: str, dest: Path, head: dict[str, Any]) -> None:
        t0 = time.perf_counter()
        with atomic_path(dest) as tmp, open(tmp, "wb") as f:
            self._stream(key, f, head["ETag"], head["ContentLength"])
            f.flush()
            os.fsync(f.fileno())
        log.info("fetched %s (%.1f MB) in %.1fs", self._uri(key), head["ContentLength"] / MiB, time.perf_counter() - t0)

    def _stream(self, key: str, out: BinaryIO, etag: str | None = None, size: int | None = None) -> None:
        """Copy the object into ``out``, resuming with a ranged GET of the same ETag when the stream breaks."""
        got, problem = 0, "no attempt"
        for attempt in range(self.read_attempts):
            if attempt:
                time.sleep(_backoff(attempt))
            kwargs: dict[str, Any] = {"IfMatch": etag} if etag else {}
            if got:
                kwargs["Range"] = f"bytes={got}-"
            resp = self._call("get_object", key, **kwargs)
            if size is None:
                size, etag = resp["ContentLength"], resp["ETag"]
            try:
                for chunk in resp["Body"].iter_chunks(CHUNK):
                    out.write(chunk)
                    got += len(chunk)
            except STREAM_ERRORS as err:
                problem = f"{type(err).__name__}: {err}"
                log.warning("%s: read broke after %d of %d bytes (%s); resuming", self._uri(key), got, size, problem)
                continue
            if got == size:
                return
            problem = "the body ended early"
            if got > size:
                break
        raise TruncatedObjectError(f"{self._uri(key)}: truncated object: read {got} of {size} bytes (ContentLength) "
                                   f"in {self.read_attempts} attempt(s); last problem: {problem}")

    # ------------------------------------------------------------------ writing
    def write_bytes(self, rel: str, data: bytes) -> None:
        self._call("put_object", self._key(rel), Body=data, ContentMD5=_md5_b64([data]))

    def upload_file(self, local: str | Path, rel: str) -> None:
        """One PUT with Content-MD5 below ``multipart_threshold`` bytes, a multipart upload from there on."""
        key, size, t0 = self._key(rel), os.path.getsize(local), time.perf_counter()
        if size < self.transfer.multipart_threshold:
            with open(local, "rb") as f:
                md5 = _md5_b64(iter(lambda: f.read(CHUNK), b""))
                f.seek(0)
                self._call("put_object", key, Body=f, ContentMD5=md5)
        else:
            try:
                self.client.upload_file(str(local), self.bucket, key, Config=self.transfer,
                                        ExtraArgs={"ChecksumAlgorithm": "CRC32"})
            except (S3UploadFailedError, ClientError, BotoCoreError) as err:  # s3transfer aborted the upload
                cause = err if isinstance(err, ClientError) else err.__cause__ or err.__context__  # boto3 wraps it
                if isinstance(cause, ClientError):
                    raise self._error(cause, key, "upload") from err
                raise StorageError(f"{self._uri(key)}: upload failed: {err}") from err
        log.info("published %s (%.1f MB) in %.1fs", self._uri(key), size / MiB, time.perf_counter() - t0)
