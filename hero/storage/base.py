"""Storage behind one interface: a local folder (a plain path or ``file://``) or an ``s3://bucket/prefix``.

Paths given to a `Storage` are relative to its root, with forward slashes. Writes are whole or nothing: a
local write goes to a temporary sibling and is renamed into place; an S3 object becomes visible only once its
upload is complete (see `hero.storage.s3`). The S3 backend (and boto3) is imported only when an ``s3://``
location is opened, so local-only use never pays for it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Protocol

from hero.storage.atomic import atomic_path, write_bytes_atomic

SCHEMES = ("file", "s3")
"""URI schemes `open_storage` accepts; a location without ``://`` is a local path."""


class StorageError(OSError):
    """A storage operation failed for a reason other than a missing object; the message names the URI."""


class TruncatedObjectError(StorageError):
    """An object read back shorter than its declared length (``ContentLength``), even after retrying."""


class Storage(Protocol):
    """Files under a root. Relative paths use forward slashes."""

    root: str

    def list_files(self, prefix: str) -> list[str]:
        """Relative paths of the files under ``prefix`` (recursively), sorted; hidden names (``.x``) left out."""

    def exists(self, rel: str) -> bool: ...

    def read_bytes(self, rel: str) -> bytes:
        """The whole file; `FileNotFoundError` naming the URI when it is missing."""

    def local_path(self, rel: str) -> str:
        """A local file path for ``rel`` (a remote store downloads to the local cache first); PyAV and
        ``np.load(mmap_mode="r")`` open it."""

    def uri(self, rel: str) -> str:
        """How errors and manifests name the file."""

    def write_bytes(self, rel: str, data: bytes) -> None:
        """Store ``data`` at ``rel``, whole or not at all."""

    def upload_file(self, local: str | Path, rel: str) -> None:
        """Copy the local file ``local`` to ``rel``, whole or not at all."""

    def download_file(self, rel: str, local: str | Path) -> None:
        """Copy ``rel`` to the local path ``local`` (temporary name, then rename)."""


def scheme_of(location: str | Path) -> str:
    """``"s3"``, ``"file"`` (also for a plain path) or whatever precedes ``://``."""
    loc = str(location)
    return loc.split("://", 1)[0].lower() if "://" in loc else "file"


def is_remote(location: str | Path) -> bool:
    """Whether ``location`` names something other than the local file system."""
    return scheme_of(location) != "file"


def join_uri(root: str | Path, rel: str) -> str:
    """``root`` + ``/`` + ``rel`` for URIs; `os.path.join` for local paths."""
    return f"{str(root).rstrip('/')}/{rel}" if is_remote(root) else os.path.join(root, rel)


def split_uri(location: str | Path) -> tuple[str, str]:
    """(parent, name) of a file location: ``s3://b/a/x.json`` -> (``s3://b/a``, ``x.json``)."""
    loc = str(location).rstrip("/")
    parent, _, name = loc.rpartition("/")
    if not name or (is_remote(loc) and parent.endswith(":/")):
        raise ValueError(f"{location}: names no file (expected .../<name>)")
    return parent, name


def cache_root() -> Path:
    """Where remote files are cached locally: ``$HERO_CACHE_DIR``, else ``~/.cache/hero/s3``
    (``$XDG_CACHE_HOME/hero/s3`` when that is set). Safe to delete at any time."""
    if os.environ.get("HERO_CACHE_DIR"):
        return Path(os.environ["HERO_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
    return Path(base, "hero", "s3").expanduser()


class LocalStorage:
    """A local folder."""

    def __init__(self, root: str | Path, *, create: bool = False) -> None:
        self.root = str(Path(root).expanduser().resolve())
        if create:
            os.makedirs(self.root, exist_ok=True)
        elif not os.path.isdir(self.root):
            raise FileNotFoundError(f"{self.root}: folder not found")

    def list_files(self, prefix: str) -> list[str]:
        base = Path(self.root, prefix)
        if not base.is_dir():
            return []
        out = [p.relative_to(self.root).as_posix() for p in base.rglob("*") if p.is_file() and not p.name.startswith(".")]
        return sorted(out)

    def exists(self, rel: str) -> bool:
        return os.path.isfile(self.local_path(rel))

    def read_bytes(self, rel: str) -> bytes:
        with open(self.local_path(rel), "rb") as f:
            return f.read()

    def local_path(self, rel: str) -> str:
        return os.path.join(self.root, rel)

    def uri(self, rel: str) -> str:
        return os.path.join(self.root, rel)

    def write_bytes(self, rel: str, data: bytes) -> None:
        write_bytes_atomic(self.local_path(rel), data)

    def upload_file(self, local: str | Path, rel: str) -> None:
        _copy_atomic(local, self.local_path(rel))

    def download_file(self, rel: str, local: str | Path) -> None:
        _copy_atomic(self.local_path(rel), local)


def _copy_atomic(src: str | Path, dst: str | Path) -> None:
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)


def open_storage(location: str | Path, *, create: bool = False) -> Storage:
    """A `Storage` for a local path, a ``file://`` URI or an ``s3://bucket/prefix`` URI.

    Args:
        create: the root is a destination: a local folder is created, an S3 prefix is not checked. Otherwise
            a missing local folder, or an S3 prefix holding no object, raises `FileNotFoundError`.
    """
    loc = str(location)
    scheme = scheme_of(loc)
    if scheme == "s3":
        from hero.storage.s3 import S3Storage

        return S3Storage(loc, must_exist=not create)
    if scheme != "file":
        raise ValueError(f"{location}: unsupported storage scheme {scheme!r} (supported: {', '.join(SCHEMES)})")
    return LocalStorage(loc.removeprefix("file://"), create=create)


def publish_file(local: str | Path, uri: str | Path) -> str:
    """Copy the local file ``local`` to ``uri`` (a path or ``s3://bucket/key``), whole or not at all; returns ``uri``.

    How a report, a metrics file or any single artifact reaches shared storage.
    """
    parent, name = split_uri(uri)
    open_storage(parent, create=True).upload_file(local, name)
    return str(uri)


def local_file(uri: str | Path) -> str:
    """A local path holding the file at ``uri``: the path itself when local, else a cached download."""
    if not is_remote(uri):
        path = str(uri).removeprefix("file://")
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{path}: no such file")
        return path
    parent, name = split_uri(uri)
    return open_storage(parent, create=True).local_path(name)
