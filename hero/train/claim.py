"""One training process per run folder: rank 0 holds an exclusive lock on ``<run_dir>/.claim`` while it trains.

Two jobs with the same config (two `kedro run` started at once in one folder, a retried job whose first try still
runs) address the same run folder. Without a claim both trained it at once, their checkpoints and metrics.jsonl
interleaved (steps 1, 2, 1, 3, 2, ...). With it the second waits, saying who holds the folder, then resumes from
what the first left, which for a finished run is nothing to do. The lock is the kernel's (``flock``): it goes with
the process, so a killed holder leaves no stale claim behind.
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

CLAIM_FILE = ".claim"


@contextlib.contextmanager
def claim_run_dir(run_dir: str | os.PathLike) -> Iterator[None]:
    """Hold ``run_dir`` for this process; if another process holds it, log who and wait until it lets go."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / CLAIM_FILE, "a+", encoding="utf-8") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            log.warning("%s is being trained by %s; waiting for it to finish", run_dir, holder)
            t0 = time.monotonic()
            fcntl.flock(f, fcntl.LOCK_EX)
            log.info("%s: claimed after waiting %.0fs", run_dir, time.monotonic() - t0)
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        f.flush()
        try:
            yield
        finally:
            f.seek(0)
            f.truncate()  # an idle claim is an empty file: the folder's content does not depend on who trained it
            f.flush()
