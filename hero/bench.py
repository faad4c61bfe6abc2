"""`make bench`: every benchmark of the library, each measured against its baseline in the same run.

    python -m hero.bench [--only train,features,eval,captioning,tvr] [--out data/08_reporting/bench.json] [--quick]

Each section is a module with a ``main(argv) -> dict`` of numbers (and the ratios it promises); this
driver runs them in turn, prints one table, and writes the whole result as JSON (atomically).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import platform
import sys
import time
from pathlib import Path

import torch

from hero.storage.atomic import write_json_atomic

log = logging.getLogger("hero.bench")

def _captioning(quick: bool) -> dict:
    from hero.tasks.caption_decoding import caption_decode_benchmark

    out = {}
    for beam in (1, 3):
        out[f"beam{beam}"] = caption_decode_benchmark("hero-small", beam_size=beam, repeats=1 if quick else 3,
                                                      num_captions=8 if quick else 16)
    return out


# section -> (module with main(argv) -> dict, its argv for a full run, for a --quick run)
SECTIONS = {
    "train": ("hero.train.bench", ["--ranks"], ["--quick"]),  # default vs reference path interleaved: ms/step, MFU, ratio
    "features": ("hero.feature_bench", [], ["--videos", "8"]),  # extraction clips/s, decode share; store reads
    "eval": ("hero.eval.bench", [], ["--videos", "300", "--queries", "80"]),  # VCMR queries/s, peak memory
    "captioning": (_captioning, None, None),                   # decode tokens/s with and without the KV cache
    "tvr": ("hero.eval.tvr_bench", [], ["--scale", "0.02"]),   # TVR-val-sized features-only corpus: LMDB -> metrics
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
        target, full_args, quick_args = SECTIONS[name]
        log.info("== %s ==", name)
        t0 = time.perf_counter()
        try:
            if callable(target):
                result[name] = target(args.quick)
            else:
                bench = importlib.import_module(target).main
                result[name] = bench(quick_args if args.quick else full_args)
        except (Exception, SystemExit) as err:  # one broken section must not hide the others' numbers
            log.exception("section %s failed", name)
            result[name] = {"error": f"{type(err).__name__}: {err}"}
        result.setdefault("elapsed_s", {})[name] = round(time.perf_counter() - t0, 1)
    flat: dict = {}
    _flatten("", {k: v for k, v in result.items() if k not in ("machine", "started")}, flat)
    print("\n%-70s %14s" % ("measure", "value"))
    for k, v in flat.items():
        print("%-70s %14.4g" % (k, v))
    out = Path(args.out)
    write_json_atomic(out, result, indent=1)
    print(f"\nwrote {out}")
    return result


if __name__ == "__main__":
    main()
