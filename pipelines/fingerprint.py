"""Cheap content addresses for pipeline artifacts: what made an artifact decides whether it is rebuilt."""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def params_hash(obj: Any) -> str:
    """sha256 (16 hex) of a JSON-serialisable value, key order independent."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def tree_fingerprint(root: str | Path) -> str:
    """sha256 (16 hex) over (relative path, size, mtime) of every file under ``root``: changes when a file is
    added, removed, rewritten or touched; costs a directory walk, not a read of the data."""
    root = Path(root)
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            p = Path(dirpath, name)
            st = p.stat()
            h.update(f"{p.relative_to(root).as_posix()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def code_fingerprint(folders: Sequence[str], root: str | Path | None = None) -> str:
    """sha256 (16 hex) over (path relative to ``root``, bytes) of every ``.py`` file under ``folders`` (relative to
    ``root``, by default the folder holding the ``hero`` package this process runs): the version of the code a
    result depends on. It reads the sources (a few hundred kB, once per process), changes with their content only,
    and is the same in any clone of the same commit."""
    import hero

    return _code_fingerprint(tuple(folders), Path(root) if root is not None else Path(hero.__file__).resolve().parents[1])


@functools.lru_cache(maxsize=32)
def _code_fingerprint(folders: tuple[str, ...], root: Path) -> str:
    h = hashlib.sha256()
    for folder in sorted(folders):
        files = sorted(p for p in (root / folder).rglob("*.py") if "__pycache__" not in p.parts)
        if not files:
            raise FileNotFoundError(f"{root / folder}: no Python sources to fingerprint")
        for p in files:
            data = p.read_bytes()
            h.update(f"{p.relative_to(root).as_posix()}\0{len(data)}\0".encode() + data)
    return h.hexdigest()[:16]
