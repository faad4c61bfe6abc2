"""One training process per run folder: rank 0 holds ``<run_dir>/.claim`` while it trains.

Two jobs with the same config (two `kedro run` started at once in one folder, a retried job whose first try still
runs) address the same run folder. Without a claim both trained it at once, their checkpoints and metrics.jsonl
interleaved (steps 1, 2, 1, 3, 2, ...). With it the second waits, saying who holds the folder, then resumes from
what the first left, which for a finished run is nothing to do (`hero.storage.lock.hold`: a killed holder leaves
no stale claim).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from hero.storage.lock import hold

CLAIM_FILE = ".claim"


@contextlib.contextmanager
def claim_run_dir(run_dir: str | os.PathLike) -> Iterator[None]:
    """Hold ``run_dir`` for this process; if another process holds it, log who and wait until it lets go."""
    run_dir = Path(run_dir)
    with hold(run_dir / CLAIM_FILE, f"training {run_dir}"):
        yield
