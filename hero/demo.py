"""`make run` until the Kedro pipelines land: the pretraining mix on a random batch, losses printed.

    python -m hero.demo [--preset hero-tiny] [--steps 40]
"""

from __future__ import annotations

import argparse
import logging
import sys
import time

import torch

from hero.data.random_batch import random_video_batch
from hero.presets import get_preset
from hero.tasks import PretrainConfig, PretrainModel, TaskSampler

log = logging.getLogger("hero.demo")


def main(argv: list[str] | None = None) -> dict[str, tuple[float, float]]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="hero-tiny")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)

    torch.manual_seed(args.seed)
    preset = get_preset(args.preset)
    cfg = PretrainConfig(tasks={"mlm": 2, "mfm_nce": 2, "mffr": 1, "fom": 1, "vsm": 2})
    model = PretrainModel(preset.model, cfg, preset.tokens)
    batch = random_video_batch(preset.model, preset.tokens, num_videos=4, frames=(20, 30),
                               generator=torch.Generator().manual_seed(args.seed))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    sampler = TaskSampler(cfg.tasks, seed=args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    first: dict[str, float] = {}
    last: dict[str, float] = {}
    t0 = time.perf_counter()
    for step in range(args.steps):
        name = sampler.task_at(step)
        out = model(name, model.prepare(name, batch, gen, step))
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        opt.step()
        first.setdefault(name, out.loss.item())
        last[name] = out.loss.item()
        if (step + 1) % 10 == 0:
            rate = (step + 1) / (time.perf_counter() - t0)
            log.info("step %d/%d  %.1f steps/s  ETA %.0fs", step + 1, args.steps, rate, (args.steps - step - 1) / rate)
    log.info("\n%-8s %10s %10s", "task", "first", "last")
    for name in sorted(first):
        log.info("%-8s %10.4f %10.4f", name, first[name], last[name])
    return {k: (first[k], last[k]) for k in first}


if __name__ == "__main__":
    main()
