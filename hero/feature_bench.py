"""Benchmark: feature extraction end to end (decode + extractor + store write) and feature-store reads.

`python -m hero.feature_bench [--videos 40] [--workers N] [--regions '{"grid": 2, "top_motion": 4}'] [--out bench.json]`
prints a table of results and ratios against their targets (extraction >= 50 clips/s with decoding <= 1/4 of the
time; store reads >= 20x what a hero-mini training step consumes) and returns them as a dict (`main()`), for
`make bench`. With ``--regions`` (region features, `hero.features.regions`) the same videos are also extracted
with region features into a second store, right after the plain extraction, so the two rates sit side by side.

It lives beside `hero.bench`, not in `hero.features`, because it also times a pretraining step (`hero.tasks`,
layers above the features: docs/architecture.md#layers).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hero.corpus import CorpusConfig, ingest_corpus
from hero.config import from_dict
from hero.features.extract import ExtractConfig, run_extraction
from hero.features.regions import RegionConfig
from hero.features.store import FeatureStore
from hero.storage.atomic import write_json_atomic

logger = logging.getLogger(__name__)
TARGET_CLIPS_PER_S = 50.0
TARGET_DECODE_SHARE = 0.25


def bench_extraction(manifest, store_dir: Path, cfg: ExtractConfig) -> dict[str, Any]:
    stats = run_extraction(manifest, store_dir, cfg)
    busy = stats["decode_s"] + stats["compute_s"] + stats["write_s"]
    return {"clips": stats["clips"], "videos": stats["extracted"], "seconds": round(stats["seconds"], 2),
            "clips_per_s": round(stats["clips_per_s"], 1), "decode_share": round(stats["decode_s"] / max(busy, 1e-9), 3),
            "decode_ms_per_clip": round(1000 * stats["decode_s"] / max(stats["clips"], 1), 2),
            "compute_ms_per_clip": round(1000 * stats["compute_s"] / max(stats["clips"], 1), 2),
            "cpu_ms_per_clip": round(1000 * stats["cpu_s"] / max(stats["clips"], 1), 1),
            # what the machine would do with every core free: cores / CPU time per clip (the box may be shared)
            "est_idle_clips_per_s": round((os.cpu_count() or 1) * stats["clips"] / max(stats["cpu_s"], 1e-9), 1),
            "workers": stats["workers"], "threads_per_worker": cfg.threads or 1}


def bench_store_reads(store: FeatureStore, seconds: float = 2.0, seed: int = 0) -> dict[str, Any]:
    """Random videos read from the memory-mapped store into float32 tensors (what a dataset item does)."""
    vids = sorted(store.videos)
    rng = random.Random(seed)
    n = clips = 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        x = torch.from_numpy(np.asarray(store[rng.choice(vids)], dtype=np.float32))
        n += 1
        clips += x.shape[0]
    dt = time.perf_counter() - t0
    return {"videos_per_s": round(n / dt, 1), "clips_per_s": round(clips / dt, 1),
            "mb_per_s": round(clips * x.shape[1] * 2 / dt / 2 ** 20, 1)}


def bench_trainer_consumption(manifest, store: FeatureStore, batch_videos: int = 8, steps: int = 3) -> dict[str, Any]:
    """Videos per second a hero-mini pretraining step (forward + backward, MFM-NCE) consumes on this machine,
    and the dataset (item + collate) throughput on the same videos."""
    from hero.data.datasets import PretrainDataset, VideoFeatures
    from hero.presets import get_preset
    from hero.tasks import PretrainConfig, PretrainModel
    from hero.text.tokenizer import load_tokenizer

    tok = load_tokenizer("minilm")
    p = get_preset("hero-mini")
    ds = PretrainDataset(VideoFeatures(manifest, store, tok, max_frames=p.model.max_frames))
    t0 = time.perf_counter()
    n_items = 0
    while time.perf_counter() - t0 < 2.0:
        ds.collate([ds[(n_items + i) % len(ds)] for i in range(batch_videos)])
        n_items += batch_videos
    data_rate = n_items / (time.perf_counter() - t0)
    model = PretrainModel(p.model, PretrainConfig(), tok.special)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
    g = torch.Generator().manual_seed(0)
    batch = ds.collate([ds[i % len(ds)] for i in range(batch_videos)])
    times = []
    for _ in range(steps + 1):
        t = time.perf_counter()
        out = model("mfm_nce", model.prepare("mfm_nce", batch, g, step=0))
        out.loss.backward()
        opt.step()
        opt.zero_grad()
        times.append(time.perf_counter() - t)
    step_s = float(np.median(times[1:]))
    return {"batch_videos": batch_videos, "step_s": round(step_s, 3), "videos_per_s": round(batch_videos / step_s, 2),
            "dataset_videos_per_s": round(data_rate, 1)}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(prog="python -m hero.feature_bench", description=__doc__)
    ap.add_argument("--corpus", default=None, help="an existing corpus folder (default: a synthetic one)")
    ap.add_argument("--videos", type=int, default=40, help="synthetic videos to generate (demo-size, 24-40 s each)")
    ap.add_argument("--workers", type=int, default=None, help="default: ExtractConfig's automatic choice")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--image-size", type=int, default=None, help="override the extractor's CNN input size")
    ap.add_argument("--regions", default=None,
                    help='also extract with region features, e.g. \'{"grid": 2, "top_motion": 4}\' (side by side)')
    ap.add_argument("--out", default=None, help="write the results as JSON here")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    with tempfile.TemporaryDirectory(prefix="hero-bench-") as tmp:
        corpus = args.corpus
        if corpus is None:
            from hero.synth import SynthConfig, generate_corpus

            corpus = os.path.join(tmp, "corpus")
            generate_corpus(corpus, SynthConfig(size="demo", num_videos=args.videos))
        manifest = ingest_corpus(CorpusConfig(path=corpus, tasks=()))
        ext_cfg = {"image_size": args.image_size} if args.image_size else {}
        cfg = ExtractConfig(workers=args.workers, threads=args.threads, progress=False, extractor_config=ext_cfg)
        store_dir = Path(tmp, "store")
        extraction = bench_extraction(manifest, store_dir, cfg)
        t = time.perf_counter()
        rerun = run_extraction(manifest, store_dir, cfg)
        extraction["cached_rerun_s"] = round(time.perf_counter() - t, 2)
        extraction["cached_rerun_extracted"] = rerun["extracted"]
        with_regions = None
        if args.regions:
            regions = from_dict(RegionConfig, json.loads(args.regions), _path="regions")
            with_regions = bench_extraction(manifest, Path(tmp, "store-regions"),
                                            dataclasses.replace(cfg, regions=regions))
            with_regions["regions"] = {"grid": regions.grid, "top_motion": regions.top_motion,
                                       "per_clip": regions.num_regions}
        store = FeatureStore(store_dir)
        reads = bench_store_reads(store)
        trainer = bench_trainer_consumption(manifest, store)
    result = {
        "extraction": extraction,
        "store_reads": reads,
        "trainer": trainer,
        "ratios": {
            "extraction_vs_target": round(extraction["clips_per_s"] / TARGET_CLIPS_PER_S, 2),
            "idle_estimate_vs_target": round(extraction["est_idle_clips_per_s"] / TARGET_CLIPS_PER_S, 2),
            "decode_share_vs_limit": round(extraction["decode_share"] / TARGET_DECODE_SHARE, 2),
            "store_reads_vs_trainer": round(reads["videos_per_s"] / trainer["videos_per_s"], 1),
            "dataset_vs_trainer": round(trainer["dataset_videos_per_s"] / trainer["videos_per_s"], 1),
        },
        "machine": {"cpus": os.cpu_count(), "load_avg": [round(x, 2) for x in os.getloadavg()],
                    "torch_threads": torch.get_num_threads()},
    }
    if with_regions is not None:
        result["extraction_regions"] = with_regions
        result["ratios"]["regions_vs_plain_clips_per_s"] = round(with_regions["clips_per_s"] / extraction["clips_per_s"], 2)
    print(json.dumps(result, indent=1))
    if args.out:
        write_json_atomic(args.out, result, indent=1)
    return result


if __name__ == "__main__":
    main()
