"""`python -m hero.features --manifest manifest.json --store DIR [--workers N | --rank R --world-size W]`:
extract clip features for a manifest's videos into a feature store (cached: a re-run extracts only what changed).
Under torchrun, RANK / WORLD_SIZE from the environment shard the videos; rank 0 then consolidates the index
(call it again with --consolidate-only after all ranks finished if they do not share a barrier)."""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys

from hero.corpus.errors import CorpusError
from hero.corpus.manifest import Manifest
from hero.config import from_dict
from hero.features.extract import ExtractConfig, extract_features, run_extraction
from hero.features.regions import RegionConfig
from hero.features.store import consolidate


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hero.features", description=__doc__)
    ap.add_argument("--manifest", required=True)
    ap.add_argument("--store", required=True)
    ap.add_argument("--extractor", default="efficientnet-lite0")
    ap.add_argument("--config", default="{}", help="extractor config as JSON, e.g. '{\"image_size\": 224}'")
    ap.add_argument("--weights", default=None)
    ap.add_argument("--regions", default="{}", help='region features as JSON, e.g. \'{"grid": 2, "top_motion": 4}\'')
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--rank", type=int, default=int(os.environ.get("RANK", 0)))
    ap.add_argument("--world-size", type=int, default=int(os.environ.get("WORLD_SIZE", 1)))
    ap.add_argument("--on-error", choices=("raise", "skip"), default="raise")
    ap.add_argument("--import", dest="plugins", action="append", default=[],
                    help="a module to import first (it registers a user extractor); repeatable")
    ap.add_argument("--threads", type=int, default=None, help="torch threads in this process")
    ap.add_argument("--stats-out", default=None, help="also write the full stats as JSON here")
    ap.add_argument("--progress-file", default=None,
                    help="a worker's clips done, for its parent's one progress bar (no bar of its own)")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")
    ap.add_argument("--consolidate-only", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.consolidate_only:
        print(json.dumps({k: v for k, v in consolidate(args.store).items() if k != "videos"}, indent=1))
        return 0
    for module in args.plugins:
        importlib.import_module(module)
    cfg = ExtractConfig(plugins=tuple(args.plugins), extractor=args.extractor, extractor_config=json.loads(args.config), weights=args.weights,
                        workers=args.workers, threads=args.threads, on_error=args.on_error,
                        progress=not args.no_progress,
                        regions=from_dict(RegionConfig, json.loads(args.regions), _path="features.extract.regions"))
    try:
        manifest = Manifest.load(args.manifest)
        if args.world_size > 1:
            stats = extract_features(manifest, args.store, cfg, rank=args.rank, world_size=args.world_size,
                                     progress_file=args.progress_file)
        else:
            stats = run_extraction(manifest, args.store, cfg)
    except CorpusError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.stats_out:
        with open(args.stats_out, "w", encoding="utf-8") as f:
            json.dump(stats, f)
    print(json.dumps({k: v for k, v in stats.items() if k not in ("per_rank", "report", "shards")}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
