"""The extractor registry: per-clip feature extractors by name, each with a config and optional weights file.

An extractor turns one video's decoded clips into a [C, dim] float array. Its `fingerprint` (name, the config
fields that change its output, the SHA-256 of its weights) is part of every cached entry's key, so changing the
extractor re-extracts exactly the entries it made.

Register your own::

    @register_extractor("my-resnet")
    def build(config: dict, weights: str | None) -> Extractor:
        return TorchImageExtractor("my-resnet", make_resnet(weights), dim=2048, weights=weights)
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from hero.features.decode import ClipFrames, DecodeSpec


class Extractor(Protocol):
    name: str
    dim: int
    decode: DecodeSpec
    """What the extractor needs decoded from each clip."""

    def fingerprint(self) -> dict[str, Any]:
        """Everything that changes the output: name, output-relevant config, weights hash (JSON-serializable)."""

    def __call__(self, clips: ClipFrames) -> np.ndarray:
        """clips of one video -> [C, dim] float32."""


ExtractorFactory = Callable[[dict[str, Any], "str | None"], Extractor]
_REGISTRY: dict[str, ExtractorFactory] = {}


def register_extractor(name: str) -> Callable[[ExtractorFactory], ExtractorFactory]:
    """Decorator: register ``factory(config: dict, weights: str | None) -> Extractor`` under ``name``."""

    def deco(factory: ExtractorFactory) -> ExtractorFactory:
        _REGISTRY[name] = factory
        return factory

    return deco


def available_extractors() -> list[str]:
    _load_builtin()
    return sorted(_REGISTRY)


def build_extractor(name: str, config: dict[str, Any] | None = None, weights: str | None = None) -> Extractor:
    """Instantiate the registered extractor ``name`` (weights: a local file path, or None for its default)."""
    _load_builtin()
    if name not in _REGISTRY:
        raise KeyError(f"unknown extractor {name!r} (registered: {', '.join(sorted(_REGISTRY))})")
    return _REGISTRY[name](dict(config or {}), weights)


_HASHES: dict[tuple[str, int, int], str] = {}


def weights_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a weights file (memoized on path, size and mtime)."""
    st = os.stat(path)
    key = (os.path.abspath(path), st.st_size, st.st_mtime_ns)
    if key not in _HASHES:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            while block := f.read(1 << 20):
                h.update(block)
        _HASHES[key] = h.hexdigest()
    return _HASHES[key]


def _load_builtin() -> None:
    import hero.features.appearance  # noqa: F401  (registers the built-in extractors)
