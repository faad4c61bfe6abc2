"""Built-in extractors: `efficientnet-lite0` (the default: appearance + motion + colour, 2648-d per clip) and
`TorchImageExtractor`, a wrapper for a user's own image network.

Default feature per clip, concatenated [2D appearance | motion | colour] as HERO concatenates 2D and 3D features:
    1280  global average pool of EfficientNet-Lite0's last feature map (the clip's middle frame at 224x224)
    1280  the same map pooled with weights from the clip's frame differences (who is acting)
      16  frame-difference energy on a 4x4 grid (is something moving, where)
      48  mean RGB on a 4x4 grid (who/what is visible)
      24  8-bin histogram per RGB channel
Frame differences and colour use `motion_frames` small frames spread over the clip.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hero.config import ConfigError, from_dict
from hero.features.decode import ClipFrames, DecodeSpec
from hero.features.efficientnet import fuse_batchnorm, load_efficientnet_lite0, default_weights_path
from hero.features.regions import RegionConfig, cut_regions
from hero.features.registry import register_extractor, weights_sha256


@functools.cache
def cpu_has_fast_bf16() -> bool:
    """True where the CPU has native bf16 matmul/conv (avx512_bf16 or AMX); elsewhere bf16 autocast is far slower
    than fp32 (oneDNN falls back to reference kernels: measured 30x slower for depthwise convolutions)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


@dataclass(frozen=True, kw_only=True)
class EfficientNetConfig:
    image_size: int = 192
    """CNN input side; frames are resized to it (never fed at their small native size). 192 rather than 224: on
    a 2-core CPU without native bf16 it is 1.4x faster (~35 vs ~50 CPU-ms per clip), which the 50 clips/s
    target needs; set 224 where compute allows."""
    motion_size: tuple[int, int] = (80, 60)
    motion_frames: int = 8
    grid: int = 4
    hist_bins: int = 8
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    """`auto`: bf16 autocast where the CPU (or a GPU) runs it natively, else fp32."""
    batch_size: int = 8
    """Clips per CNN forward pass (does not change the output; small batches keep activations in cache)."""
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.image_size < 32:
            raise ConfigError(f"extractor.image_size: must be >= 32, got {self.image_size}")
        if self.motion_frames < 2:
            raise ConfigError(f"extractor.motion_frames: must be >= 2, got {self.motion_frames}")
        if self.grid < 1 or self.hist_bins < 1 or self.batch_size < 1:
            raise ConfigError("extractor.grid, hist_bins and batch_size must be >= 1")

    @property
    def dim(self) -> int:
        return 1280 * 2 + self.grid ** 2 * 4 + 3 * self.hist_bins

    def resolved_precision(self) -> str:
        if self.precision != "auto":
            return self.precision
        return "bf16" if self.device.startswith("cuda") or cpu_has_fast_bf16() else "fp32"


def motion_map(motion: Tensor, pair_mask: Tensor) -> Tensor:
    """Mean absolute frame difference per pixel. motion: [B, M, 3, h, w] in [0, 255]; pair_mask: [B, M-1] -> [B, h, w]."""
    diff = (motion[:, 1:] - motion[:, :-1]).abs().mean(2)                   # [B, M-1, h, w]
    m = pair_mask.to(diff.dtype)
    return (diff * m[..., None, None]).sum(1) / m.sum(1).clamp(min=1)[:, None, None]


def colour_stats(motion: Tensor, grid: int, bins: int) -> Tensor:
    """[B, M, 3, h, w] in [0, 255] -> [B, 3*grid^2 + 3*bins]: grid mean RGB, then per-channel histograms (sum 1)."""
    B = motion.shape[0]
    mean_rgb = F.adaptive_avg_pool2d(motion.mean(1), grid).flatten(1) / 255.0  # [B, 3*g*g] (channel-major)
    idx = (motion.clamp(0, 255) * (bins / 256.0)).long().clamp_(max=bins - 1)  # [B, M, 3, h, w]
    offset = (torch.arange(B)[:, None] * 3 + torch.arange(3)[None]) * bins      # [B, 3]
    flat = (idx + offset[:, None, :, None, None]).flatten()
    hist = torch.bincount(flat, minlength=B * 3 * bins).view(B, 3, bins).float()
    return torch.cat([mean_rgb, (hist / hist.sum(-1, keepdim=True)).flatten(1)], 1)


class EfficientNetMotion:
    """The default extractor (see the module docstring for the 2648 dimensions)."""

    name = "efficientnet-lite0"

    def __init__(self, cfg: EfficientNetConfig, weights: str | None = None) -> None:
        self.cfg = cfg
        self.weights = str(weights or default_weights_path())
        self.dim = cfg.dim
        self.decode = DecodeSpec(image_size=cfg.image_size, motion_size=cfg.motion_size, motion_frames=cfg.motion_frames)
        self.precision = cfg.resolved_precision()
        self.device = torch.device(cfg.device)
        self._model: nn.Module | None = None

    @property
    def model(self) -> nn.Module:
        """Loaded on first use, so a cache check (which needs only the fingerprint) costs no model load."""
        if self._model is None:
            self._model = fuse_batchnorm(load_efficientnet_lite0(self.weights)).to(self.device, memory_format=torch.channels_last)
        return self._model

    def fingerprint(self) -> dict[str, Any]:
        cfg = {k: v for k, v in asdict(self.cfg).items() if k not in ("batch_size", "device", "precision")}
        return {"name": self.name, "config": cfg, "precision": self.precision, "weights_sha256": weights_sha256(self.weights)}

    def __call__(self, clips: ClipFrames) -> np.ndarray:
        return self._features(clips, None)[0]

    def region_features(self, clips: ClipFrames, regions: RegionConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(pooled [C, dim], region features [C, R, 1280], boxes [C, R, 4]) from one CNN pass
        (`hero.features.regions`: the same feature map the pooled vector averages)."""
        return self._features(clips, regions)

    @torch.inference_mode()
    def _features(self, clips: ClipFrames, regions: RegionConfig | None) -> tuple:
        out, reg, box = [], [], []
        bs, cfg = self.cfg.batch_size, self.cfg
        for s in range(0, clips.num_clips, bs):
            x = ((clips.cnn[s:s + bs] - 127.0) / 128.0).to(self.device).contiguous(memory_format=torch.channels_last)
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"):
                fmap = self.model.feature_map(x)
            fmap = fmap.float().cpu()                                            # [b, 1280, h, w]
            fh, fw = fmap.shape[-2:]
            motion = clips.motion[s:s + bs]
            dmap = motion_map(motion, clips.pair_mask[s:s + bs])                 # [b, h, w]
            energy = F.adaptive_avg_pool2d(dmap[:, None], cfg.grid).flatten(1) / 255.0
            cell_motion = F.adaptive_avg_pool2d(dmap[:, None], (fh, fw))[:, 0]  # [b, fh, fw]
            w = cell_motion.flatten(1) + 1.0                                     # +1: static -> GAP
            w = w / w.sum(1, keepdim=True)
            flat = fmap.flatten(2)                                               # [b, 1280, hw]
            out.append(torch.cat([flat.mean(-1), (flat * w[:, None]).sum(-1), energy,
                                  colour_stats(motion, cfg.grid, cfg.hist_bins)], 1))
            if regions is not None:
                r, b = cut_regions(fmap, cell_motion, regions)
                reg.append(r)
                box.append(b)
        pooled = torch.cat(out).numpy().astype(np.float32)
        if regions is None:
            return (pooled,)
        return pooled, torch.cat(reg).numpy().astype(np.float32), torch.cat(box).numpy().astype(np.float32)


@register_extractor("efficientnet-lite0")
def _build_default(config: dict[str, Any], weights: str | None) -> EfficientNetMotion:
    return EfficientNetMotion(from_dict(EfficientNetConfig, config, _path="extractor"), weights)


class TorchImageExtractor:
    """A user's image network on each clip's middle frame: ``module([N, 3, S, S] normalized)`` -> [N, dim] or
    [N, dim, h, w] (average-pooled). Normalization: (x / 255 - mean) / std per channel."""

    def __init__(self, name: str, module: nn.Module, dim: int, *, weights: str | None = None, image_size: int = 224,
                 mean: tuple[float, float, float] = (0.485, 0.456, 0.406), std: tuple[float, float, float] = (0.229, 0.224, 0.225),
                 batch_size: int = 32, config: dict[str, Any] | None = None) -> None:
        self.name, self.module, self.dim, self.weights = name, module.eval(), dim, weights
        self.decode = DecodeSpec(image_size=image_size, motion_frames=2)
        self.mean, self.std, self.batch_size = torch.tensor(mean)[:, None, None], torch.tensor(std)[:, None, None], batch_size
        self.config = {"image_size": image_size, "mean": list(mean), "std": list(std), **(config or {})}

    def fingerprint(self) -> dict[str, Any]:
        return {"name": self.name, "config": self.config, "weights_sha256": weights_sha256(self.weights) if self.weights else None}

    @torch.inference_mode()
    def __call__(self, clips: ClipFrames) -> np.ndarray:
        out = []
        for s in range(0, clips.num_clips, self.batch_size):
            y = self.module((clips.cnn[s:s + self.batch_size] / 255.0 - self.mean) / self.std)
            out.append(y.mean((2, 3)) if y.dim() == 4 else y)
        return torch.cat(out).float().numpy()
