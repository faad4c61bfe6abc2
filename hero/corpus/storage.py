"""A small storage interface for corpora: a local folder now, `s3://` later behind the same methods."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol


class Storage(Protocol):
    """Read access to a corpus root. Paths are relative, with forward slashes."""

    root: str

    def list_files(self, prefix: str) -> list[str]:
        """Relative paths of the files under ``prefix`` (recursively), sorted."""

    def exists(self, rel: str) -> bool: ...

    def read_bytes(self, rel: str) -> bytes: ...

    def local_path(self, rel: str) -> str:
        """A local file path for ``rel`` (a remote store downloads to a cache first); PyAV opens it."""

    def uri(self, rel: str) -> str:
        """How errors name the file."""


class LocalStorage:
    """A corpus in a local folder."""

    def __init__(self, root: str | Path) -> None:
        self.root = str(Path(root).expanduser().resolve())
        if not os.path.isdir(self.root):
            raise FileNotFoundError(f"{self.root}: corpus folder not found")

    def list_files(self, prefix: str) -> list[str]:
        base = Path(self.root, prefix)
        if not base.is_dir():
            return []
        out = [p.relative_to(self.root).as_posix() for p in base.rglob("*") if p.is_file() and not p.name.startswith(".")]
        return sorted(out)

    def exists(self, rel: str) -> bool:
        return os.path.isfile(os.path.join(self.root, rel))

    def read_bytes(self, rel: str) -> bytes:
        with open(os.path.join(self.root, rel), "rb") as f:
            return f.read()

    def local_path(self, rel: str) -> str:
        return os.path.join(self.root, rel)

    def uri(self, rel: str) -> str:
        return os.path.join(self.root, rel)


def open_storage(location: str | Path) -> Storage:
    """A `Storage` for a local path or ``file://`` URI. ``s3://`` arrives with the storage issue."""
    loc = str(location)
    if loc.startswith("file://"):
        loc = loc[len("file://"):]
    if "://" in loc:
        scheme = loc.split("://", 1)[0]
        raise NotImplementedError(f"{location}: storage scheme {scheme!r} is not supported yet (local folders only)")
    return LocalStorage(loc)
