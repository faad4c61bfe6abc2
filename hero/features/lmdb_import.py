"""Import precomputed features in the original HERO video_db layout (HERO_SPEC.md d.1) into a feature store.

Layout: ``video_db/<dataset>/id2nframe.json`` ({vid: nframes}) beside an LMDB folder
``<feat_version>_<clip_len>[_compressed]`` (e.g. ``resnet_slowfast_1.5``). Key = vid_name (utf-8); value =
msgpack (msgpack-numpy) ``{"features": ndarray [nframes, dim]}``, or with ``_compressed`` an
``np.savez_compressed`` blob with a ``features`` array. Nothing is unpickled (allow_pickle=False).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from hero.corpus.errors import CorpusError, IngestReport, OnError
from hero.features.store import StoreWriter, check_features, consolidate, entry_key

logger = logging.getLogger(__name__)


def _locate(path: Path, lmdb_name: str | None) -> tuple[Path, Path | None]:
    """(LMDB folder, id2nframe.json or None) for a dataset folder or an LMDB folder."""
    if (path / "data.mdb").exists():
        nframe = path.parent / "id2nframe.json"
        return path, nframe if nframe.exists() else None
    if lmdb_name:
        return path / lmdb_name, path / "id2nframe.json" if (path / "id2nframe.json").exists() else None
    dbs = sorted(p for p in path.iterdir() if (p / "data.mdb").exists())
    if len(dbs) != 1:
        raise FileNotFoundError(f"{path}: expected one LMDB folder (found {[p.name for p in dbs]}); pass lmdb_name")
    return dbs[0], path / "id2nframe.json" if (path / "id2nframe.json").exists() else None


def _decode(value: bytes, compressed: bool) -> np.ndarray:
    if compressed:
        with io.BytesIO(value) as f:
            return np.load(f, allow_pickle=False)["features"]
    import msgpack
    import msgpack_numpy

    return msgpack.unpackb(value, raw=False, object_hook=msgpack_numpy.decode)["features"]


def import_video_db(path: str | os.PathLike, store_dir: str | os.PathLike, *, lmdb_name: str | None = None,
                    clip_len: float | None = None, dim: int | None = None, max_clips: int | None = None,
                    on_error: OnError = "raise") -> dict[str, Any]:
    """Copy every video of a HERO video_db into the store at ``store_dir`` (float16), checking each array.

    Args:
        clip_len: seconds per feature; default parsed from the LMDB folder name (``..._1.5``), else 1.5.
        dim: expected feature dim (e.g. 4352); default: that of the first video.
        max_clips: truncate each video (HERO: max_clip_len=100); None keeps all.
    Raises:
        CorpusError: ``features.non_finite`` / ``features.wrong_dim`` naming the LMDB folder and the key.
    """
    import lmdb

    db_dir, nframe_file = _locate(Path(path), lmdb_name)
    name = db_dir.name
    compressed = name.endswith("_compressed")
    if clip_len is None:
        m = re.search(r"_(\d+(?:\.\d+)?)(?:_compressed)?$", name)
        clip_len = float(m.group(1)) if m else 1.5
    id2nframe = json.loads(nframe_file.read_text()) if nframe_file else {}
    report = IngestReport()
    writer = StoreWriter(store_dir)
    n = 0
    env = lmdb.open(str(db_dir), readonly=True, create=False, lock=False, readahead=False)
    try:
        with env.begin(buffers=False) as txn:
            for raw_key, value in txn.cursor():
                vid = raw_key.decode("utf-8")
                if vid == "__keys__":
                    continue
                where = f"{db_dir} key {vid!r}"
                try:
                    feats = np.asarray(_decode(value, compressed))
                    nf = id2nframe.get(vid)
                    if isinstance(nf, int) and nf > 0:
                        feats = feats[:nf]
                    if max_clips:
                        feats = feats[:max_clips]
                    check_features(feats, where, dim)
                except CorpusError as err:
                    report.handle(err, on_error)
                    continue
                except Exception as err:  # corrupt msgpack / npz
                    report.handle(CorpusError(where, "features.wrong_dim", f"unreadable value: {type(err).__name__}: {err}"),
                                  on_error)
                    continue
                dim = dim or int(feats.shape[1])
                sha = hashlib.sha256(value).hexdigest()
                key = entry_key(sha, {"name": "hero-video-db", "db": name}, clip_len)
                writer.add(vid, feats.astype(np.float32), key=key, clip_len=clip_len, extractor=f"video_db:{name}",
                           video_sha256=sha, dim=dim)
                n += 1
    finally:
        env.close()
    writer.close()
    index = consolidate(store_dir)
    logger.info("imported %d videos from %s (%d skipped)", n, db_dir, sum(report.skipped.values()))
    return {"imported": n, "dim": dim, "clip_len": clip_len, "store_videos": index["num_videos"], "report": report.to_dict()}
