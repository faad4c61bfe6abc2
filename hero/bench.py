"""`make bench`: every benchmark of the library, each measured against its baseline in the same run.

    python -m hero.bench [--only train,features,eval,captioning] [--out data/08_reporting/bench.json] [--quick]

Each section is a module with a ``main(argv) -> dict`` of numbers (and the ratios it promises); this
driver runs them in turn, prints one table, and writes the whole result as JSON (atomically).
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

log = logging.getLogger("hero.bench")

SECTIONS = {
    "train": "hero.train.bench",          # samples/s, MFU vs measured matmul, fp32 vs bf16, 1 vs 2 ranks, eager baseline
    "features": "hero.features.bench",    # extraction clips/s and decode share; feature-store read throughput
    "eval": "hero.eval.bench",            # VCMR inference queries/s and peak memory at 2,000 videos x 100 clips
    "captioning": "hero.tasks.captioning",  # decode tokens/s with and without the KV cache
}


def _flatten(prefix: str, obj, out: dict) -> None:
    if isinstance(obj, dict):
        for k, v in obj.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        out[prefix] = obj


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default=",".join(SECTIONS))
    ap.add_argument("--out", default="data/08_reporting/bench.json")
    ap.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stdout)
    result: dict = {"machine": {"python": platform.python_version(), "torch": torch.__version__,
                                "cpus": os.cpu_count(), "cuda": torch.cuda.is_available(),
                                "processor": platform.processor() or platform.machine()},
                    "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
    for name in [s.strip() for s in args.only.split(",") if s.strip()]:
        if name not in SECTIONS:
            raise SystemExit(f"--only: unknown section {name!r} (known: {', '.join(SECTIONS)})")
        try:
            mod = importlib.import_module(SECTIONS[name])
            bench = getattr(mod, "bench_main", None) or getattr(mod, "main")
        except (ImportError, AttributeError) as err:
            log.warning("section %s: not available (%s)", name, err)
            result[name] = {"error": str(err)}
            continue
        log.info("== %s ==", name)
        t0 = time.perf_counter()
        try:
            result[name] = bench(["--quick"] if args.quick else [])
        except Exception as err:  # one broken section must not hide the others' numbers
            log.exception("section %s failed", name)
            result[name] = {"error": f"{type(err).__name__}: {err}"}
        result.setdefault("elapsed_s", {})[name] = round(time.perf_counter() - t0, 1)
    flat: dict = {}
    _flatten("", {k: v for k, v in result.items() if k not in ("machine", "started")}, flat)
    print("\n%-70s %14s" % ("measure", "value"))
    for k, v in flat.items():
        print("%-70s %14.4g" % (k, v))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=out.parent, suffix=".tmp", delete=False) as f:
        json.dump(result, f, indent=1)
    os.replace(f.name, out)
    print(f"\nwrote {out}")
    return result


if __name__ == "__main__":
    main()
