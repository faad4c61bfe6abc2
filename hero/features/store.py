"""The feature store: per-video clip features, float16 on disk, memory-mapped, random access by video id.

Layout of a store folder::

    index.json              {"version", "dims", "clip_lens", "shards", "videos": {vid: entry}}  (consolidated view)
    shards/<shard>.npy      float16 [rows, dim] (numpy .npy: memory-mapped on read)
    shards/<shard>.json     the entries in that shard; written after the .npy, so its presence commits the shard

    shards/<shard>.regions.npy  optional: float16 [rows, R, region_dim], R region vectors per clip (same rows)
    shards/<shard>.boxes.npy    optional: float32 [rows, R, 4], each region's box (x, y, w, h), normalised to [0, 1]

An entry: {"shard", "offset", "num_clips", "dim", "clip_len", "key", "video_sha256", "extractor", "created"}, plus
{"regions": R, "region_dim": Dr} when its shard holds region features (a shard holds them for all its videos or
for none, with one R and one Dr; a store without them reads as before).
``key`` is the content address (video hash + extractor fingerprint + clip length, see `entry_key`). Writers (one per
rank) write their own shards whole or not at all; `consolidate` merges the shard files into index.json. A reader sees
index.json plus any committed shard not yet consolidated; where two shards hold one video, the newer wins.

A store may also live under an ``s3://`` URI: it is written locally and then published (`publish_store`: shards,
then index.json last); a `FeatureStore` opened on the URI reads index.json and fetches each shard .npy on first
use into the local content-addressed cache (`hero.storage.cache_root`), then memory-maps it from there.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from hero.storage.atomic import atomic_path, write_json_atomic
from hero.corpus.errors import CorpusError
from hero.storage import is_remote, open_storage

logger = logging.getLogger(__name__)
STORE_VERSION = 1


def entry_key(video_sha256: str | None, fingerprint: dict[str, Any], clip_len: float) -> str:
    """Content address of one video's features: SHA-256 over (video bytes hash, extractor fingerprint, clip length)."""
    blob = json.dumps({"video": video_sha256, "extractor": fingerprint, "clip_len": clip_len}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def imported_key(features_sha256: str, num_clips: int, clip_len: float) -> str:
    """Content address of features imported as they are (a HERO video_db value, another store's rows): a function of
    the source bytes' hash, the clips kept and the clip length alone, never of where the source lives."""
    return entry_key(features_sha256, {"name": "import", "num_clips": int(num_clips)}, clip_len)


def region_files(shard: str) -> tuple[str, str]:
    """The region-feature and box files of ``shard``, relative to the store root."""
    return f"shards/{shard}.regions.npy", f"shards/{shard}.boxes.npy"


def check_regions(regions: np.ndarray, boxes: np.ndarray, num_clips: int, file: str) -> None:
    """Region features [clips, R >= 1, Dr] and boxes [clips, R, 4] in [0, 1], finite (``features.wrong_dim`` /
    ``features.non_finite``)."""
    if regions.ndim != 3 or regions.shape[0] != num_clips or regions.shape[1] < 1:
        raise CorpusError(file, "features.wrong_dim",
                          f"region features have shape {list(regions.shape)}, expected [{num_clips}, R, dim]")
    if boxes.shape != (*regions.shape[:2], 4):
        raise CorpusError(file, "features.wrong_dim",
                          f"region boxes have shape {list(boxes.shape)}, expected {[*regions.shape[:2], 4]}")
    if not (np.isfinite(regions).all() and np.isfinite(boxes).all()):
        raise CorpusError(file, "features.non_finite", "region features or boxes hold NaN or inf")
    if boxes.min() < 0.0 or boxes.max() > 1.0:
        raise CorpusError(file, "features.wrong_dim", "region boxes must be normalised (x, y, w, h) in [0, 1]")


def check_features(feats: np.ndarray, file: str, dim: int | None = None, line: int | None = None) -> None:
    """Reject NaN/inf (``features.non_finite``) and a shape other than [clips >= 1, dim] (``features.wrong_dim``)."""
    if feats.ndim != 2 or feats.shape[0] < 1 or (dim is not None and feats.shape[1] != dim):
        want = f"[clips, {dim}]" if dim is not None else "[clips, dim]"
        raise CorpusError(file, "features.wrong_dim", f"features have shape {list(feats.shape)}, expected {want}", line)
    if not np.isfinite(feats).all():
        bad = int((~np.isfinite(feats)).any(1).sum())
        raise CorpusError(file, "features.non_finite", f"{bad} of {feats.shape[0]} clips hold NaN or inf", line)


class StoreWriter:
    """Buffers entries and writes them as one shard each time `max_rows` is reached and at `close`."""

    def __init__(self, root: str | os.PathLike, *, rank: int = 0, max_rows: int = 16384) -> None:
        if is_remote(root):
            raise ValueError(f"{root}: a store is written locally, then published with publish_store(local, uri)")
        self.root, self.rank, self.max_rows = Path(root), rank, max_rows
        (self.root / "shards").mkdir(parents=True, exist_ok=True)
        self._arrays: list[np.ndarray] = []
        self._regions: list[tuple[np.ndarray, np.ndarray]] = []
        self._signature: tuple[int, int] | None = None   # (R, Dr) of the queued entries' regions; None: none
        self._entries: dict[str, dict[str, Any]] = {}
        self._rows = 0
        self.shards_written: list[str] = []

    def add(self, vid: str, feats: np.ndarray, *, key: str, clip_len: float, extractor: str,
            video_sha256: str | None = None, dim: int | None = None, regions: np.ndarray | None = None,
            boxes: np.ndarray | None = None) -> None:
        """Queue one video's features [clips, dim] (checked: finite, right dim; stored as float16), and optionally
        its region features [clips, R, Dr] (float16) with their boxes [clips, R, 4] (float32)."""
        where = f"{extractor}:{vid}"
        check_features(feats, where, dim)
        f16 = _to_f16(feats, where)
        signature = None
        if (regions is None) != (boxes is None):
            raise ValueError(f"{where}: region features and boxes go together")
        if regions is not None:
            check_regions(regions, boxes, int(feats.shape[0]), where)
            signature = (int(regions.shape[1]), int(regions.shape[2]))
        if self._entries and signature != self._signature:   # one shard holds one region layout (or none)
            self.flush()
        self._signature = signature
        entry = {"offset": self._rows, "num_clips": int(f16.shape[0]), "dim": int(f16.shape[1]),
                 "clip_len": clip_len, "key": key, "video_sha256": video_sha256, "extractor": extractor}
        if signature is not None:
            entry.update(regions=signature[0], region_dim=signature[1])
            self._regions.append((_to_f16(regions, where), np.asarray(boxes, dtype=np.float32)))
        self._entries[vid] = entry
        self._arrays.append(f16)
        self._rows += f16.shape[0]
        if self._rows >= self.max_rows:
            self.flush()

    def flush(self) -> None:
        """Write the queued entries as one shard (.npy then .json, each atomically)."""
        if not self._entries:
            return
        dims = {a.shape[1] for a in self._arrays}
        if len(dims) != 1:
            raise ValueError(f"one shard holds one feature dim, got {sorted(dims)}")
        name = f"{time.strftime('%Y%m%dT%H%M%S')}-r{self.rank:03d}-{uuid.uuid4().hex[:8]}"
        _save_npy(self.root / "shards" / f"{name}.npy", np.concatenate(self._arrays))
        if self._regions:    # before the .json: the shard is committed only once all its arrays are there
            reg_file, box_file = region_files(name)
            _save_npy(self.root / reg_file, np.concatenate([r for r, _ in self._regions]))
            _save_npy(self.root / box_file, np.concatenate([b for _, b in self._regions]))
        created = time.time()
        entries = {vid: {**e, "shard": name, "created": created} for vid, e in self._entries.items()}
        write_json_atomic(self.root / "shards" / f"{name}.json", {"version": STORE_VERSION, "shard": name, "videos": entries})
        self.shards_written.append(name)
        self._arrays, self._regions, self._entries, self._rows = [], [], {}, 0

    def close(self) -> None:
        self.flush()


def _to_f16(x: np.ndarray, where: str) -> np.ndarray:
    with np.errstate(over="ignore"):
        f16 = np.asarray(x).astype(np.float16)
    if not np.isfinite(f16).all():
        raise CorpusError(where, "features.non_finite", "values overflow float16 (|x| > 65504)")
    return f16


def _save_npy(path: Path, array: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, array)


def _merge(videos: dict[str, dict], entries: dict[str, dict]) -> None:
    for vid, e in entries.items():
        old = videos.get(vid)
        if old is None or (e["created"], e["shard"]) >= (old["created"], old["shard"]):
            videos[vid] = e


def consolidate(root: str | os.PathLike) -> dict[str, Any]:
    """Merge every committed shard into index.json (atomic; safe to call from any process, idempotent)."""
    root = Path(root)
    videos: dict[str, dict] = {}
    shards = []
    for meta in sorted((root / "shards").glob("*.json")):
        with open(meta, encoding="utf-8") as f:
            d = json.load(f)
        shards.append(d["shard"])
        _merge(videos, d["videos"])
    used = sorted({e["shard"] for e in videos.values()})
    index = {"version": STORE_VERSION, "dims": sorted({e["dim"] for e in videos.values()}),
             "clip_lens": sorted({e["clip_len"] for e in videos.values()}), "shards": used,
             "regions": [list(t) for t in sorted({(e["regions"], e["region_dim"]) for e in videos.values() if "regions" in e})],
             "num_videos": len(videos), "num_clips": sum(e["num_clips"] for e in videos.values()), "videos": videos}
    write_json_atomic(root / "index.json", index)
    return index


class FeatureStore:
    """Read side: ``store[vid]`` -> float16 memmap view [clips, dim]; ``store.entry(vid)`` -> its index entry.

    ``root`` is a local folder or an ``s3://`` URI (shards fetched on demand into the local cache)."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.remote = is_remote(root)
        self.root: Path | str = str(root).rstrip("/") if self.remote else Path(root)
        if not self.remote and not (self.root / "shards").is_dir():
            raise FileNotFoundError(f"{self.root}: not a feature store (no shards/ folder)")
        self.storage = open_storage(root)  # an S3 prefix holding nothing raises FileNotFoundError
        self.refresh()

    def refresh(self) -> None:
        """Re-read index.json and any shard committed since."""
        videos: dict[str, dict] = {}
        known: set[str] = set()
        try:
            index = json.loads(self.storage.read_bytes("index.json"))
        except FileNotFoundError:
            index = None
        if index is not None:
            videos.update(index["videos"])
            known = set(index["shards"])
        for rel in self.storage.list_files("shards"):
            stem = rel.rsplit("/", 1)[-1].removesuffix(".json")
            if rel.endswith(".json") and stem not in known:
                _merge(videos, json.loads(self.storage.read_bytes(rel))["videos"])
        self.videos = videos
        self._maps: dict[str, np.ndarray] = {}

    def __contains__(self, vid: str) -> bool:
        return vid in self.videos

    def __len__(self) -> int:
        return len(self.videos)

    def entry(self, vid: str) -> dict[str, Any]:
        return self.videos[vid]

    def has(self, vid: str, key: str) -> bool:
        """Whether ``vid`` is stored with exactly this content key (a cache hit)."""
        e = self.videos.get(vid)
        return e is not None and e["key"] == key

    def _map(self, shard: str, rel: str | None = None) -> np.ndarray:
        rel = rel or f"shards/{shard}.npy"
        if rel not in self._maps:
            self._maps[rel] = np.load(self.storage.local_path(rel), mmap_mode="r")
        return self._maps[rel]

    def __getitem__(self, vid: str) -> np.ndarray:
        """[clips, dim] float16, memory-mapped (copy it before modifying)."""
        e = self.videos[vid]
        return self._map(e["shard"])[e["offset"]:e["offset"] + e["num_clips"]]

    def has_regions(self, vid: str) -> bool:
        return "regions" in self.videos.get(vid, {})

    def regions(self, vid: str) -> tuple[np.ndarray, np.ndarray]:
        """(region features [clips, R, Dr] float16, boxes [clips, R, 4] float32), memory-mapped; a video stored
        without regions is a ``features.no_regions`` error naming the store."""
        e = self.videos[vid]
        if "regions" not in e:
            raise self.no_regions(vid)
        rows = slice(e["offset"], e["offset"] + e["num_clips"])
        reg_file, box_file = region_files(e["shard"])
        return self._map(e["shard"], reg_file)[rows], self._map(e["shard"], box_file)[rows]

    def no_regions(self, vid: str) -> CorpusError:
        return CorpusError(str(self.root), "features.no_regions",
                           f"video {vid!r} has no region features, and model.regions reads them: extract the "
                           f"store with features.extract.regions (grid or top_motion) or set model.regions=false")

    def check_regions(self, video_ids) -> tuple[int, int]:
        """(R, region_dim) shared by every video of ``video_ids``; ``features.no_regions`` naming the store when
        one has none, ``features.wrong_dim`` when two differ."""
        found = set()
        for vid in video_ids:
            if vid in self.videos and not self.has_regions(vid):
                raise self.no_regions(vid)
            if vid in self.videos:
                found.add((self.videos[vid]["regions"], self.videos[vid]["region_dim"]))
        if len(found) > 1:
            raise CorpusError(str(self.root), "features.wrong_dim",
                              f"videos have several region layouts [R, dim] {sorted(found)}; one store holds one")
        return found.pop() if found else (0, 0)

    def check(self, expected: dict[str, int], dim: int) -> None:
        """Every video of ``expected`` (vid -> clip count) present with that many clips of ``dim`` (else an error:
        ``features.missing`` / ``features.wrong_dim``)."""
        for vid, n in expected.items():
            if vid not in self.videos:
                raise CorpusError(str(self.root), "features.missing", f"no features for video {vid!r}")
            e = self.videos[vid]
            if e["dim"] != dim or e["num_clips"] != n:
                raise CorpusError(self.storage.uri(f"shards/{e['shard']}.json"), "features.wrong_dim",
                                  f"{vid!r}: [{e['num_clips']}, {e['dim']}], expected [{n}, {dim}]")

    def garbage(self) -> list[Path]:
        """Shard files no index entry points to (superseded or uncommitted): safe to delete (a local store only)."""
        if self.remote:
            raise ValueError(f"{self.root}: garbage() lists local files; clean the local store before publishing it")
        used = {e["shard"] for e in self.videos.values()}
        return [p for p in sorted((self.root / "shards").iterdir())
                if p.name.split(".", 1)[0] not in used or p.name.startswith(".")]


def publish_store(root: str | os.PathLike, uri: str) -> dict[str, Any]:
    """Publish the local store at ``root`` to ``uri`` (e.g. ``s3://bucket/features``); returns its index.

    Consolidates first, then uploads each shard the index uses (.npy, then its .json, as a local writer commits
    them; shards already there are skipped: their names are unique) and index.json last, so a reader of ``uri``
    never sees an index naming a shard that is not there yet.
    """
    root = Path(root)
    index = consolidate(root)
    dest = open_storage(uri, create=True)
    t0, sent = time.perf_counter(), 0
    for shard in index["shards"]:
        arrays = [f"shards/{shard}.npy", *(f for f in region_files(shard) if (root / f).exists())]
        for rel in (*arrays, f"shards/{shard}.json"):
            if not dest.exists(rel):
                dest.upload_file(root / rel, rel)
                sent += 1
    dest.upload_file(root / "index.json", "index.json")
    logger.info("published feature store %s -> %s: %d videos, %d shard files sent, %.1fs", root, dest.root,
                index["num_videos"], sent, time.perf_counter() - t0)
    return index


__all__ = ["FeatureStore", "StoreWriter", "check_features", "check_regions", "region_files", "consolidate", "entry_key", "imported_key", "publish_store"]
