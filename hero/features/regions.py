"""Region features: a few vectors per clip besides its pooled one, cut from the same CNN feature map.

A clip's pooled feature averages the whole frame, so a small object is lost in it. With ``features.extract.regions``
the extractor also keeps, per clip, R = grid² + top_motion region vectors, each with its box (x, y, w, h),
normalised to [0, 1] of the frame:

- ``grid: k`` (2 or 3): the feature map average-pooled on a k×k grid, cells in row-major order;
- ``top_motion: m``: the m cells of the feature map itself (6×6 at the default 192-pixel input) where the clip's
  frame differences are largest, most moving first (ties: row-major order, so a still clip gives the first m).

Both read the feature map the pooled vector is computed from: no second CNN pass. The store keeps them beside the
pooled features (docs/formats.md, "The feature store"); `model.regions` feeds them to the Cross-modal Transformer.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from hero.config import ConfigError


@dataclass(frozen=True, kw_only=True)
class RegionConfig:
    """Region features per clip (`hero.features.regions`); off when both are 0 (the default)."""

    grid: int = 0
    """k: keep the CNN feature map average-pooled on a k×k grid (0 = none, 2 or 3)."""
    top_motion: int = 0
    """m: also keep the m feature-map cells with the most motion, each with its box (0 = none)."""

    def __post_init__(self) -> None:
        if self.grid not in (0, 2, 3):
            raise ConfigError(f"features.extract.regions.grid: must be 0 (off), 2 or 3, got {self.grid}")
        if not 0 <= self.top_motion <= 16:
            raise ConfigError(f"features.extract.regions.top_motion: must be in [0, 16], got {self.top_motion}")

    @property
    def enabled(self) -> bool:
        return self.num_regions > 0

    @property
    def num_regions(self) -> int:
        """R, region vectors per clip."""
        return self.grid ** 2 + self.top_motion


def grid_boxes(rows: int, cols: int) -> Tensor:
    """[rows * cols, 4] boxes (x, y, w, h) of a rows×cols grid over the unit square, row-major."""
    y, x = torch.meshgrid(torch.arange(rows) / rows, torch.arange(cols) / cols, indexing="ij")
    return torch.stack([x.flatten(), y.flatten(), torch.full((rows * cols,), 1 / cols),
                        torch.full((rows * cols,), 1 / rows)], 1)


def cut_regions(fmap: Tensor, motion: Tensor, cfg: RegionConfig) -> tuple[Tensor, Tensor]:
    """Region vectors and boxes of a batch of clips.

    fmap:    [b, C, h, w] the CNN's last feature map (what the pooled vector averages)
    motion:  [b, h, w] frame-difference energy per feature-map cell
    returns: (regions [b, R, C], boxes [b, R, 4]) with R = grid² + top_motion (grid cells first)
    """
    b, C, h, w = fmap.shape
    feats, boxes = [], []
    if cfg.grid:
        k = cfg.grid
        feats.append(F.adaptive_avg_pool2d(fmap, k).flatten(2).transpose(1, 2))          # [b, k², C]
        # adaptive pooling's cells: rows [floor(i h / k), ceil((i + 1) h / k)), the boxes say exactly that
        boxes.append(_adaptive_boxes(h, w, k).expand(b, -1, -1))
    if cfg.top_motion:
        m = min(cfg.top_motion, h * w)
        order = torch.argsort(-motion.flatten(1), dim=1, stable=True)[:, :m]             # [b, m]
        cells = fmap.flatten(2).transpose(1, 2)                                          # [b, hw, C]
        picked = cells.gather(1, order.unsqueeze(-1).expand(-1, -1, C))
        cell_boxes = grid_boxes(h, w)[order]                                             # [b, m, 4]
        if m < cfg.top_motion:   # a map smaller than m cells: repeat the last cell (R stays fixed)
            picked = torch.cat([picked, picked[:, -1:].expand(-1, cfg.top_motion - m, -1)], 1)
            cell_boxes = torch.cat([cell_boxes, cell_boxes[:, -1:].expand(-1, cfg.top_motion - m, -1)], 1)
        feats.append(picked)
        boxes.append(cell_boxes)
    return torch.cat(feats, 1), torch.cat(boxes, 1)


def _adaptive_boxes(h: int, w: int, k: int) -> Tensor:
    """[k², 4] the boxes of F.adaptive_avg_pool2d's k×k cells over an h×w map, normalised."""
    def edges(n: int) -> list[tuple[float, float]]:
        return [((i * n) // k / n, -((-(i + 1) * n) // k) / n) for i in range(k)]

    out = [(x0, y0, x1 - x0, y1 - y0) for y0, y1 in edges(h) for x0, x1 in edges(w)]
    return torch.tensor(out, dtype=torch.float32)[None]
