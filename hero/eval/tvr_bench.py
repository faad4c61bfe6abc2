"""Benchmark: a features-only corpus of TVR-val size, from a HERO video_db to TVR metrics.

``python -m hero.eval.tvr_bench [--scale 1.0] [--preset hero-small] [--seed 0] [--out bench.json] [--workdir DIR]``

At ``--scale 1`` the corpus has the shape of TVR's val split: 2,180 videos of 40-150 s (uniform), 4352-d float32
features per 1.5-s clip (random normal, deterministic by seed) written as a HERO video_db LMDB with id2nframe.json,
a TVR-form subtitles.jsonl (a line every ~3 s), a video2dur file in the TVR release's form and 10,895 TVR queries
with ts spans (v / vt / t in the val file's proportions). ``--scale s`` multiplies the videos and the queries.

Phases, each timed with the peak resident memory of the process during it (Linux VmHWM, reset before each phase;
mapped LMDB and store pages count):

- ``build``: writing the corpus above (setup, not part of the total);
- ``ingest``: `hero.features.prebuilt.ingest_features_corpus` (scan and hash every LMDB value, subtitles,
  alignment, annotations) and the manifest written;
- ``import``: `hero.features.prebuilt.import_features` into a float16 feature store (the features stage);
- ``inference``: `hero.eval.predict.predict_split` with ``score=False``: every video encoded once, every query
  ranked against the whole corpus in chunks (VCMR / SVMR / VR), the TVR submission JSON written;
- ``scoring``: `hero.metrics.scoring.score_moment_retrieval` of that file against the annotations.

Each phase also reports this process's CPU time (all threads), and the run the 1-minute load average at its start
and end: on a machine shared with other jobs, the wall time holds their share too.

The model is ``--preset`` with random weights (seeded): the timing does not depend on training, and the metrics
are chance-level (reported as a check that scoring ran, not as results).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hero.eval.bench import _peak_mb, _reset_peak, write_result

log = logging.getLogger(__name__)

TVR_VAL = {"videos": 2180, "queries": 10895, "min_s": 40.0, "max_s": 150.0}
"""TVR val's shape: 2,179 videos in tvr_video2dur_idx.json (~2,180), 10,895 queries in tvr_val_release.jsonl."""
TYPES = (("v", 8097), ("vt", 1834), ("t", 964))
"""Query types and their counts in tvr_val_release.jsonl."""
WORDS = ("the", "a", "she", "he", "picks", "up", "puts", "down", "cup", "phone", "door", "walks", "into", "room",
         "table", "says", "hands", "bag", "sits", "on", "couch", "looks", "at", "window", "laughs", "opens", "box")


def _video_names(n: int) -> list[str]:
    shows = ("friends", "bbt", "castle", "house", "met", "grey")
    return [f"{shows[i % 6]}_s{1 + i // 600:02d}e{1 + (i // 30) % 20:02d}_seg{1 + (i // 15) % 2:02d}_clip_{i % 15:02d}"
            for i in range(n)]


def _sentence(rng: np.random.Generator, lo: int, hi: int) -> str:
    return " ".join(WORDS[j] for j in rng.integers(0, len(WORDS), int(rng.integers(lo, hi)))).capitalize() + "."


def build_corpus(root: Path, scale: float = 1.0, dim: int = 4352, seed: int = 0,
                 clip_len: float = 1.5) -> dict[str, Any]:
    """Write the benchmark corpus under ``root``: ``corpus/`` (subtitles.jsonl, annotations/tvr_val.jsonl),
    ``video_db/tv/`` (id2nframe.json + LMDB ``resnet_slowfast_<clip_len>``) and ``tvr_video2dur_idx.json``.

    Returns the paths and sizes: ``{"corpus", "features", "video2dur", "videos", "clips", "queries", "lmdb_mb"}``.
    """
    from hero.features.lmdb_import import write_video_db

    rng = np.random.default_rng(seed)
    nv = max(2, round(TVR_VAL["videos"] * scale))
    nq = max(2, round(TVR_VAL["queries"] * scale))
    names = _video_names(nv)
    durations = np.round(rng.uniform(TVR_VAL["min_s"], TVR_VAL["max_s"], nv), 2)
    clips = [math.ceil(d / clip_len) for d in durations]
    corpus = root / "corpus"
    (corpus / "annotations").mkdir(parents=True, exist_ok=True)
    with open(corpus / "subtitles.jsonl", "w", encoding="utf-8") as f:
        for vid, dur in zip(names, durations):
            subs, t = [], float(rng.uniform(0, 2))
            while t < dur - 1:
                end = min(t + float(rng.uniform(1, 3)), float(dur))
                subs.append({"text": _sentence(rng, 3, 12), "start": round(t, 3), "end": round(end, 3)})
                t = end + float(rng.uniform(0.1, 1.5))
            f.write(json.dumps({"vid_name": vid, "sub": subs}) + "\n")
    types = [t for t, n in TYPES for _ in range(n)]
    with open(corpus / "annotations" / "tvr_val.jsonl", "w", encoding="utf-8") as f:
        for q in range(nq):
            v = int(rng.integers(nv))
            dur = float(durations[v])
            length = float(rng.uniform(2, 20))
            st = float(rng.uniform(0, max(dur - length, 0.0)))
            line = {"vid_name": names[v], "duration": dur, "ts": [round(st, 2), round(min(st + length, dur), 2)],
                    "desc": _sentence(rng, 5, 16), "type": types[int(rng.integers(len(types)))], "desc_id": 90000 + q}
            f.write(json.dumps(line) + "\n")
    video2dur = root / "tvr_video2dur_idx.json"
    video2dur.write_text(json.dumps({"val": {v: [float(d), 19614 + i] for i, (v, d) in enumerate(zip(names, durations))}}))

    def features() -> Iterator[tuple[str, np.ndarray]]:
        for i, (vid, n) in enumerate(zip(names, clips)):
            yield vid, np.random.default_rng([seed, i]).standard_normal((n, dim), dtype=np.float32)

    db = write_video_db(root / "video_db" / "tv", features(), name=f"resnet_slowfast_{clip_len:g}")
    size = sum(p.stat().st_size for p in (db / f"resnet_slowfast_{clip_len:g}").iterdir())
    return {"corpus": str(corpus), "features": str(db), "video2dur": str(video2dur), "videos": nv,
            "clips": int(sum(clips)), "queries": nq, "lmdb_mb": size / 2**20}


def _phase(name: str, fn: Callable[[], Any], out: dict[str, Any]) -> Any:
    """Run ``fn``; record ``<name>_s`` (wall), ``<name>_cpu_s`` (this process's CPU time, all threads: on a shared
    machine the wall time also holds the other jobs' share) and ``<name>_peak_rss_mb`` in ``out``."""
    _reset_peak(torch.device("cpu"))
    t0, c0 = time.perf_counter(), time.process_time()
    result = fn()
    out[f"tvr/{name}_s"] = time.perf_counter() - t0
    out[f"tvr/{name}_cpu_s"] = time.process_time() - c0
    out[f"tvr/{name}_peak_rss_mb"] = _peak_mb(torch.device("cpu"))
    log.info("%s: %.1fs (CPU %.1fs), peak RSS %.0f MB", name, out[f"tvr/{name}_s"], out[f"tvr/{name}_cpu_s"],
             out[f"tvr/{name}_peak_rss_mb"])
    return result


def run_benchmark(scale: float = 1.0, *, preset: str = "hero-small", dim: int = 4352, seed: int = 0,
                  workdir: str | None = None, keep: bool = False) -> dict[str, Any]:
    """Build the corpus in a temporary folder (or ``workdir``), run the phases; returns a flat dict of numbers."""
    from hero.corpus.ingest import CorpusConfig
    from hero.corpus.manifest import Manifest
    from hero.metrics import scoring
    from hero.eval.predict import predict_split
    from hero.features.prebuilt import import_features, ingest_features_corpus
    from hero.features.store import FeatureStore
    from hero.presets import get_preset
    from hero.tasks.moment_retrieval import MomentRetrievalConfig, MomentRetrievalTask
    from hero.text.tokenizer import load_tokenizer

    root = Path(tempfile.mkdtemp(prefix="hero-tvr-bench-", dir=workdir))
    out: dict[str, Any] = {"tvr/scale": scale, "tvr/feature_dim": dim, "tvr/threads": torch.get_num_threads(),
                           "tvr/load_avg_start": os.getloadavg()[0]}
    try:
        built = _phase("build", lambda: build_corpus(root, scale, dim, seed), out)
        out.update({f"tvr/{k}": v for k, v in built.items() if isinstance(v, (int, float))})
        cfg = CorpusConfig(path=built["corpus"], tasks=("tvr",))

        def ingest() -> Manifest:
            m = ingest_features_corpus(cfg, built["features"], video2dur=built["video2dur"])
            m.save(root / "manifest.json")
            return m

        manifest = _phase("ingest", ingest, out)
        _phase("import", lambda: import_features(manifest, root / "store"), out)
        torch.manual_seed(seed)
        p = get_preset(preset, feature_dim=dim)
        model = MomentRetrievalTask(p.model, MomentRetrievalConfig(), p.tokens)
        tokenizer = load_tokenizer(p.tokenizer or "minilm")
        store = FeatureStore(root / "store")
        pred = _phase("inference", lambda: predict_split(model, "tvr", manifest, store, tokenizer, "val", root / "pred",
                                                         score=False, log_every=30.0), out)
        metrics = _phase("scoring", lambda: scoring.score_moment_retrieval(
            pred["predictions"], Path(built["corpus"]) / "annotations" / "tvr_val.jsonl"), out)
        phases = ("ingest", "import", "inference", "scoring")
        out["tvr/total_s"] = sum(out[f"tvr/{p}_s"] for p in phases)
        out["tvr/total_cpu_s"] = sum(out[f"tvr/{p}_cpu_s"] for p in phases)
        out["tvr/load_avg_end"] = os.getloadavg()[0]
        out["tvr/peak_rss_mb"] = max(out[f"tvr/{p}_peak_rss_mb"] for p in phases)
        out["tvr/queries_per_s"] = built["queries"] / out["tvr/inference_s"]
        out.update({f"tvr/metric/{k}": v for k, v in metrics.items() if k in ("vcmr_r1_iou0.7", "svmr_r1_iou0.7",
                                                                               "vr_r1")})
        out["tvr/preset"] = preset
    finally:
        if keep:
            log.info("kept %s", root)
        else:
            shutil.rmtree(root, ignore_errors=True)
    log.info("TVR-val-shaped features-only corpus (scale %g: %d videos, %d queries): ingest %.1fs, import %.1fs, "
             "inference %.1fs, scoring %.1fs, total %.1fs (CPU %.1fs); peak RSS %.0f MB; load average %.1f -> %.1f",
             scale, out["tvr/videos"], out["tvr/queries"], out["tvr/ingest_s"], out["tvr/import_s"],
             out["tvr/inference_s"], out["tvr/scoring_s"], out["tvr/total_s"], out["tvr/total_cpu_s"],
             out["tvr/peak_rss_mb"], out["tvr/load_avg_start"], out["tvr/load_avg_end"])
    return out


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """CLI: run the benchmark, log a summary, write the JSON to ``--out`` (``-`` = stdout)."""
    p = argparse.ArgumentParser(prog="python -m hero.eval.tvr_bench", description=__doc__.splitlines()[0])
    p.add_argument("--scale", type=float, default=1.0, help="times TVR val's 2,180 videos and 10,895 queries")
    p.add_argument("--preset", default="hero-small")
    p.add_argument("--dim", type=int, default=4352)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workdir", default=None, help="where the temporary corpus goes (default: the system's tmp)")
    p.add_argument("--keep", action="store_true", help="keep the corpus, store and predictions")
    p.add_argument("--out", default="-")
    args = p.parse_args(argv)
    if not args.scale > 0:
        p.error(f"--scale: must be > 0, got {args.scale}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    result = run_benchmark(args.scale, preset=args.preset, dim=args.dim, seed=args.seed, workdir=args.workdir,
                           keep=args.keep)
    write_result(result, args.out)
    return result


if __name__ == "__main__":
    main()
