"""Metrics as the flat ``{"<task>/<split>/<metric>": value}`` dict of ``data/08_reporting/metrics.json``
(docs/formats.md), e.g. ``tvr/val/vcmr_r1_iou0.7``."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from pathlib import Path

from hero.metrics.formats.files import FormatError, PathLike
from hero.storage.atomic import atomic_writer

_PART = re.compile(r"^[A-Za-z0-9_.\-]+$")


def flatten_metrics(task: str, split: str, metrics: Mapping[str, float]) -> dict[str, float]:
    """``{"vcmr_r1_iou0.7": 3.1}`` -> ``{"tvr/val/vcmr_r1_iou0.7": 3.1}``.

    Raises ValueError on a name part that is empty or holds ``/`` or spaces, or on a non-finite value.
    """
    for label, part in (("task", task), ("split", split), *(("metric", m) for m in metrics)):
        if not _PART.match(part):
            raise ValueError(f"{label} name {part!r} must be non-empty letters, digits, '_', '.', '-'")
    out = {}
    for name, value in metrics.items():
        v = float(value)
        if not math.isfinite(v):
            raise ValueError(f"{task}/{split}/{name} is not finite: {value!r}")
        out[f"{task}/{split}/{name}"] = v
    return out


def write_metrics_json(path: PathLike, flat: Mapping[str, float], *, merge: bool = True) -> dict[str, float]:
    """Write the flat metrics atomically (sorted keys); with ``merge``, keep the keys already in the file that
    ``flat`` does not replace. Returns what was written."""
    current: dict[str, float] = {}
    if merge and Path(path).exists():
        try:
            current = json.loads(Path(path).read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise FormatError(path, err.lineno, f"invalid JSON: {err.msg}") from None
        if not isinstance(current, dict):
            raise FormatError(path, 1, "expected a JSON object of metrics")
    current.update(flat)
    with atomic_writer(path) as f:
        json.dump(dict(sorted(current.items())), f, indent=2, allow_nan=False)
        f.write("\n")
    return current
