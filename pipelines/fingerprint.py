"""Cheap content addresses for pipeline artifacts: what made an artifact decides whether it is rebuilt."""

from __future__ import annotations

import hashlib
import json
import os
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

