"""Checkpoints: ``run_dir/step-NNNNNNNN/`` directories written atomically by rank 0.

A checkpoint directory holds

    model.safetensors   the unwrapped model's weights (shared tensors stored once)
    state.safetensors   every tensor of the training state: optimizer moments, torch/CUDA RNG states
    state.json          everything else: step, resolved config, model config, scheduler, scaler, sampler,
                        task stream, python/numpy RNG states per rank, the optimizer's non-tensor state
    manifest.json       size and sha256 of the three files above (written last)

Nothing is unpickled: tensors come from safetensors, the rest from JSON. The directory is assembled under a
temporary name and renamed into place, so a reader sees either the whole checkpoint or none of it; a
checkpoint whose files do not match its manifest (truncated, corrupted) is skipped with a warning and the
previous one is used. At most ``keep_last_k`` (>= 2) checkpoints are kept.

A finished checkpoint can be published to shared storage (`publish_checkpoint`: ``<uri>/step-N/``, manifest.json
uploaded last, so a remote step folder counts only once its manifest is there) and fetched back
(`fetch_checkpoint`: into the local cache, verified against its manifest before use).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, load_model, save_file, save_model
from torch import Tensor, nn

from hero.storage import (
    Storage,
    cache_root,
    is_remote,
    join_uri,
    local_file,
    open_storage,
)
from hero.storage.atomic import atomic_path

log = logging.getLogger(__name__)

STEP_DIR = re.compile(r"^step-(\d+)$")
FILES = ("model.safetensors", "state.safetensors", "state.json")
FORMAT = 1


class ArchitectureMismatch(ValueError):
    """The checkpoint was trained with a different architecture; the message names the field(s)."""


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint on disk, loaded lazily: ``meta`` is state.json; ``tensors()`` reads state.safetensors."""

    path: Path
    step: int
    meta: dict[str, Any]

    def tensors(self, device: str | torch.device = "cpu") -> dict[str, Tensor]:
        return load_file(self.path / "state.safetensors", device=str(device))

    def load_weights(self, model: nn.Module, strict: bool = True) -> tuple[list[str], list[str]]:
        """Load the weights into ``model`` (unwrapped); returns (missing, unexpected) keys when not strict."""
        missing, unexpected = load_model(model, self.path / "model.safetensors", strict=strict)
        return list(missing), list(unexpected)


def unwrap(model: nn.Module) -> nn.Module:
    """Strip DDP's ``.module`` and torch.compile's ``._orig_mod`` (OC unwrap_model)."""
    while True:
        if hasattr(model, "module") and isinstance(model.module, nn.Module):
            model = model.module
        elif hasattr(model, "_orig_mod") and isinstance(model._orig_mod, nn.Module):
            model = model._orig_mod
        else:
            return model


ADDED_MODEL_FIELDS = {"regions": False, "region_dim": 1280}
"""Model fields added after checkpoints were first written, with the value those checkpoints had."""


def check_architecture(saved: Mapping[str, Any], current: Mapping[str, Any]) -> None:
    """Raise `ArchitectureMismatch` naming every model field that differs between checkpoint and config."""
    saved = {**ADDED_MODEL_FIELDS, **saved}   # a checkpoint from before a field existed ran with its default
    diffs = [f"model.{k}: checkpoint has {saved.get(k)!r}, config has {current.get(k)!r}"
             for k in sorted(set(saved) | set(current)) if _plain(saved.get(k)) != _plain(current.get(k))]
    if diffs:
        raise ArchitectureMismatch("cannot resume: the architecture differs from the checkpoint's\n  " + "\n  ".join(diffs))


def _plain(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v


# ---------------------------------------------------------------------------------------------- writing
def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_checkpoint(run_dir: str | Path, step: int, model: nn.Module, tensors: Mapping[str, Tensor],
                    meta: Mapping[str, Any], keep_last_k: int) -> Path:
    """Write ``run_dir/step-<step>`` atomically (call on rank 0 only) and prune to the newest ``keep_last_k``.

    Args:
        model: the model; DDP/compile wrappers are stripped.
        tensors: named tensors of the training state (any device; stored on CPU).
        meta: JSON-serialisable training state.
    """
    if keep_last_k < 2:
        raise ValueError("keep_last_k must be >= 2: the newest checkpoint may be half-written when a job dies")
    run_dir = Path(run_dir)
    final = run_dir / f"step-{step:08d}"
    # a re-run that reaches the same step replaces the old folder (moved aside first: never neither)
    with atomic_path(final) as tmp:
        tmp.mkdir()
        save_model(unwrap(model), str(tmp / "model.safetensors"))
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp / "state.safetensors"))
        (tmp / "state.json").write_text(json.dumps({"format": FORMAT, "step": step, **meta}, indent=1))
        for name in FILES:
            _fsync(tmp / name)
        manifest = {"format": FORMAT, "step": step,
                    "files": {n: {"size": (tmp / n).stat().st_size, "sha256": _sha256(tmp / n)} for n in FILES}}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))
        _fsync(tmp / "manifest.json")
    _fsync(run_dir)
    prune(run_dir, keep_last_k)
    return final


def prune(run_dir: Path, keep_last_k: int) -> None:
    """Delete all but the newest ``keep_last_k`` step directories and any stale temporary directories."""
    steps = list_steps(run_dir)
    for _, path in steps[:-keep_last_k]:
        shutil.rmtree(path, ignore_errors=True)
    # folders a killed writer left half-written (hero.storage.atomic names them .step-N.<pid>.<random>.tmp)
    for p in run_dir.glob(".step-*.tmp"):
        if f".{os.getpid()}." not in p.name:
            shutil.rmtree(p, ignore_errors=True)


# ---------------------------------------------------------------------------------------------- reading
def list_steps(run_dir: str | Path) -> list[tuple[int, Path]]:
    """Every ``step-N`` directory in ``run_dir``, oldest first."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in run_dir.iterdir() if p.is_dir() and (m := STEP_DIR.match(p.name))]
    return sorted(found)


def verify(path: Path) -> str | None:
    """None when every file matches the manifest, else what is wrong."""
    try:
        manifest = json.loads((path / "manifest.json").read_text())
        files = manifest["files"]
    except (OSError, ValueError, KeyError) as err:
        return f"unreadable manifest ({err})"
    for name in FILES:
        p = path / name
        want = files.get(name)
        if want is None:
            return f"{name} not in the manifest"
        if not p.is_file():
            return f"{name} is missing"
        size = p.stat().st_size
        if size != want["size"]:
            return f"{name} has {size} bytes, the manifest says {want['size']} (truncated?)"
        if _sha256(p) != want["sha256"]:
            return f"{name} does not match its checksum (corrupted?)"
    return None


def find_latest(run_dir: str | Path) -> Checkpoint | None:
    """The newest valid checkpoint in ``run_dir``; invalid newer ones are skipped with a warning."""
    steps = list_steps(run_dir)
    for step, path in reversed(steps):
        problem = verify(path)
        if problem is None:
            try:
                meta = json.loads((path / "state.json").read_text())
                return Checkpoint(path=path, step=int(meta["step"]), meta=meta)
            except (OSError, ValueError, KeyError) as err:
                problem = f"unreadable state.json ({err})"
        log.warning("checkpoint %s is invalid: %s; falling back to the previous one", path, problem)
    if steps:
        log.warning("%s: none of its %d checkpoints is valid (see above): training starts again from step 0",
                    run_dir, len(steps))
    return None


def load_step(path: str | Path) -> Checkpoint:
    """A specific checkpoint directory, verified."""
    path = Path(path)
    problem = verify(path)
    if problem is not None:
        raise ValueError(f"checkpoint {path} is invalid: {problem}")
    meta = json.loads((path / "state.json").read_text())
    return Checkpoint(path=path, step=int(meta["step"]), meta=meta)


# ---------------------------------------------------------------------------------------------- shared storage
def publish_checkpoint(path: str | Path, uri: str) -> str:
    """Upload the checkpoint directory ``path`` to ``<uri>/<its name>/`` (``uri``: ``s3://...`` or a folder).

    The three data files go first and manifest.json last, each whole or not at all, so a reader that finds
    the manifest finds the rest. Returns the published step folder's URI.
    """
    path = Path(path)
    dest = open_storage(join_uri(uri, path.name), create=True)
    for name in (*FILES, "manifest.json"):
        dest.upload_file(path / name, name)
    return dest.root


def fetch_checkpoint(uri: str) -> Path:
    """A verified local copy of the published checkpoint at ``uri``: a step folder, a run folder (its newest
    step folder holding a manifest.json) or a ``.safetensors`` file (returned as is).

    Step folders are cached under ``cache_root()/checkpoints/<sha256 of the manifest>/`` (the manifest holds
    every file's sha256, so equal keys mean equal contents); concurrent fetches (one per rank) each download
    to a temporary folder and the first rename wins.
    """
    if uri.endswith(".safetensors"):
        return Path(local_file(uri))
    src = open_storage(uri)
    if not src.exists("manifest.json"):
        src = open_storage(join_uri(uri, _newest_published_step(src)))
    manifest = src.read_bytes("manifest.json")
    final = cache_root() / "checkpoints" / hashlib.sha256(manifest).hexdigest() / src.root.rsplit("/", 1)[-1]
    if final.is_dir():
        return final
    # replace=False: when another process (rank) got there first, with the same contents, its copy stays
    with atomic_path(final, replace=False) as tmp:
        tmp.mkdir()
        for name in FILES:
            src.download_file(name, tmp / name)
        (tmp / "manifest.json").write_bytes(manifest)
        problem = verify(tmp)
        if problem is not None:
            raise ValueError(f"checkpoint {src.root} is invalid: {problem}")
    log.info("fetched checkpoint %s -> %s", src.root, final)
    return final


def _newest_published_step(run: Storage) -> str:
    """The name of the newest ``step-N`` folder of ``run`` that holds a manifest.json."""
    steps = []
    for rel in run.list_files(""):
        step_dir, _, name = rel.partition("/")
        if name == "manifest.json" and (m := STEP_DIR.match(step_dir)):
            steps.append((int(m.group(1)), step_dir))
    if not steps:
        raise FileNotFoundError(f"{run.root}: no published checkpoint (neither manifest.json nor step-N/manifest.json)")
    return max(steps)[1]


def local_source(source: str) -> str:
    """``train.init_from`` as a local path: itself when local, else `fetch_checkpoint`'s copy."""
    return str(fetch_checkpoint(source)) if is_remote(source) else source


# ---------------------------------------------------------------------------------------------- state <-> files
def split_state(state: Any, prefix: str, tensors: dict[str, Tensor]) -> Any:
    """Replace every tensor inside a nested dict/list state by a ``{"__tensor__": name}`` reference.

    The tensors go into ``tensors`` under ``prefix.<path>``; the returned structure is JSON-serialisable
    (dict keys become strings; their original type is recorded so ints come back as ints).
    """
    if isinstance(state, Tensor):
        tensors[prefix] = state
        return {"__tensor__": prefix}
    if isinstance(state, Mapping) and all(isinstance(k, str) and not k.startswith("__") for k in state):
        return {k: split_state(v, f"{prefix}.{k}", tensors) for k, v in state.items()}
    if isinstance(state, Mapping):
        return {"__dict__": [[k, type(k).__name__, split_state(v, f"{prefix}.{k}", tensors)] for k, v in state.items()]}
    if isinstance(state, (list, tuple)):
        return [split_state(v, f"{prefix}.{i}", tensors) for i, v in enumerate(state)]
    return state


def join_state(state: Any, tensors: Mapping[str, Tensor]) -> Any:
    """Inverse of `split_state`."""
    if isinstance(state, dict):
        if "__tensor__" in state:
            return tensors[state["__tensor__"]]
        if "__dict__" in state:
            return {(int(k) if t == "int" else k): join_state(v, tensors) for k, t, v in state["__dict__"]}
        return {k: join_state(v, tensors) for k, v in state.items()}
    if isinstance(state, list):
        return [join_state(v, tensors) for v in state]
    return state
