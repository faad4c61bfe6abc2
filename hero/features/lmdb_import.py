"""Precomputed features in the original HERO video_db layout (linjieli222/HERO ``scripts/convert_videodb.py``,
``data/data.py`` ``VideoFeatLmdb``): read, import into a feature store, write.

Layout: ``video_db/<dataset>/id2nframe.json`` ({vid: nframes}) beside an LMDB folder
``<feat_version>_<clip_len>[_compressed]`` (e.g. ``resnet_slowfast_1.5``). Key = vid_name (utf-8); value =
msgpack (msgpack-numpy) ``{"features": ndarray [nframes, dim]}``, or with ``_compressed`` an
``np.savez_compressed`` blob with a ``features`` array. Nothing is unpickled (allow_pickle=False).

Region features (this platform's addition; the original release has none): a value may also hold ``regions``
[nframes, R, Dr] and ``boxes`` [nframes, R, 4] (normalised x, y, w, h), under the same two encodings; an import
copies them into the store's region files (`hero.features.store`), and a value without them imports as before.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from hero.storage.atomic import atomic_path, write_json_atomic
from hero.corpus.errors import CorpusError, IngestReport, OnError
from hero.features.store import StoreWriter, check_features, check_regions, consolidate, imported_key

logger = logging.getLogger(__name__)


def _locate(path: Path, lmdb_name: str | None) -> tuple[Path, Path | None]:
    """(LMDB folder, id2nframe.json or None) for a dataset folder or an LMDB folder."""
    if (path / "data.mdb").exists():
        nframe = path.parent / "id2nframe.json"
        return path, nframe if nframe.exists() else None
    if lmdb_name:
        return path / lmdb_name, path / "id2nframe.json" if (path / "id2nframe.json").exists() else None
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: not a folder (a HERO video_db dataset folder or its LMDB folder)")
    dbs = sorted(p for p in path.iterdir() if (p / "data.mdb").exists())
    if len(dbs) != 1:
        raise FileNotFoundError(f"{path}: expected one LMDB folder (found {[p.name for p in dbs]}); pass lmdb_name")
    return dbs[0], path / "id2nframe.json" if (path / "id2nframe.json").exists() else None


def is_video_db(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a HERO video_db LMDB folder, or a folder holding one beside an id2nframe.json."""
    path = Path(path)
    if (path / "data.mdb").exists():
        return True
    return path.is_dir() and (path / "id2nframe.json").exists() and any((p / "data.mdb").exists() for p in path.iterdir())


def clip_len_of(lmdb_name: str) -> float | None:
    """Seconds per feature named by an LMDB folder ``<feat_version>_<clip_len>[_compressed]``; None if it names none."""
    m = re.search(r"_(\d+(?:\.\d+)?)(?:_compressed)?$", lmdb_name)
    return float(m.group(1)) if m else None


class VideoDb:
    """Read side of a HERO video_db (the layout of the module docstring).

    ``items()`` yields ``(vid, value bytes)`` in key order, ``get(vid)`` one value, ``decode(vid, value)`` its
    features [nframes, dim] (cut to id2nframe.json's count when that is smaller). Use as a context manager.
    """

    def __init__(self, path: str | os.PathLike, lmdb_name: str | None = None) -> None:
        import lmdb

        self.db_dir, self.id2nframe_file = _locate(Path(path), lmdb_name)
        self.name = self.db_dir.name
        self.compressed = self.name.endswith("_compressed")
        self.clip_len = clip_len_of(self.name)
        """From the folder name; None when it names none."""
        self.id2nframe: dict[str, Any] = json.loads(self.id2nframe_file.read_text()) if self.id2nframe_file else {}
        self._env = lmdb.open(str(self.db_dir), readonly=True, create=False, lock=False, readahead=False)

    def where(self, vid: str) -> str:
        """How errors name one entry: ``<LMDB folder> key '<vid>'``."""
        return f"{self.db_dir} key {vid!r}"

    def items(self) -> Iterator[tuple[str, bytes]]:
        with self._env.begin(buffers=False) as txn:
            for raw_key, value in txn.cursor():
                vid = raw_key.decode("utf-8")
                if vid != "__keys__":
                    yield vid, value

    def get(self, vid: str) -> bytes | None:
        with self._env.begin(buffers=False) as txn:
            return txn.get(vid.encode("utf-8"))

    def decode(self, vid: str, value: bytes) -> np.ndarray:
        """The features of one value, cut to id2nframe.json's count for ``vid`` when smaller.

        Raises:
            CorpusError: ``features.wrong_dim`` for a value that does not decode (corrupt msgpack / npz).
        """
        try:
            feats = np.asarray(_decode(value, self.compressed))
        except Exception as err:  # corrupt msgpack / npz
            raise CorpusError(self.where(vid), "features.wrong_dim",
                              f"unreadable value: {type(err).__name__}: {err}") from None
        return self._cut(vid, feats)

    def decode_regions(self, vid: str, value: bytes) -> tuple[np.ndarray, np.ndarray] | None:
        """(region features [nframes, R, Dr], boxes [nframes, R, 4]) of one value, cut as `decode` cuts; None
        when the value holds none."""
        try:
            d = _decode_all(value, self.compressed)
        except Exception as err:  # corrupt msgpack / npz
            raise CorpusError(self.where(vid), "features.wrong_dim",
                              f"unreadable value: {type(err).__name__}: {err}") from None
        if "regions" not in d or "boxes" not in d:
            return None
        return self._cut(vid, np.asarray(d["regions"])), self._cut(vid, np.asarray(d["boxes"]))

    def _cut(self, vid: str, rows: np.ndarray) -> np.ndarray:
        nf = self.id2nframe.get(vid)
        return rows[:nf] if isinstance(nf, int) and nf > 0 else rows

    def close(self) -> None:
        self._env.close()

    def __enter__(self) -> VideoDb:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _decode(value: bytes, compressed: bool) -> np.ndarray:
    return _decode_all(value, compressed)["features"]


def _decode_all(value: bytes, compressed: bool) -> dict[str, np.ndarray]:
    if compressed:
        with io.BytesIO(value) as f, np.load(f, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    import msgpack
    import msgpack_numpy

    return msgpack.unpackb(value, raw=False, object_hook=msgpack_numpy.decode)


def encode_value(feats: np.ndarray, compressed: bool = False, regions: np.ndarray | None = None,
                 boxes: np.ndarray | None = None) -> bytes:
    """One LMDB value: msgpack(-numpy) ``{"features": feats}``, or an ``np.savez_compressed`` blob; with
    ``regions`` and ``boxes`` those arrays too."""
    arrays = {"features": feats}
    if regions is not None:
        arrays.update(regions=regions, boxes=boxes)
    if compressed:
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)
        return buf.getvalue()
    import msgpack
    import msgpack_numpy

    return msgpack.packb(arrays, default=msgpack_numpy.encode, use_bin_type=True)


def write_video_db(root: str | os.PathLike, videos: Mapping[str, np.ndarray] | Iterable[tuple[str, np.ndarray]], *,
                   name: str = "resnet_slowfast_1.5", compressed: bool = False,
                   id2nframe: Mapping[str, int] | None = None, commit_bytes: int = 1 << 28) -> Path:
    """Write a HERO video_db: ``root/id2nframe.json`` + LMDB ``root/<name>[_compressed]`` (tests, benchmarks, and
    handing our features to the original code). ``videos`` may be a generator (nothing is held but one video);
    a value is a features array, or a mapping ``{"features", "regions", "boxes"}`` (region features too).

    The LMDB folder is written beside its final place and renamed into it, then id2nframe.json is written
    (atomically); ``id2nframe`` defaults to each video's row count. Returns ``root``.
    """
    import lmdb

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    name = name + ("_compressed" if compressed else "")
    counts: dict[str, int] = {}
    items = videos.items() if isinstance(videos, Mapping) else videos
    with atomic_path(root / name) as tmp:
        env = lmdb.open(str(tmp), map_size=1 << 40, subdir=True, sync=False, writemap=False)
        try:
            txn, pending = env.begin(write=True), 0
            for vid, feats in items:
                if isinstance(feats, Mapping):
                    value = encode_value(feats["features"], compressed, feats.get("regions"), feats.get("boxes"))
                    feats = feats["features"]
                else:
                    value = encode_value(feats, compressed)
                txn.put(vid.encode("utf-8"), value)
                counts[vid] = int(feats.shape[0])
                pending += len(value)
                if pending >= commit_bytes:
                    txn.commit()
                    txn, pending = env.begin(write=True), 0
            txn.commit()
            env.sync(True)
        finally:
            env.close()
    write_json_atomic(root / "id2nframe.json", dict(id2nframe) if id2nframe is not None else counts)
    return root


def import_video_db(path: str | os.PathLike, store_dir: str | os.PathLike, *, lmdb_name: str | None = None,
                    clip_len: float | None = None, dim: int | None = None, max_clips: int | None = None,
                    on_error: OnError = "raise") -> dict[str, Any]:
    """Copy every video of a HERO video_db into the store at ``store_dir`` (float16), checking each array.

    Each entry's ``video_sha256`` is the SHA-256 of its LMDB value (the feature bytes) and its key
    `imported_key` (that hash, the clips kept, the clip length): content alone, not where the LMDB lives.

    Args:
        clip_len: seconds per feature; default parsed from the LMDB folder name (``..._1.5``), else 1.5.
        dim: expected feature dim (e.g. 4352); default: that of the first video.
        max_clips: truncate each video (HERO: max_clip_len=100); None keeps all.
    Raises:
        CorpusError: ``features.non_finite`` / ``features.wrong_dim`` naming the LMDB folder and the key.
    """
    report = IngestReport()
    writer = StoreWriter(store_dir)
    n = 0
    with VideoDb(path, lmdb_name) as db:
        clip_len = clip_len or db.clip_len or 1.5
        for vid, value in db.items():
            where = db.where(vid)
            try:
                feats = db.decode(vid, value)
                found = db.decode_regions(vid, value)
                if max_clips:
                    feats = feats[:max_clips]
                    found = found and (found[0][:max_clips], found[1][:max_clips])
                check_features(feats, where, dim)
                if found is not None:
                    check_regions(found[0], found[1], int(feats.shape[0]), where)
            except CorpusError as err:
                report.handle(err, on_error)
                continue
            dim = dim or int(feats.shape[1])
            sha = hashlib.sha256(value).hexdigest()
            regions = {"regions": found[0], "boxes": found[1]} if found is not None else {}
            writer.add(vid, feats, key=imported_key(sha, feats.shape[0], clip_len), clip_len=clip_len,
                       extractor=f"video_db:{db.name}", video_sha256=sha, dim=dim, **regions)
            n += 1
        db_dir = db.db_dir
    writer.close()
    index = consolidate(store_dir)
    logger.info("imported %d videos from %s (%d skipped)", n, db_dir, sum(report.skipped.values()))
    return {"imported": n, "dim": dim, "clip_len": clip_len, "store_videos": index["num_videos"], "report": report.to_dict()}
