"""Entry point of one training job::

    python -m hero.train --config run.yaml [dotted.key=value ...]
    torchrun --standalone --nproc_per_node 2 -m hero.train --config run.yaml
    torchrun --nnodes 2 --nproc_per_node 8 --rdzv-backend c10d --rdzv-endpoint HOST:29400 -m hero.train --config run.yaml

`main(argv)` also runs in-process (tests, notebooks); `run(cfg)` is the library call the sweep uses.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from hero.config import ConfigError
from hero.train.claim import claim_run_dir
from hero.train.config import RunConfig, load_run_config
from hero.train.distributed import DistInfo, init_distributed
from hero.train.sinks import MetricSink
from hero.train.trainer import EvalHook, Trainer

log = logging.getLogger(__name__)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m hero.train", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", type=Path, default=None, help="RunConfig YAML (defaults when omitted)")
    ap.add_argument("overrides", nargs="*", help="dotted key=value overrides, e.g. train.max_steps=50")
    ap.add_argument("--log-level", default="INFO")
    ap.add_argument("--debug", action="store_true", help="on a bad config or path, show the traceback too")
    return ap.parse_args(argv)


def run(cfg: RunConfig, *, run_dir: str | Path | None = None, dist: DistInfo | None = None,
        on_eval: EvalHook | None = None, sinks: list[MetricSink] | None = None) -> dict[str, float]:
    """Train ``cfg`` (resuming from its run_dir when it holds a checkpoint) and return the final metrics.

    Args:
        run_dir: replaces ``cfg.train.run_dir``.
        dist: the process group; when None one is joined from torchrun's environment (or a single
            process is used) and torn down again before returning.
        on_eval: ``on_eval(step, model) -> metrics`` every ``train.eval_every`` steps and at the end.
        sinks: replace the sinks named in ``cfg.train.sinks`` (rank 0 only).
    Returns:
        ``{"train/loss": last step's loss, "train/step": steps done, "perf/samples_per_s": ..., ...}``
    """
    if run_dir is not None:
        cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, run_dir=str(run_dir)))
    own = dist is None
    dist = init_distributed(cfg.train.device) if own else dist
    try:
        # rank 0 claims the run folder before it looks for a checkpoint; the other ranks wait for it in the
        # collectives of resuming
        with claim_run_dir(cfg.train.run_dir) if dist.is_main else contextlib.nullcontext():
            return Trainer(cfg, dist, on_eval=on_eval, sinks=sinks).fit()
    finally:
        if own:
            dist.shutdown()


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    """Parse ``--config`` and overrides, train, tear the process group down; returns the final metrics."""
    args = parse_args(argv)
    try:
        cfg = load_run_config(args.config, args.overrides)
    except (ConfigError, OSError) as err:
        if args.debug or argv is not None:  # a caller in Python gets the exception itself
            raise
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    dist = init_distributed(cfg.train.device)
    if not logging.getLogger().handlers:
        level = args.log_level.upper() if dist.is_main else "WARNING"
        logging.basicConfig(level=level, stream=sys.stderr,
                            format=f"%(asctime)s [rank {dist.rank}] %(name)s: %(message)s", datefmt="%H:%M:%S")
    try:
        return run(cfg, dist=dist)
    finally:
        dist.shutdown()
