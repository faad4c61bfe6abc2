"""Where the pipelines put their artifacts (the Kedro data layers: README, 'What a run leaves behind'), relative to
the project."""

from __future__ import annotations

import contextlib
import os
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


def reports(*parts: str) -> Path:
    """``reports/`` at the project root: the small metrics and plot files git and DVC track (``dvc metrics diff``,
    ``dvc exp show``, ``dvc plots show``)."""
    return project_root().joinpath("reports", *parts)


def is_uri(path: str | os.PathLike) -> bool:
    """``s3://bucket/x`` and the like: a location no folder move changes."""
    return "://" in str(path)


def relative(path: str | os.PathLike) -> str:
    """``path`` as the project records it: relative to the project root (forward slashes) when it lies inside the
    project, so a record stays true when the folder is moved or cloned elsewhere; a URI, or a path outside the
    project (a user's corpus under /data), as given."""
    text = str(path)
    if is_uri(text):
        return text
    p = Path(text)
    if not p.is_absolute():
        return p.as_posix()
    root = project_root()
    for candidate in (p, p.resolve()):
        try:
            return candidate.relative_to(root).as_posix()
        except ValueError:
            continue
    return p.as_posix()


def resolve(path: str | os.PathLike) -> str:
    """The location ``path`` (a record's value) names from any working directory: a project-relative path joined to
    the project root; absolute paths and URIs as they are."""
    text = str(path)
    if is_uri(text):
        return text
    p = Path(text).expanduser()
    return str(p if p.is_absolute() else project_root() / p)
