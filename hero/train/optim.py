"""AdamW with decoupled weight decay on weight matrices only, per-head learning-rate multipliers, and a
warmup-then-decay schedule (docs/hero-fidelity.md b.5: linear warmup, then linear decay to 0)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping

import torch
from torch import Tensor, nn

from hero.train.config import OptimConfig


def _no_decay(name: str, param: nn.Parameter) -> bool:
    """Biases, LayerNorm weights and other vectors (mask vectors, conv kernels with one channel) get no decay."""
    return param.ndim < 2 or name.endswith(".bias") or ".norm" in name or "norm." in name


def param_groups(model: nn.Module, cfg: OptimConfig) -> list[dict]:
    """Parameter groups: (head, encoder, or an ``lr_mult`` prefix) x (decay or not), each with its ``lr_mult``.

    A parameter belongs to head ``h`` when its name starts with ``heads.<h>.``; the longest prefix of
    ``cfg.lr_mult`` that its name starts with (on a dot boundary) overrides that. Unknown head names in
    ``cfg.head_lr_mult`` and prefixes of ``cfg.lr_mult`` that match no parameter are errors, so a typo does not
    silently train at the base rate.
    """
    heads = getattr(model, "heads", None)
    known = set(heads.keys()) if isinstance(heads, nn.ModuleDict) else set()
    unknown = set(cfg.head_lr_mult) - known
    if unknown:
        raise ValueError(f"optim.head_lr_mult: unknown head(s) {sorted(unknown)} (heads: {sorted(known)})")
    prefixes = sorted(cfg.lr_mult, key=len, reverse=True)
    used: set[str] = set()
    groups: dict[tuple[str, bool], dict] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        head = name.split(".")[1] if name.startswith("heads.") else "encoder"
        label, mult = head, cfg.head_lr_mult.get(head, 1.0)
        prefix = next((x for x in prefixes if name == x or name.startswith(x + ".")), None)
        if prefix is not None:
            label, mult = prefix, cfg.lr_mult[prefix]
            used.add(prefix)
        decay = not _no_decay(name, p)
        g = groups.setdefault((label, decay), {
            "params": [], "names": [], "weight_decay": cfg.weight_decay if decay else 0.0,
            "lr_mult": mult, "group": f"{label}/{'decay' if decay else 'no_decay'}",
        })
        g["params"].append(p)
        g["names"].append(name)
    if set(cfg.lr_mult) - used:
        raise ValueError(f"optim.lr_mult: no parameter is named by {sorted(set(cfg.lr_mult) - used)} "
                         f"(e.g. encoder.text_embed, encoder.cross, heads.<head>)")
    return [groups[k] for k in sorted(groups)]


def with_model_lr_mults(model: nn.Module, cfg: OptimConfig) -> OptimConfig:
    """``cfg`` with the multipliers ``model.lr_mults()`` asks for (a finetuning task's own, by parameter-name
    prefix; e.g. TVR's ``finetune.match_lr_mult``) under its ``lr_mult``, which wins where both name a prefix."""
    extra = model.lr_mults() if hasattr(model, "lr_mults") else {}
    return dataclasses.replace(cfg, lr_mult={**extra, **cfg.lr_mult}) if extra else cfg


def build_optimizer(model: nn.Module, cfg: OptimConfig) -> torch.optim.AdamW:
    cfg = with_model_lr_mults(model, cfg)
    groups = param_groups(model, cfg)
    for g in groups:
        g["lr"] = cfg.lr * g["lr_mult"]
    fused = cfg.fused and all(p.is_floating_point() and p.device.type in ("cpu", "cuda")
                              for g in groups for p in g["params"])
    optimizer = torch.optim.AdamW(groups, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps, fused=fused or None)
    if fused:
        optimizer.register_step_post_hook(_bump_versions)
    return optimizer


def _bump_versions(optimizer: torch.optim.Optimizer, args, kwargs) -> None:
    """torch's fused Adam / AdamW kernels update the parameters in place without bumping their version counters
    (its foreach and for-loop kernels do, as every in-place op does); the model's low-precision copies of its
    parameters (`hero.model.linear.cast_param`, the tied decoder's) are refreshed when that counter moves."""
    torch.autograd.graph.increment_version([p for g in optimizer.param_groups for p in g["params"]])


def lr_factor(step: int, cfg: OptimConfig, max_steps: int) -> float:
    """Multiplier of the base lr at optimizer step ``step`` (0-based): linear warmup, then decay."""
    if cfg.warmup_steps and step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    if cfg.decay == "constant":
        return 1.0
    span = max(1, max_steps - cfg.warmup_steps)
    t = min(1.0, (step - cfg.warmup_steps) / span)
    shape = 1.0 - t if cfg.decay == "linear" else 0.5 * (1.0 + math.cos(math.pi * t))
    return cfg.min_lr_ratio + (1.0 - cfg.min_lr_ratio) * shape


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: OptimConfig, max_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """LambdaLR over every group (the group's own lr already carries its head multiplier)."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, cfg, max_steps))


def clip_grad_norm(params: list[nn.Parameter], max_norm: float, *,
                   rows: Mapping[nn.Parameter, Tensor] | None = None,
                   optimizer: torch.optim.Optimizer | None = None) -> Tensor:
    """`torch.nn.utils.clip_grad_norm_` (``max_norm`` <= 0: no clipping, the norm only), with the same values up to
    float rounding, and less memory traffic on the CPU (where reading the clip coefficient costs no host sync):

    * gradients are scaled only when the coefficient is below 1 (torch multiplies every gradient by the coefficient
      clamped to 1, a full pass over the 50k-row word table's gradient and every other for nothing);
    * ``rows``: for a parameter whose gradient is known to be zero outside some rows (the word table's, in a step
      where only lookups reached it: a few hundred of 50k rows), its norm is taken over those rows alone;
    * ``optimizer``: when it is a fused AdamW/Adam, the coefficient is not applied here but handed to its next
      step (see `scales_in_step`), whose kernel reads every gradient anyway: call ``optimizer.step()`` right after
      (the trainer does; `take_step_scale` removes it again).
    Returns the total norm (before clipping)."""
    rows = rows or {}
    grads = [p.grad.index_select(0, rows[p]) if p in rows else p.grad for p in params if p.grad is not None]
    total = torch.nn.utils.get_total_norm(grads, 2.0)
    if max_norm <= 0 or not grads:
        return total
    if not all(p.grad.device.type == "cpu" for p in params if p.grad is not None):
        torch.nn.utils.clip_grads_with_norm_(params, max_norm, total)
        return total
    coef = max_norm / (float(total) + 1e-6)          # torch's coefficient
    if coef >= 1.0:                                  # clamped to 1: a multiply by 1
        return total
    if optimizer is not None and scales_in_step(optimizer):
        # the fused kernel divides each gradient by `grad_scale` as it reads it (the protocol torch's GradScaler
        # uses with these optimizers): dividing by 1/coef is clipping, to a rounding of the gradient
        optimizer.grad_scale = torch.tensor(1.0 / coef, dtype=torch.float32)
        return total
    torch.nn.utils.clip_grads_with_norm_(params, max_norm, total)
    return total


def scales_in_step(optimizer: torch.optim.Optimizer) -> bool:
    """True for a fused torch Adam/AdamW on the CPU, whose step can apply a gradient scale (`clip_grad_norm`)."""
    return (isinstance(optimizer, torch.optim.Adam | torch.optim.AdamW)
            and all(g.get("fused") for g in optimizer.param_groups)
            and all(p.device.type == "cpu" for g in optimizer.param_groups for p in g["params"]))


def take_step_scale(optimizer: torch.optim.Optimizer) -> None:
    """Remove the gradient scale `clip_grad_norm` handed to ``optimizer`` (after its step, or when it is skipped)."""
    optimizer.__dict__.pop("grad_scale", None)
