"""Features-only corpora: precomputed features stand in for the videos (no ``videos/`` folder).

The corpus folder holds subtitles and annotations as usual; the features come from a *source*:

- a HERO video_db: a dataset folder holding ``id2nframe.json`` and one LMDB folder
  ``<feat_version>_<clip_len>[_compressed]`` (e.g. ``video_db/tv`` with ``resnet_slowfast_1.5``), or that LMDB
  folder itself (`hero.features.lmdb_import`);
- a feature store of ours (a folder with ``index.json`` and ``shards/``, `hero.features.store`).

`ingest_features_corpus` builds the manifest: each video's clip count is the number of feature rows, its ``sha256``
the SHA-256 of its feature bytes (the LMDB value; a store's float16 rows), its duration the ``video2dur`` file's
(`hero.corpus.durations`) or, without one, clips x clip_len. `import_features` is the features stage: it copies
the manifest's videos into a store under `imported_key` (a function of content alone), checking that the bytes are
still the ones the manifest recorded.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from hero.corpus.alignment import count_clips
from hero.corpus.durations import read_video2dur
from hero.corpus.errors import CorpusError, IngestReport
from hero.corpus.ingest import CorpusConfig, VideoInfo, ingest_corpus
from hero.corpus.manifest import Manifest
from hero.storage import Storage
from hero.features.lmdb_import import VideoDb, is_video_db
from hero.features.store import FeatureStore, StoreWriter, check_features, consolidate, imported_key

logger = logging.getLogger(__name__)

Scanned = tuple[np.ndarray, str]
"""One video's features [clips, dim] and the SHA-256 of their source bytes."""


class _VideoDbSource:
    kind = "video_db"

    def __init__(self, path: Path) -> None:
        self.db = VideoDb(path)
        self.name, self.clip_len = self.db.name, self.db.clip_len
        self.origin = f"{self.db.db_dir} (from its folder name)"

    def where(self, vid: str) -> str:
        return self.db.where(vid)

    def scan(self) -> Iterator[tuple[str, Scanned | CorpusError]]:
        for vid, value in self.db.items():
            try:
                yield vid, (self.db.decode(vid, value), hashlib.sha256(value).hexdigest())
            except CorpusError as err:
                yield vid, err

    def read(self, vid: str) -> Scanned:
        value = self.db.get(vid)
        if value is None:
            raise CorpusError(str(self.db.db_dir), "features.missing", f"no key {vid!r}")
        return self.db.decode(vid, value), hashlib.sha256(value).hexdigest()

    def read_regions(self, vid: str) -> tuple[np.ndarray, np.ndarray] | None:
        """(region features, boxes) of ``vid`` when its value holds them (`hero.features.lmdb_import`)."""
        value = self.db.get(vid)
        return None if value is None else self.db.decode_regions(vid, value)

    def close(self) -> None:
        self.db.close()


class _StoreSource:
    kind = "store"

    def __init__(self, path: Path) -> None:
        self.store = FeatureStore(path)
        self.name = path.name
        lens = sorted({float(e["clip_len"]) for e in self.store.videos.values()})
        if len(lens) > 1:
            raise CorpusError(str(path / "index.json"), "features.clip_len_mismatch",
                              f"the store holds several clip lengths {lens}; a corpus has one")
        self.clip_len = lens[0] if lens else None
        self.origin = f"{path} (its entries' clip_len)"

    def where(self, vid: str) -> str:
        return f"{self.store.root} video {vid!r}"

    def _rows(self, vid: str) -> Scanned:
        feats = np.ascontiguousarray(self.store[vid])
        h = hashlib.sha256(feats.data)
        if self.store.has_regions(vid):   # region features are content too (a store without them hashes as before)
            for a in self.store.regions(vid):
                h.update(np.ascontiguousarray(a).data)
        return feats, h.hexdigest()

    def read_regions(self, vid: str) -> tuple[np.ndarray, np.ndarray] | None:
        return tuple(np.asarray(a) for a in self.store.regions(vid)) if self.store.has_regions(vid) else None

    def scan(self) -> Iterator[tuple[str, Scanned | CorpusError]]:
        for vid in self.store.videos:
            yield vid, self._rows(vid)

    def read(self, vid: str) -> Scanned:
        if vid not in self.store:
            raise CorpusError(str(self.store.root), "features.missing", f"no video {vid!r}")
        return self._rows(vid)

    def close(self) -> None:
        pass


def open_features(path: str | os.PathLike) -> _VideoDbSource | _StoreSource:
    """The features source at ``path`` (a local HERO video_db or feature store; see the module docstring).

    Raises:
        FileNotFoundError: ``path`` is neither (naming it and what was looked for).
    """
    p = Path(str(path).removeprefix("file://")).expanduser().resolve()
    if is_video_db(p):
        return _VideoDbSource(p)
    if (p / "shards").is_dir():
        return _StoreSource(p)
    raise FileNotFoundError(f"{p}: not a features source (a HERO video_db folder with id2nframe.json and an LMDB "
                            "folder, an LMDB folder holding data.mdb, or a feature store holding shards/)")


def ingest_features_corpus(cfg: CorpusConfig, features: str | os.PathLike, *, video2dur: str | os.PathLike | None = None,
                           storage: Storage | None = None) -> Manifest:
    """The manifest of a features-only corpus: subtitles and annotations from ``cfg.path``, videos from ``features``.

    A video whose features are bad (NaN, wrong dimension, unreadable, more clips than its video2dur duration covers)
    is raised or, with ``cfg.on_error: skip``, skipped and counted like a video that does not decode; an annotation
    naming a video the features lack is ``annotation.missing_video``, as for a corpus of files.

    Raises:
        CorpusError: ``features.clip_len_mismatch`` when the source's clip length (an LMDB folder name ``..._1.5``;
            a store's entries) is not ``cfg.clip_len``, naming both; the video2dur rules of `hero.corpus.durations`.
        FileNotFoundError: ``features`` or ``video2dur`` does not exist.
    """
    t0 = time.perf_counter()
    src = open_features(features)
    try:
        if src.clip_len is not None and abs(src.clip_len - cfg.clip_len) > 1e-9:
            raise CorpusError(src.origin, "features.clip_len_mismatch",
                              f"features at {src.clip_len} s per clip, but corpus.reader.clip_len is {cfg.clip_len} s")
        dur_file = str(Path(video2dur).expanduser().resolve()) if video2dur else None
        durations = read_video2dur(dur_file) if dur_file else {}
        report = IngestReport()
        videos: dict[str, VideoInfo | CorpusError] = {}
        dim: int | None = None
        no_duration = 0
        for vid, got in src.scan():
            try:
                if isinstance(got, CorpusError):
                    raise got
                feats, sha = got
                check_features(feats, src.where(vid), dim)
                dim = dim or int(feats.shape[1])
                n = int(feats.shape[0])
                d = durations.get(vid)
                if d is None:
                    no_duration += bool(dur_file)
                    d = n * cfg.clip_len
                elif n > count_clips(d, cfg.clip_len) + 1:
                    raise CorpusError(src.where(vid), "features.longer_than_video",
                                      f"{n} clips of {cfg.clip_len} s, but {dur_file} gives the video {d} s")
                videos[vid] = VideoInfo(path="", sha256=sha, duration=d, num_clips=n)
            except CorpusError as err:
                if cfg.on_error == "raise":
                    raise
                videos[vid] = err
        if no_duration:
            report.note("features.duration_from_clips", no_duration)
        record = {"source": str(Path(str(features).removeprefix("file://")).expanduser().resolve()), "kind": src.kind,
                  "name": src.name, "clip_len": cfg.clip_len, "dim": dim, "video2dur": dur_file}
    finally:
        src.close()
    logger.info("features-only corpus: %d videos in %s (%s), scanned in %.1fs", len(videos), record["source"],
                src.kind, time.perf_counter() - t0)
    return ingest_corpus(cfg, storage, videos=videos, features=record, report=report)


def import_features(manifest: Manifest, store_dir: str | os.PathLike, *, shard_rows: int = 16384) -> dict[str, Any]:
    """The features stage of a features-only corpus: copy the manifest's videos from its source into the store at
    ``store_dir`` (float16), each under `imported_key`; a video the store already holds under that key is not read.

    Returns:
        ``{"videos", "imported", "cached", "clips", "seconds", "clips_per_s", "store_videos"}``.
    Raises:
        ValueError: the manifest is not of a features-only corpus.
        CorpusError: ``features.changed`` (the source's bytes are no longer those the manifest hashed: re-run the
            corpus stage) or ``features.missing``, naming the source and the video.
    """
    rec = manifest.features
    if not rec:
        raise ValueError("import_features: the manifest is not of a features-only corpus (no features source)")
    t0 = time.perf_counter()
    Path(store_dir, "shards").mkdir(parents=True, exist_ok=True)
    store = FeatureStore(store_dir)
    todo = {}
    for vid, e in manifest.videos.items():
        key = imported_key(e.sha256, e.num_clips, manifest.clip_len)
        if not store.has(vid, key):
            todo[vid] = key
    clips = 0
    if todo:
        src = open_features(rec["source"])
        writer = StoreWriter(store_dir, max_rows=shard_rows)
        try:
            for vid, key in todo.items():
                e = manifest.videos[vid]
                feats, sha = src.read(vid)
                if sha != e.sha256:
                    raise CorpusError(src.where(vid), "features.changed",
                                      f"sha256 {sha[:16]}…, but the manifest recorded {e.sha256[:16]}…")
                found = src.read_regions(vid)
                regions = {"regions": found[0][:e.num_clips], "boxes": found[1][:e.num_clips]} if found else {}
                writer.add(vid, feats[:e.num_clips], key=key, clip_len=manifest.clip_len,
                           extractor=f"import:{src.kind}:{src.name}", video_sha256=sha, dim=rec.get("dim"), **regions)
                clips += e.num_clips
            writer.close()
        finally:
            src.close()
    index = consolidate(store_dir)
    seconds = time.perf_counter() - t0
    logger.info("features: %d videos imported (%d clips) from %s, %d cached, %.1fs", len(todo), clips, rec["source"],
                len(manifest.videos) - len(todo), seconds)
    return {"videos": len(manifest.videos), "imported": len(todo), "cached": len(manifest.videos) - len(todo),
            "clips": clips, "seconds": seconds, "clips_per_s": clips / seconds if clips else 0.0,
            "store_videos": index["num_videos"]}


__all__ = ["import_features", "ingest_features_corpus", "open_features"]
