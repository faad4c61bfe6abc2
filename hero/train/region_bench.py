"""Training-step cost of region tokens (``model.regions``)::

    python -m hero.train.region_bench [--preset hero-mini] [--regions 4,8] [--steps 14] [--threads 1] [--out FILE]

Trainers built alike but for ``model.regions`` (off, and on with each R of ``--regions`` region tokens per clip)
step in turn on the same random batches (the pretraining mix of `hero.train.bench`: ~60 clips per video, 4 videos
per step; the order rotates, each trainer has its own optimizer), in one process. Reported per trainer: ms per step
(wall and CPU) and per objective; and the ratio to the trainer without regions (CPU time: the steadier figure on a
shared machine). R = 4 is a 2×2 grid (``features.extract.regions.grid=2``), R = 8 adds the 4 most moving cells.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import torch

from hero.config import merge
from hero.storage.atomic import write_json_atomic
from hero.train.bench import _summary, bench_config, interleaved, machine
from hero.train.config import RunConfig
from hero.train.distributed import DistInfo
from hero.train.trainer import Trainer


def _trainer(preset: str, regions: int, steps: int) -> Trainer:
    cfg = bench_config(preset, "fp32", steps=steps)
    if regions:
        cfg = RunConfig.from_dict(merge(cfg.to_dict(), {"model": {"regions": True}}))
    return Trainer(cfg, DistInfo(), sinks=[])


def _batch_for(batch, regions: int):
    if not regions:
        return batch.replace(region_feats=None, region_boxes=None)
    return batch.replace(region_feats=batch.region_feats[:, :, :regions].contiguous(),
                         region_boxes=batch.region_boxes[:, :, :regions].contiguous())


def compare(preset: str, counts: list[int], steps: int, warmup: int) -> dict:
    """Interleaved steps of the trainers without regions and with each count of ``counts``."""
    names = [0, *counts]
    trainers = {r: _trainer(preset, r, steps + warmup + 1) for r in names}
    loader = trainers[max(counts)]._loader()             # batches with the most regions; the others slice them
    batches = [next(loader) for _ in range(steps + warmup)]
    run = interleaved(trainers, batches, warmup, batch_for=lambda r, batch: _batch_for(batch, r))
    times, tasks = run["times"], run["tasks"]
    out: dict = {"steps": len(tasks), "videos_per_step": trainers[0].cfg.train.global_batch,
                 "clips_per_step": int(batches[warmup].frame_mask.sum())}
    base = times[0]
    for r in names:
        s = _summary(times[r], tasks, trainers[r].cfg.train.global_batch)
        if r:
            s["ratio_cpu"] = sum(times[r]["cpu"]) / sum(base["cpu"])
            s["ratio_wall"] = sum(times[r]["wall"]) / sum(base["wall"])
            s["ratio_median_step"] = statistics.median(a / b for a, b in zip(times[r]["cpu"], base["cpu"]))
            for task in sorted(set(tasks)):
                pick = [i for i, k in enumerate(tasks) if k == task]
                s[f"ratio_{task}"] = sum(times[r]["cpu"][i] for i in pick) / sum(base["cpu"][i] for i in pick)
        out["no_regions" if not r else f"regions_{r}"] = s
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(prog="python -m hero.train.region_bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="hero-mini")
    ap.add_argument("--regions", default="4,8", help="region tokens per clip to compare against none")
    ap.add_argument("--steps", type=int, default=14, help="timed steps (2 cycles of the 7-step mix)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    res = {"machine": machine(), "preset": args.preset, "threads": args.threads,
           **compare(args.preset, sorted({int(r) for r in args.regions.split(",")}), args.steps, args.warmup)}
    res["seconds"] = round(time.perf_counter() - t0, 1)
    res["load_avg_1min_after"] = os.getloadavg()[0]
    print(json.dumps(res, indent=1))
    if args.out:
        write_json_atomic(args.out, res, indent=1)
    return res


if __name__ == "__main__":
    main()
