"""Metric sinks: where rank 0 sends its all-reduced metrics.

Sinks are named in the config by import path (``package.module:Class``) and built with the run directory,
so orchestration (``pipelines/``) can add an MLflow sink without ``hero`` importing mlflow.
"""

from __future__ import annotations

import importlib
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

from hero.storage.atomic import write_text_atomic


@runtime_checkable
class MetricSink(Protocol):
    """Receives ``{name: value}`` at an optimizer step; ``close`` flushes and releases resources."""

    def log(self, metrics: Mapping[str, float], step: int) -> None: ...

    def close(self) -> None: ...


class JsonlSink:
    """Appends one JSON object per call, ``{"step": N, name: value, ...}``, to ``run_dir/metrics.jsonl``.

    Appending (not truncating) keeps the history of a resumed run in one file; on a resume (`resume`) the rows a
    crashed run wrote after the checkpoint it resumes from are dropped first, so every step appears once.
    """

    def __init__(self, run_dir: str | Path, filename: str = "metrics.jsonl") -> None:
        self.path = Path(run_dir) / filename
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f = open(self.path, "a", encoding="utf-8")

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        row = {"step": step, **{k: _json_float(v) for k, v in metrics.items()}}
        self._f.write(json.dumps(row) + "\n")
        self._f.flush()

    def resume(self, step: int) -> None:
        """Training continues after ``step``: keep the rows up to it (rewritten beside, then renamed into place)."""
        self._f.close()
        lines = self.path.read_text(encoding="utf-8").splitlines(keepends=True) if self.path.exists() else []
        kept = [ln for ln in lines if _row_step(ln) <= step]
        if len(kept) < len(lines):
            write_text_atomic(self.path, "".join(kept))
        self._f = open(self.path, "a", encoding="utf-8")

    def close(self) -> None:
        if not self._f.closed:
            self._f.close()


def _json_float(v: float) -> float | str:
    v = float(v)
    return v if math.isfinite(v) else str(v)


def build_sinks(paths: Sequence[str], run_dir: str | Path) -> list[MetricSink]:
    """Instantiate ``module:Class`` sink paths with ``run_dir`` as their only argument."""
    sinks: list[MetricSink] = []
    for spec in paths:
        module, _, name = spec.partition(":")
        try:
            cls = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError) as err:
            raise ValueError(f"train.sinks: cannot import {spec!r} ({err})") from err
        sink = cls(run_dir)
        if not isinstance(sink, MetricSink):
            raise TypeError(f"train.sinks: {spec} has no log(metrics, step) / close()")
        sinks.append(sink)
    return sinks


def _row_step(line: str) -> float:
    """The step of a metrics.jsonl line; a torn last line (a crash mid-write) counts as after every step."""
    try:
        return int(json.loads(line)["step"])
    except (ValueError, KeyError, TypeError):
        return math.inf
