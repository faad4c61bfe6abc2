"""Corpus nodes: a raw corpus (synthetic, the user's folder or the user's ``s3://`` prefix) -> a validated manifest.

Paths recorded here are relative to the project when the corpus lies inside it (the synthetic one always does), so
the records and the manifest's key are the same in any clone; the manifest's storage is `ManifestDataset`'s.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

from hero.config import from_dict
from hero.corpus.ingest import CorpusConfig, ingest_corpus
from hero.storage import StorageError, is_remote, open_storage
from hero.storage.lock import hold
from hero.storage.s3 import S3Storage
from pipelines.datasets import Ingestion
from pipelines.fingerprint import code_fingerprint, params_hash, tree_fingerprint
from pipelines.paths import layer, relative, resolve

log = logging.getLogger(__name__)

SYNTH_CODE = ("hero/synth",)
"""The code a synthetic corpus's folder name covers besides its settings (the corpus stage of dvc.yaml depends on it)."""
INGEST_CODE = ("hero/corpus",)
"""The code a manifest's key covers besides its inputs (the corpus stage of dvc.yaml depends on it)."""


def prepare_corpus(corpus: dict[str, Any]) -> dict[str, Any]:
    """Locate the raw corpus; generate the synthetic one on first use (deterministic by seed).

    Args:
        corpus: ``params:corpus`` (``path``: ``synthetic``, a folder or an ``s3://bucket/prefix`` URI whose
            credentials and endpoint come from the AWS environment, docs/s3.md; ``synthetic``: hero.synth.SynthConfig
            fields, e.g. size, seed and domain ``tv`` | ``instructional``; ``features``: a features-only corpus's
            features, with ``video2dur`` its durations, see `features_only_corpus`).

    Returns:
        ``{"path", "source", "fingerprint"}`` for the ingestion node (plus ``features`` and ``video2dur`` for a
        features-only corpus); ``path`` is the folder or the URI.
    """
    from hero.synth.generate import SynthConfig, generate_corpus

    if not corpus.get("path"):
        raise ValueError("corpus.path: not set; give the corpus folder (kedro run --params=corpus.path=/data/my_corpus)")
    path = str(corpus["path"])
    if corpus.get("features"):
        return features_only_corpus(corpus)
    if is_remote(path):
        root, fingerprint = remote_corpus(path)
        return _corpus_info(root, "user", fingerprint)
    if path == "synthetic":
        params = dict(corpus.get("synthetic", {}))
        synth = from_dict(SynthConfig, params, _path="corpus.synthetic")
        code = code_fingerprint(SYNTH_CODE)  # the generator's version: another one makes other bytes
        if synth.domain == "tv":
            params.pop("domain", None)
            name = f"synthetic-{params_hash({**params, 'code': code})}"
        else:
            name = f"synthetic-{synth.domain}-{params_hash({**params, 'code': code})}"
        root = layer("01_raw") / name
        with hold(root.with_name(f".{name}.lock"), f"generating {root}"):  # runs started together make it once
            if (root / "meta" / "config.json").exists():
                log.info("synthetic corpus %s already generated", relative(root))
            else:
                generate_corpus(root, synth, overwrite=True)
        # the folder's name hashes what made it (generation is deterministic): unlike file times, it survives a
        # copy, a clone or a `dvc checkout`
        return _corpus_info(str(root), "synthetic", name.rsplit("-", 1)[-1])
    root = Path(path.removeprefix("file://")).expanduser().resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"corpus.path: {root} is not a folder (the layout of docs/data.md expected)")
    return _corpus_info(str(root), "user", tree_fingerprint(root))


def _local(path: str, what: str) -> Path:
    p = Path(str(path).removeprefix("file://")).expanduser().resolve()
    if not p.exists():
        raise FileNotFoundError(f"{what}: {p} does not exist")
    return p


def features_only_corpus(corpus: dict[str, Any]) -> dict[str, Any]:
    """A corpus whose videos are precomputed features: ``corpus.path`` holds the subtitles and annotations (no
    videos/), ``corpus.features`` a HERO video_db folder (or its LMDB folder) or a feature store of ours, and the
    optional ``corpus.video2dur`` the durations (docs/data.md, "Features-only corpora").

    The fingerprint covers the three: the corpus folder and the features folder by (path, size, mtime) of their
    files (an S3 corpus by its listing), the video2dur file by its bytes; paths are resolved here (relative ones
    against the working directory, the project root under ``kedro run``).

    Raises:
        ValueError: ``corpus.path`` is ``synthetic``. FileNotFoundError: a path that does not exist, naming its key.
    """
    path = str(corpus["path"])
    if path == "synthetic":
        raise ValueError("corpus.features: a features-only corpus needs corpus.path to be the folder of its subtitles "
                         "and annotations, not 'synthetic'")
    if is_remote(path):
        root, corpus_fp = remote_corpus(path)
    else:
        local = _local(path, "corpus.path")
        if not local.is_dir():
            raise FileNotFoundError(f"corpus.path: {local} is not a folder")
        root, corpus_fp = str(local), tree_fingerprint(local)
    features = _local(corpus["features"], "corpus.features")
    parts = {"corpus": corpus_fp, "features": tree_fingerprint(features)}
    video2dur = None
    if corpus.get("video2dur"):
        video2dur = _local(corpus["video2dur"], "corpus.video2dur")
        parts["video2dur"] = hashlib.sha256(video2dur.read_bytes()).hexdigest()
    info = _corpus_info(root, "features-only", params_hash(parts))
    return {**info, "features": relative(features), "video2dur": relative(video2dur) if video2dur else None}


def _corpus_info(path: str, source: str, fingerprint: str) -> dict[str, Any]:
    return {"path": relative(path), "source": source, "fingerprint": fingerprint}


def remote_corpus(uri: str) -> tuple[str, str]:
    """(normalised root URI, fingerprint) of a corpus under ``s3://bucket/prefix``.

    The fingerprint is sha256 (16 hex) over (relative key, size, ETag) of every object under the prefix: a
    replaced, added or removed object changes it, so the manifest is rebuilt; it costs one listing (1000 objects
    per request), no download. Credentials never enter it: the URI holds a bucket and a prefix only.

    Raises:
        FileNotFoundError: no object under the prefix, or no such bucket (naming the URI).
        PermissionError / StorageError: access denied or the listing failed (naming the URI).
    """
    from botocore.exceptions import BotoCoreError, ClientError

    storage = open_storage(uri)  # raises, naming the URI, when the prefix is empty or the bucket unreadable
    assert isinstance(storage, S3Storage)  # the only remote scheme (hero.storage.SCHEMES)
    start = f"{storage.prefix}/" if storage.prefix else ""
    h = hashlib.sha256()
    try:
        for page in storage.client.get_paginator("list_objects_v2").paginate(Bucket=storage.bucket, Prefix=start):
            for obj in page.get("Contents", []):
                h.update(f"{obj['Key'][len(start):]}\0{obj['Size']}\0{obj['ETag']}\n".encode())
    except (ClientError, BotoCoreError) as err:
        raise StorageError(f"{storage.root}: listing the corpus failed: {err}") from err
    fingerprint = h.hexdigest()[:16]
    log.info("corpus %s: fingerprint %s", storage.root, fingerprint)
    return storage.root, fingerprint


def build_manifest(corpus_info: dict[str, Any], corpus: dict[str, Any]) -> Ingestion:
    """Ask for the corpus's manifest (`pipelines.datasets.ManifestDataset` ingests it unless a manifest of the same
    key exists). A features-only corpus (``corpus_info["features"]``) is read by
    `hero.features.prebuilt.ingest_features_corpus`: its videos are the features' videos, with their clip counts and
    the hashes of their feature bytes.

    The key hashes the corpus's fingerprint, the reader settings, the corpus location as recorded (relative to
    the project when inside it) and the ingestion code.
    """
    cfg = from_dict(CorpusConfig, {**corpus.get("reader", {}), "path": resolve(corpus_info["path"])},
                    _path="corpus.reader")
    parts = {"corpus": corpus_info["fingerprint"], "reader": corpus.get("reader", {}), "path": corpus_info["path"],
             "code": code_fingerprint(INGEST_CODE)}
    features = corpus_info.get("features")
    if not features:
        return Ingestion(parts, lambda: ingest_corpus(cfg))
    from hero.features.prebuilt import ingest_features_corpus

    video2dur = corpus_info.get("video2dur")
    parts.update(features=features, video2dur=video2dur)
    return Ingestion(parts, lambda: ingest_features_corpus(cfg, resolve(features),
                                                           video2dur=resolve(video2dur) if video2dur else None))
