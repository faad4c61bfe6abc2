"""Mixed precision: an autocast context per config, and a GradScaler only for fp16.

Weights and optimizer state always stay fp32 ("master weights"); autocast only changes the compute dtype.
``precision: auto`` resolves to bf16 where the device runs it natively and to fp32 elsewhere (on a CPU without
bf16 instructions, bf16 autocast falls back to reference kernels many times slower than fp32).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from contextlib import AbstractContextManager

import numpy as np
import torch

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def cpu_flags() -> set[str]:
    """The CPU feature flags of /proc/cpuinfo (empty where there is none, e.g. macOS)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_has_fast_bf16(flags: set[str] | None = None) -> bool:
    """True where bf16 matmuls run natively on this CPU: avx512_bf16 or AMX in the flags, and torch's kernels not
    capped below AVX-512 (``ATEN_CPU_CAPABILITY`` / ``ONEDNN_MAX_CPU_ISA``, as the portable test runs do)."""
    flags = cpu_flags() if flags is None else flags
    if not ({"avx512_bf16", "amx_bf16"} & flags):
        return False
    if torch.backends.cpu.get_cpu_capability() not in ("AVX512", "AVX512_BF16", "AMX"):
        return False
    isa = os.environ.get("ONEDNN_MAX_CPU_ISA", "ALL").upper()
    return isa == "ALL" or "BF16" in isa or "AMX" in isa


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` -> bf16 where ``device`` runs it natively, else fp32; any other value unchanged."""
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if device.type == "cpu" and cpu_has_fast_bf16() else "fp32"


def autocast(precision: str, device: torch.device) -> Callable[[], AbstractContextManager]:
    """A factory of autocast contexts for ``precision`` (fp32: a no-op context; auto: see `resolve_precision`)."""
    precision = resolve_precision(precision, device)
    if precision == "fp32":
        return contextlib.nullcontext
    if precision == "fp16" and device.type == "cpu":
        raise ValueError("train.precision: fp16 needs a CUDA device; use bf16 on CPU")
    dtype = DTYPES[precision]
    return lambda: torch.autocast(device_type=device.type, dtype=dtype)


def grad_scaler(precision: str, device: torch.device) -> torch.amp.GradScaler:
    """Enabled for fp16 only; a disabled scaler is a pass-through, so the loop has one code path."""
    return torch.amp.GradScaler(device.type, enabled=(precision == "fp16"))


def flush_denormals() -> bool:
    """Treat subnormal floats as zero on this thread and the CPU threads it starts later (x86 FTZ/DAZ).

    Softmax-based losses over long feature vectors (MFM-NCE) produce gradients around 1e-40; a matmul that
    meets such subnormal operands runs tens of times slower on many x86 CPUs. Flushing them changes values below
    1.2e-38 only. Call it before the first parallel region (threads started earlier keep their mode).
    Returns whether the CPU supports it.

    numpy's float limits (``np.finfo``, cached per type once computed) are computed first: computed with subnormals
    flushed, the smallest subnormal compares equal to 0 and numpy warns that it is zero (and caches it so).
    """
    for dtype in (np.float16, np.float32, np.float64):
        np.finfo(dtype)
    return torch.set_flush_denormal(True)
