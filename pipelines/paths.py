"""Where the pipelines put their artifacts (the Kedro data layers: README, 'What a run leaves behind'), relative to
the project."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path

from pipelines.settings import project_root

_DATA_ROOT: ContextVar[Path | None] = ContextVar("hero_data_root", default=None)


def data_root() -> Path:
    """`data/` of the project (see `pipelines.settings.project_root`), or the folder `data_root_at` set."""
    return _DATA_ROOT.get() or project_root() / "data"


@contextlib.contextmanager
def data_root_at(root: Path) -> Iterator[Path]:
    """The data layers under ``root`` for the code inside (this thread only).

    How a pipeline runs the corpus and features nodes for a corpus of its own (the data ablation's second domain)
    without writing into ``data/01_raw`` … ``data/03_primary``: those folders are the outs of the corpus and features
    DVC stages, and a file another stage adds there makes DVC see them modified and re-run them on every repro.
    """
    token = _DATA_ROOT.set(Path(root))
    try:
        yield Path(root)
    finally:
        _DATA_ROOT.reset(token)


def layer(name: str) -> Path:
    """A data layer folder such as ``01_raw``; created on first use."""
    p = data_root() / name
    p.mkdir(parents=True, exist_ok=True)
    return p
