"""`python -m hero.synth --out DIR --size tiny|demo --seed N [--domain tv|instructional] [--how2-csv]`: write a
synthetic corpus (the layout of docs/formats.md; the domains: docs/data.md)."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from hero.config import ConfigError
from hero.synth.generate import DOMAINS, SIZES, SynthConfig, generate_corpus


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hero.synth", description=__doc__)
    ap.add_argument("--out", required=True, help="output folder (must not exist or be empty, unless --overwrite)")
    ap.add_argument("--size", default="demo", choices=sorted(SIZES))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--num-videos", type=int, default=None)
    ap.add_argument("--fps", type=int, default=8)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--domain", default="tv", choices=sorted(DOMAINS))
    ap.add_argument("--how2-csv", action="store_true", help="instructional only: also write How2R / How2QA CSV files")
    ap.add_argument("--overwrite", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        cfg = SynthConfig(size=args.size, seed=args.seed, num_videos=args.num_videos, fps=args.fps, workers=args.workers,
                          domain=args.domain, how2_csv=args.how2_csv)
        summary = generate_corpus(args.out, cfg, overwrite=args.overwrite)
    except (ConfigError, FileExistsError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
