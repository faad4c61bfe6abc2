"""Per-step choice of the pretraining objective: identical on every rank, with no communication."""

from __future__ import annotations

import random
from collections.abc import Mapping


class TaskSampler:
    """Draws the objective of optimizer step ``step`` from ``ratios``.

    The draw is keyed by (seed, step) alone, so every rank computes the same answer without a collective,
    and a resumed run continues the same stream from the step it restarts at.
    """

    def __init__(self, ratios: Mapping[str, float], seed: int) -> None:
        items = [(k, float(v)) for k, v in ratios.items() if v > 0]
        if not items:
            raise ValueError("TaskSampler needs at least one objective with a positive ratio")
        self.names = [k for k, _ in items]
        self.weights = [w for _, w in items]
        self.seed = seed

    def task_at(self, step: int) -> str:
        return random.Random(self.seed * 1_000_003 + step).choices(self.names, self.weights)[0]

    def stream(self, start: int, count: int) -> list[str]:
        return [self.task_at(s) for s in range(start, start + count)]

    def state_dict(self) -> dict:
        return {"names": self.names, "weights": self.weights, "seed": self.seed}

    def load_state_dict(self, state: Mapping) -> None:
        if list(state["names"]) != self.names or list(state["weights"]) != self.weights:
            raise ValueError(f"task ratios changed since the checkpoint: {dict(zip(state['names'], state['weights']))} "
                             f"-> {dict(zip(self.names, self.weights))}")
        self.seed = int(state["seed"])
