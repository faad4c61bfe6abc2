"""Corpus nodes: a raw corpus (synthetic, the user's folder or the user's ``s3://`` prefix) -> a validated manifest."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

from hero.config import from_dict
from hero.corpus.ingest import CorpusConfig, ingest_corpus
from hero.corpus.manifest import Manifest
from hero.storage import StorageError, is_remote, open_storage
from hero.storage.s3 import S3Storage
from pipelines import tracking
from pipelines.fingerprint import params_hash, tree_fingerprint
from pipelines.paths import layer

log = logging.getLogger(__name__)


def prepare_corpus(corpus: dict[str, Any]) -> dict[str, Any]:
    """Locate the raw corpus; generate the synthetic one on first use (deterministic by seed).

    Args:
        corpus: ``params:corpus`` (``path``: ``synthetic``, a folder or an ``s3://bucket/prefix`` URI whose
            credentials and endpoint come from the AWS environment, docs/s3.md; ``synthetic``: hero.synth.SynthConfig
            fields, e.g. size, seed and domain ``tv`` | ``instructional``).

    Returns:
        ``{"path", "source", "fingerprint"}`` for the ingestion node; ``path`` is the folder or the URI.
    """
    from hero.synth.generate import SynthConfig, generate_corpus

    path = str(corpus["path"])
    if is_remote(path):
        root, fingerprint = remote_corpus(path)
        return _corpus_info(root, "user", fingerprint)
    if path == "synthetic":
        params = dict(corpus.get("synthetic", {}))
        synth = from_dict(SynthConfig, params, _path="corpus.synthetic")
        if synth.domain == "tv":  # the folder a tv corpus had before domains existed: no regeneration
            params.pop("domain", None)
            name = f"synthetic-{params_hash(params)}"
        else:
            name = f"synthetic-{synth.domain}-{params_hash(params)}"
        root = layer("01_raw") / name
        if (root / "meta" / "config.json").exists():
            log.info("synthetic corpus %s already generated", root)
        else:
            generate_corpus(root, synth, overwrite=True)
        source = "synthetic"
    else:
        root = Path(path.removeprefix("file://")).expanduser().resolve()
        if not root.is_dir():
            raise FileNotFoundError(f"corpus.path: {root} is not a folder (DESIGN.md §4 layout expected)")
        source = "user"
    return _corpus_info(str(root), source, tree_fingerprint(root))


def _corpus_info(path: str, source: str, fingerprint: str) -> dict[str, Any]:
    tracking.set_tags({"git_commit": tracking.git_commit(), "corpus_source": source, "corpus_fingerprint": fingerprint})
    return {"path": path, "source": source, "fingerprint": fingerprint}


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


def build_manifest(corpus_info: dict[str, Any], corpus: dict[str, Any]) -> dict[str, Any]:
    """Ingest the corpus into ``data/02_intermediate/manifest-<hash>.json`` unless an identical one exists.

    Returns:
        ``{"path", "key", "root", "videos", "examples", "report"}``: the manifest's location, the corpus it
        describes (a folder or an ``s3://`` URI) and a summary.
    """
    cfg = from_dict(CorpusConfig, {**corpus.get("reader", {}), "path": corpus_info["path"]}, _path="corpus.reader")
    key = params_hash({"corpus": corpus_info["fingerprint"], "reader": corpus.get("reader", {}), "path": corpus_info["path"]})
    path = layer("02_intermediate") / f"manifest-{key}.json"
    if path.exists():
        log.info("manifest %s is up to date", path)
        manifest = Manifest.load(path)
    else:
        manifest = ingest_corpus(cfg)
        manifest.save(path)
    examples = {f"{t}/{s}": len(v) for t, splits in manifest.tasks.items() for s, v in splits.items()}
    return {"path": str(path), "key": key, "root": manifest.root, "videos": len(manifest.videos), "examples": examples,
            "report": manifest.report}
