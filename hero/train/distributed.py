"""Process-group setup from torchrun's environment, and the few collectives the trainer uses.

Without ``RANK``/``WORLD_SIZE`` in the environment everything runs as one process and every collective is
the identity, so the same code path serves ``python -m hero.train`` and ``torchrun -m hero.train``.
Multi-node jobs need nothing here: torchrun's ``--nnodes``/``--rdzv-endpoint`` set the same variables.
"""

from __future__ import annotations

import datetime
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistInfo:
    """rank / world_size over all nodes; local_rank on this node; device this rank computes on."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    initialized: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.initialized:
            dist.barrier()

    def shutdown(self) -> None:
        """Destroy the process group if this process created one (safe to call twice)."""
        if self.initialized and dist.is_initialized():
            dist.destroy_process_group()


def pick_device(kind: str = "auto", local_rank: int = 0) -> torch.device:
    """`auto`: cuda:local_rank when CUDA is available, else cpu."""
    if kind == "cpu" or (kind == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise RuntimeError("train.device is 'cuda' but CUDA is not available")
    return torch.device("cuda", local_rank)


def init_distributed(device: str = "auto", timeout_s: float = 600.0) -> DistInfo:
    """Join torchrun's process group (nccl on GPU, gloo on CPU), or run as one process when not launched by it."""
    env = os.environ
    if "RANK" not in env or "WORLD_SIZE" not in env:
        return DistInfo(device=pick_device(device, 0))
    rank, world = int(env["RANK"]), int(env["WORLD_SIZE"])
    local_rank = int(env.get("LOCAL_RANK", 0))
    dev = pick_device(device, local_rank)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if not dist.is_initialized():
        backend = "nccl" if dev.type == "cuda" else "gloo"
        timeout = datetime.timedelta(seconds=timeout_s)
        dist.init_process_group(backend=backend, timeout=timeout, store=_attempt_store(rank, world, timeout),
                                rank=rank, world_size=world, device_id=dev if dev.type == "cuda" else None)
    log.debug("rank %d/%d (local %d) on %s", rank, world, local_rank, dev)
    return DistInfo(rank=rank, world_size=world, local_rank=local_rank, device=dev, initialized=True)


def _attempt_store(rank: int, world: int, timeout: datetime.timedelta) -> dist.Store:
    """torchrun's rendezvous store, with keys prefixed by the restart attempt.

    Under ``torchrun --max-restarts`` the agent's TCP store outlives the workers, so without a prefix the
    workers of attempt N+1 can read the gloo/nccl addresses that attempt N's (dead) workers published and
    fail with "connection refused". ``TORCHELASTIC_RESTART_COUNT`` names the attempt.
    """
    env = os.environ
    agent_store = env.get("TORCHELASTIC_USE_AGENT_STORE") == "True"
    store = dist.TCPStore(env.get("MASTER_ADDR", "127.0.0.1"), int(env.get("MASTER_PORT", "29500")), world,
                          is_master=(rank == 0 and not agent_store), timeout=timeout,
                          **({} if agent_store else {"multi_tenant": True}))
    return dist.PrefixStore(f"hero/attempt_{env.get('TORCHELASTIC_RESTART_COUNT', '0')}", store)


def all_reduce_mean(values: Mapping[str, float], info: DistInfo, weights: Mapping[str, float] | None = None) -> dict[str, float]:
    """Mean of each named scalar over ranks (weighted by ``weights[name]`` when given, e.g. example counts).

    Names missing on some ranks are fine: every rank contributes (sum, weight) pairs for the union of names,
    which is gathered first so all ranks reduce the same vector.
    """
    if not info.initialized or info.world_size == 1:
        return dict(values)
    names: list[list[str]] = [None] * info.world_size  # type: ignore[list-item]
    dist.all_gather_object(names, sorted(values))
    keys = sorted({k for ks in names for k in ks})
    w = weights or {}
    buf = torch.zeros(2, len(keys), dtype=torch.float64, device=_collective_device(info))
    for i, k in enumerate(keys):
        if k in values:
            wk = float(w.get(k, 1.0))
            buf[0, i] = float(values[k]) * wk
            buf[1, i] = wk
    dist.all_reduce(buf)
    return {k: float(buf[0, i] / buf[1, i]) for i, k in enumerate(keys) if buf[1, i] > 0}


def all_reduce_sum(value: float, info: DistInfo) -> float:
    if not info.initialized or info.world_size == 1:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=_collective_device(info))
    dist.all_reduce(t)
    return float(t)


def _collective_device(info: DistInfo) -> torch.device:
    return info.device if dist.get_backend() == "nccl" else torch.device("cpu")


class _GatherOwnFirst(torch.autograd.Function):
    """All-gather along dim 0 with this rank's slice first; the backward returns this rank's gradient slice
    summed over ranks (each rank's loss depends on every rank's slice)."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:  # type: ignore[override]
        world, rank = dist.get_world_size(), dist.get_rank()
        sizes = [torch.zeros(1, dtype=torch.long, device=x.device) for _ in range(world)]
        dist.all_gather(sizes, torch.tensor([x.shape[0]], dtype=torch.long, device=x.device))
        n = [int(s) for s in sizes]
        m = max(n)
        padded = torch.zeros((m, *x.shape[1:]), dtype=x.dtype, device=x.device)
        padded[: x.shape[0]] = x
        parts = [torch.empty_like(padded) for _ in range(world)]
        dist.all_gather(parts, padded.contiguous())
        parts = [p[: n[r]] for r, p in enumerate(parts)]
        order = [rank] + [r for r in range(world) if r != rank]
        ctx.rank, ctx.n, ctx.order = rank, n, order
        return torch.cat([parts[r] for r in order], 0)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # type: ignore[override]
        # Put the gradient back in rank order, then every rank sums the full tensor and keeps its own slice.
        chunks = grad.split([ctx.n[r] for r in ctx.order], 0)
        by_rank = dict(zip(ctx.order, chunks))
        full = torch.cat([by_rank[r] for r in range(len(ctx.n))], 0).contiguous()
        dist.all_reduce(full)
        start = sum(ctx.n[: ctx.rank])
        return full[start : start + ctx.n[ctx.rank]]


def all_gather_own_first(x: Tensor) -> Tensor:
    """[n_r, ...] on each rank -> [sum n_r, ...], this rank's rows first, differentiable for this rank's rows.

    The callable `PretrainModel(all_gather=...)` expects (hero/tasks/vsm.py `_gather`). Integer and bool
    tensors are gathered without autograd.
    """
    if not dist.is_available() or not dist.is_initialized() or dist.get_world_size() == 1:
        return x
    if x.is_floating_point() and x.requires_grad:
        return _GatherOwnFirst.apply(x)
    with torch.no_grad():
        if x.dtype == torch.bool:
            return _GatherOwnFirst.apply(x.to(torch.uint8)).bool()
        return _GatherOwnFirst.apply(x)
