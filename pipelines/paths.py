"""Where the pipelines put their artifacts (the Kedro data layers of DESIGN.md §2), relative to the project."""

from __future__ import annotations

import os
from pathlib import Path

from pipelines.settings import PROJECT_ROOT


def data_root() -> Path:
    """`data/` of the project, or $HERO_DATA_ROOT (tests point it at a temporary folder)."""
    return Path(os.environ.get("HERO_DATA_ROOT", PROJECT_ROOT / "data")).resolve()


def layer(name: str) -> Path:
    """A data layer folder such as ``01_raw``; created on first use."""
    p = data_root() / name
    p.mkdir(parents=True, exist_ok=True)
    return p
