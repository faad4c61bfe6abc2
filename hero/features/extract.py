"""Extract clip features for a manifest's videos into a feature store: sharded by video across ranks or worker
processes, cached by content address (a re-run extracts nothing already extracted)."""

from __future__ import annotations

import importlib
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hero.config import ConfigError
from hero.corpus.errors import CorpusError, IngestReport, OnError
from hero.corpus.manifest import Manifest
from hero.features.decode import decode_clips
from hero.features.regions import RegionConfig
from hero.features.registry import Extractor, build_extractor
from hero.features.store import FeatureStore, StoreWriter, consolidate, entry_key
from hero.storage.atomic import write_text_atomic

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class ExtractConfig:
    """Clip-feature extraction into the feature store (``params:features.extract``; ``python -m hero.features``)."""

    extractor: str = "efficientnet-lite0"
    """A registered extractor name (see `available_extractors`)."""
    extractor_config: dict[str, Any] = field(default_factory=dict)
    """The extractor's own settings (efficientnet-lite0: `EfficientNetConfig`, e.g. ``{image_size: 224}``)."""
    weights: str | None = None
    """Local weights file for the extractor (None: its default)."""
    plugins: tuple[str, ...] = ()
    """Modules to import first (they register user extractors); worker processes import them too."""
    workers: int | None = None
    """Processes (each one rank, videos split between them by clip count) for `run_extraction`. Default: one per
    CPU core (at most 8) when there are at least `min_clips_per_worker` clips per worker to extract, else fewer."""
    threads: int | None = None
    """torch threads per extracting process (default 1; restored afterwards). Processes with one thread each beat
    one process with many threads on CPU, and on a busy machine OpenMP threads spin-wait on each other (measured
    here: 5x slower with 2 threads than with 1 while other jobs ran)."""
    min_clips_per_worker: int = 300
    """A worker process costs a few seconds to start (torch import, model load): below this, fewer workers."""
    progress: bool = True
    """A tqdm bar on rank 0 (besides a log line with rate and ETA every `log_every_s`)."""
    log_every_s: float = 10.0
    """Seconds between two progress log lines (rate and ETA) of each rank."""
    shard_rows: int = 16384
    """Feature rows per store shard file."""
    on_error: OnError = "raise"
    """`skip`: an undecodable video is logged, counted and left out."""
    regions: RegionConfig = field(default_factory=RegionConfig)
    """Region features per clip besides the pooled one (`hero.features.regions`; off by default): a k×k grid of
    the CNN feature map and/or its top-m moving cells, each with its box. Part of every entry's content key."""

    def __post_init__(self) -> None:
        if self.workers is not None and self.workers < 1:
            raise ConfigError(f"features.workers: must be >= 1, got {self.workers}")
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"features.threads: must be >= 1, got {self.threads}")
        if self.on_error not in ("raise", "skip"):
            raise ConfigError(f"features.on_error: must be raise or skip, got {self.on_error!r}")


def store_fingerprint(extractor: Extractor, regions: RegionConfig) -> dict[str, Any]:
    """What an entry's content key hashes for this extraction: the extractor's fingerprint, plus the region
    settings when regions are on (so a store extracted without them keeps its keys, and turning them on
    re-extracts)."""
    fp = extractor.fingerprint()
    if not regions.enabled:
        return fp
    if not hasattr(extractor, "region_features"):
        raise ConfigError(f"features.extract.regions: the extractor {extractor.name!r} does not cut region features "
                          f"(efficientnet-lite0 does); set grid and top_motion to 0")
    return {**fp, "regions": {"grid": regions.grid, "top_motion": regions.top_motion}}


def assign_videos(num_clips: dict[str, int], world_size: int) -> list[list[str]]:
    """Split videos over ranks, balancing clip counts (longest first, to the lightest rank); same on every rank."""
    ranks: list[list[str]] = [[] for _ in range(world_size)]
    load = [0] * world_size
    for vid in sorted(num_clips, key=lambda v: (-num_clips[v], v)):
        r = min(range(world_size), key=lambda i: (load[i], i))
        ranks[r].append(vid)
        load[r] += num_clips[vid]
    return ranks


def extract_features(manifest: Manifest, store_dir: str | os.PathLike, cfg: ExtractConfig = ExtractConfig(), *,
                     rank: int = 0, world_size: int = 1, extractor: Extractor | None = None,
                     progress_file: str | os.PathLike | None = None) -> dict[str, Any]:
    """Extract this rank's share of the manifest's videos that the store lacks (or holds under another key).

    ``progress_file``: where this rank writes its clips done so far (a worker of `run_extraction`, whose parent
    draws one bar over all ranks); without it, rank 0 draws its own bar when ``cfg.progress``.

    Returns stats: videos, extracted, cached, skipped, clips, seconds, clips_per_s, decode_s, compute_s.
    The caller consolidates the index (`consolidate`) once all ranks are done; `run_extraction` does it all.
    """
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} outside world_size {world_size}")
    import torch

    threads_before = torch.get_num_threads()
    torch.set_num_threads(cfg.threads or 1)
    try:
        return _extract(manifest, store_dir, cfg, rank, world_size, extractor, progress_file)
    finally:
        torch.set_num_threads(threads_before)


def _extract(manifest: Manifest, store_dir: str | os.PathLike, cfg: ExtractConfig, rank: int, world_size: int,
             extractor: Extractor | None, progress_file: str | os.PathLike | None = None) -> dict[str, Any]:
    t0, cpu0 = time.perf_counter(), time.process_time()
    extractor = extractor or build_extractor(cfg.extractor, cfg.extractor_config, cfg.weights)
    fp = store_fingerprint(extractor, cfg.regions)
    Path(store_dir, "shards").mkdir(parents=True, exist_ok=True)
    store = FeatureStore(store_dir)
    mine = assign_videos({v: e.num_clips for v, e in manifest.videos.items()}, world_size)[rank]
    todo, cached = [], 0
    for vid in mine:
        key = entry_key(manifest.videos[vid].sha256, fp, manifest.clip_len)
        if store.has(vid, key):
            cached += 1
        else:
            todo.append((vid, key))
    total = sum(manifest.videos[v].num_clips for v, _ in todo)
    stats = {"rank": rank, "videos": len(mine), "extracted": 0, "cached": cached, "skipped": 0, "clips": 0,
             "decode_s": 0.0, "compute_s": 0.0, "write_s": 0.0}
    report = IngestReport()
    writer = StoreWriter(store_dir, rank=rank, max_rows=cfg.shard_rows)
    bar = _FileProgress(progress_file) if progress_file else _progress(total, cfg.progress and rank == 0)
    last_log = time.perf_counter()
    try:
        for vid, key in todo:
            v = manifest.videos[vid]
            t1 = time.perf_counter()
            try:
                clips = decode_clips(manifest.video_path(vid), v.num_clips, manifest.clip_len, extractor.decode,
                                     file=manifest.video_uri(vid))
            except CorpusError as err:
                report.handle(err, cfg.on_error)
                stats["skipped"] += 1
                continue
            t2 = time.perf_counter()
            regions = {}
            if cfg.regions.enabled:
                feats, regions["regions"], regions["boxes"] = extractor.region_features(clips, cfg.regions)
            else:
                feats = extractor(clips)
            t3 = time.perf_counter()
            writer.add(vid, feats, key=key, clip_len=manifest.clip_len, extractor=extractor.name,
                       video_sha256=v.sha256, dim=extractor.dim, **regions)
            stats["write_s"] += time.perf_counter() - t3
            stats["decode_s"] += t2 - t1
            stats["compute_s"] += t3 - t2
            stats["extracted"] += 1
            stats["clips"] += v.num_clips
            bar.update(v.num_clips)
            if time.perf_counter() - last_log > cfg.log_every_s:
                last_log = time.perf_counter()
                rate = stats["clips"] / (last_log - t0)
                logger.info("rank %d: %d/%d clips, %.1f clips/s, ETA %.0fs", rank, stats["clips"], total, rate,
                            (total - stats["clips"]) / max(rate, 1e-9))
        t4 = time.perf_counter()
        writer.close()
        stats["write_s"] += time.perf_counter() - t4
    finally:
        bar.close()
    stats["seconds"] = time.perf_counter() - t0
    stats["cpu_s"] = time.process_time() - cpu0
    stats["clips_per_s"] = stats["clips"] / stats["seconds"] if stats["clips"] else 0.0
    stats["shards"] = writer.shards_written
    stats["report"] = report.to_dict()
    logger.info("rank %d: extracted %d videos (%d clips, %.1f clips/s), %d cached, %d skipped", rank,
                stats["extracted"], stats["clips"], stats["clips_per_s"], cached, stats["skipped"])
    return stats


class _NoBar:
    def update(self, n: int) -> None: ...

    def close(self) -> None: ...


class _FileProgress:
    """A worker's side of the one bar over all ranks: its clips done, rewritten at most twice a second."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path, self.done, self.last = Path(path), 0, 0.0

    def update(self, n: int) -> None:
        self.done += n
        if time.perf_counter() - self.last >= 0.5:
            self._write()

    def _write(self) -> None:
        self.last = time.perf_counter()
        write_text_atomic(self.path, str(self.done))

    def close(self) -> None:
        self._write()


def _poll_progress(procs: list, files: list[Path], total: int, enabled: bool) -> list[int]:
    """Wait for the workers, drawing one bar of every rank's clips (``enabled``); their exit codes."""
    bar = _progress(total, enabled)
    shown = 0
    while any(p.poll() is None for p in procs):
        time.sleep(0.25)
        done = 0
        for f in files:
            try:
                done += int(f.read_text() or 0)
            except (FileNotFoundError, ValueError):
                pass
        if done > shown:
            bar.update(done - shown)
            shown = done
    bar.close()
    return [p.wait() for p in procs]


def _progress(total: int, enabled: bool):
    if not enabled or total == 0:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, unit="clip", desc="features", smoothing=0.1)


def _run_workers(work: Manifest, store_dir: str | os.PathLike, cfg: ExtractConfig, workers: int, threads: int) -> list[dict]:
    """One `python -m hero.features` subprocess per rank (not multiprocessing: no re-import of the caller's
    __main__, no fork of a process that has started OpenMP threads). Returns each rank's stats."""
    tmp = Path(store_dir, f".work-{os.getpid()}-{time.time_ns()}")
    tmp.mkdir(parents=True)
    try:
        work.save(tmp / "manifest.json")
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
        procs = []
        for r in range(workers):
            cmd = [sys.executable, "-m", "hero.features", "--manifest", str(tmp / "manifest.json"), "--store", str(store_dir),
                   "--extractor", cfg.extractor, "--config", json.dumps(cfg.extractor_config), "--rank", str(r),
                   "--world-size", str(workers), "--threads", str(threads), "--on-error", cfg.on_error,
                   "--stats-out", str(tmp / f"stats-{r}.json"), "--progress-file", str(tmp / f"progress-{r}"),
                   "--regions", json.dumps({"grid": cfg.regions.grid, "top_motion": cfg.regions.top_motion})]
            cmd += ["--weights", cfg.weights] if cfg.weights else []
            cmd += [a for m in cfg.plugins for a in ("--import", m)]
            procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL))  # stats come back by file
        total = sum(e.num_clips for e in work.videos.values())
        codes = _poll_progress(procs, [tmp / f"progress-{r}" for r in range(workers)], total, cfg.progress)
        if any(codes):
            raise RuntimeError(f"feature extraction workers failed with exit codes {codes} (see their log above)")
        return [json.loads((tmp / f"stats-{r}.json").read_text()) for r in range(workers)]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run_extraction(manifest: Manifest, store_dir: str | os.PathLike, cfg: ExtractConfig = ExtractConfig()) -> dict[str, Any]:
    """Extract what the store lacks with ``cfg.workers`` processes (one rank each), then consolidate
    the store's index. The cache check runs here first, so a fully cached re-run starts no process.

    Returns summed per-rank stats plus wall-clock ``seconds`` and ``clips_per_s``.
    """
    t0 = time.perf_counter()
    for module in cfg.plugins:
        importlib.import_module(module)
    extractor = build_extractor(cfg.extractor, cfg.extractor_config, cfg.weights)
    fp = store_fingerprint(extractor, cfg.regions)
    Path(store_dir, "shards").mkdir(parents=True, exist_ok=True)
    store = FeatureStore(store_dir)
    todo = {v: e for v, e in manifest.videos.items()
            if not store.has(v, entry_key(e.sha256, fp, manifest.clip_len))}
    work = Manifest(root=manifest.root, clip_len=manifest.clip_len, videos=todo)
    clips = sum(e.num_clips for e in todo.values())
    cpus = os.cpu_count() or 1
    workers = cfg.workers or max(1, min(cpus, 8, clips // cfg.min_clips_per_worker, len(todo)))
    if not todo:
        per_rank = []
    elif workers == 1:
        per_rank = [extract_features(work, store_dir, cfg, extractor=extractor)]
    else:
        per_rank = _run_workers(work, store_dir, cfg, workers, cfg.threads or 1)
    index = consolidate(store_dir)
    keys = ("extracted", "skipped", "clips", "decode_s", "compute_s", "write_s", "cpu_s")
    out: dict[str, Any] = {k: sum(s[k] for s in per_rank) for k in keys}
    out.update(videos=len(manifest.videos), cached=len(manifest.videos) - len(todo), workers=workers)
    out["seconds"] = time.perf_counter() - t0
    out["clips_per_s"] = out["clips"] / out["seconds"] if out["clips"] else 0.0
    out["store_videos"] = index["num_videos"]
    out["per_rank"] = per_rank
    return out
