"""Helpers the task tests share (this folder is on sys.path under pytest, as for `toy_task.py`)."""

from pathlib import Path

import numpy as np
import torch


def random_store(root, manifest, dim: int) -> Path:
    """A consolidated feature store at ``root/store`` with random ``dim``-d features (seeded) for every video of
    ``manifest``, at its clip length."""
    from hero.features.store import StoreWriter, consolidate

    rng = np.random.default_rng(0)
    w = StoreWriter(Path(root) / "store")
    for vid, entry in manifest.videos.items():
        w.add(vid, rng.normal(size=(entry.num_clips, dim)).astype(np.float32), key=f"k-{vid}",
              clip_len=manifest.clip_len, extractor="random", dim=dim)
    w.close()
    consolidate(Path(root) / "store")
    return Path(root) / "store"


def overfit(task, inputs, steps=40, lr=3e-3):
    """Train ``task`` on the one batch ``inputs`` with Adam for ``steps`` steps (seeded); the loss of each step."""
    torch.manual_seed(0)
    opt = torch.optim.Adam(task.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        out = task(inputs)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        losses.append(float(out.loss.detach()))
    return losses
