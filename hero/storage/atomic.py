"""The one atomic writer: every artifact appears whole or not at all.

`atomic_path` yields a temporary sibling of the target (a file or a folder: the caller writes it); on success it
is moved into place with ``os.replace``, on any error it is removed and the target is left as it was. A reader
therefore never sees half a file. The helpers below are what most callers need: an open text/binary file
(`atomic_writer`, fsynced before the rename) and whole bytes / text / JSON (`write_*_atomic`).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


@contextlib.contextmanager
def atomic_path(path: str | Path, *, replace: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (not yet created); on success it becomes ``path``.

    The temporary name is ``.<name>.<pid>.<random>.tmp``, hidden and owned by this process (a caller that
    cleans up stale temporaries can tell its own by the pid).

    Args:
        replace: an existing ``path`` is replaced (a folder wholesale: the old one is moved aside first, then
            removed, so ``path`` never goes missing). False: the first writer wins; an existing ``path`` is kept
            and this write discarded (for caches that several processes fill with the same contents).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()  # the caller creates a file or a folder here
    try:
        yield tmp
        _publish(tmp, path, replace)
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()


def _publish(tmp: Path, path: Path, replace: bool) -> None:
    if not replace:
        try:
            if tmp.is_dir():
                os.rename(tmp, path)  # refuses an existing non-empty folder
            else:
                os.link(tmp, path)    # refuses any existing file
        except OSError:
            if not path.exists():
                raise
        return
    if tmp.is_dir() and path.is_dir():
        old = path.with_name(f".{path.name}.old-{os.getpid()}")
        os.replace(path, old)
        os.replace(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, path)


@contextlib.contextmanager
def atomic_writer(path: str | Path, mode: str = "w") -> Iterator[IO[Any]]:
    """Open ``path`` for writing (``"w"``: UTF-8 text with ``\\n`` line ends, ``"wb"``: bytes) so that it appears
    complete or not at all; the file is fsynced before it is renamed into place."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_writer: mode must be 'w' or 'wb', got {mode!r}")
    text = {"encoding": "utf-8", "newline": "\n"} if mode == "w" else {}
    with atomic_path(path) as tmp, open(tmp, mode, **text) as f:
        yield f
        f.flush()
        os.fsync(f.fileno())


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    with atomic_writer(path, "wb") as f:
        f.write(data)


def write_text_atomic(path: str | Path, text: str) -> None:
    with atomic_writer(path) as f:
        f.write(text)


def write_json_atomic(path: str | Path, obj: Any, indent: int | None = None, *, sort_keys: bool = False) -> None:
    """``obj`` as JSON plus a newline."""
    write_text_atomic(path, json.dumps(obj, indent=indent, sort_keys=sort_keys) + "\n")
