"""Where the pipelines put their artifacts (the Kedro data layers of DESIGN.md §2), relative to the project."""

from __future__ import annotations

from pathlib import Path

from pipelines.settings import project_root


def data_root() -> Path:
    """`data/` of the project (see `pipelines.settings.project_root`)."""
    return project_root() / "data"


def layer(name: str) -> Path:
    """A data layer folder such as ``01_raw``; created on first use."""
    p = data_root() / name
    p.mkdir(parents=True, exist_ok=True)
    return p
