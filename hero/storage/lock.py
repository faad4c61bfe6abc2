"""Exclusive holds on local files, for work that two processes must not do at once (the kernel's ``flock``).

A holder writes who it is into the lock file while it holds it; a process that finds the file held logs the holder
and waits. The kernel drops the lock with the process, so a killed holder leaves no stale lock, and the file is
emptied on release, so a folder's content does not depend on who last held a lock in it.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)


@contextlib.contextmanager
def hold(lock_file: str | os.PathLike, purpose: str) -> Iterator[None]:
    """Hold ``lock_file`` exclusively for ``purpose`` (words for the log: "training runs/x"); wait if it is held."""
    path = Path(lock_file)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+", encoding="utf-8") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            log.warning("%s: held by %s; waiting for it to finish", purpose, holder)
            t0 = time.monotonic()
            fcntl.flock(f, fcntl.LOCK_EX)
            log.info("%s: ours after waiting %.0fs", purpose, time.monotonic() - t0)
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        f.flush()
        try:
            yield
        finally:
            f.seek(0)
            f.truncate()
            f.flush()
