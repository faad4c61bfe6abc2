"""Mixed precision: an autocast context per config, and a GradScaler only for fp16.

Weights and optimizer state always stay fp32 ("master weights"); autocast only changes the compute dtype.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from contextlib import AbstractContextManager

import torch

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def autocast(precision: str, device: torch.device) -> Callable[[], AbstractContextManager]:
    """A factory of autocast contexts for ``precision`` (fp32: a no-op context)."""
    if precision == "fp32":
        return contextlib.nullcontext
    if precision == "fp16" and device.type == "cpu":
        raise ValueError("train.precision: fp16 needs a CUDA device; use bf16 on CPU")
    dtype = DTYPES[precision]
    return lambda: torch.autocast(device_type=device.type, dtype=dtype)


def grad_scaler(precision: str, device: torch.device) -> torch.amp.GradScaler:
    """Enabled for fp16 only; a disabled scaler is a pass-through, so the loop has one code path."""
    return torch.amp.GradScaler(device.type, enabled=(precision == "fp16"))
