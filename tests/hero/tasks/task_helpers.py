"""Helpers the task tests share (this folder is on sys.path under pytest, as for `toy_task.py`)."""

import torch


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
