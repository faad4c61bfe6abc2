"""Pipelines, registered explicitly: `find_pipelines()` would look in `pipelines.pipelines.*` (STACK.md trap 4)."""

from __future__ import annotations

from kedro.pipeline import Pipeline


def register_pipelines() -> dict[str, Pipeline]:
    from pipelines.corpus.pipeline import create_pipeline as corpus

    pipes = {"corpus": corpus()}
    pipes["__default__"] = pipes["corpus"]
    return pipes
