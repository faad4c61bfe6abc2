"""Corpus nodes: a raw corpus (synthetic or the user's) -> a validated manifest."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hero.config import from_dict
from hero.corpus.ingest import CorpusConfig, ingest_corpus
from hero.corpus.manifest import Manifest
from pipelines import tracking
from pipelines.fingerprint import params_hash, tree_fingerprint
from pipelines.paths import layer

log = logging.getLogger(__name__)


def prepare_corpus(corpus: dict[str, Any]) -> dict[str, Any]:
    """Locate the raw corpus; generate the synthetic one on first use (deterministic by seed).

    Args:
        corpus: ``params:corpus`` (``path``: ``synthetic`` or a folder; ``synthetic``: hero.synth.SynthConfig
            fields, e.g. size, seed and domain ``tv`` | ``instructional``).

    Returns:
        ``{"path", "source", "fingerprint"}`` for the ingestion node.
    """
    from hero.synth.generate import SynthConfig, generate_corpus

    if corpus["path"] == "synthetic":
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
        root = Path(corpus["path"]).expanduser().resolve()
        if not root.is_dir():
            raise FileNotFoundError(f"corpus.path: {root} is not a folder (DESIGN.md §4 layout expected)")
        source = "user"
    info = {"path": str(root), "source": source, "fingerprint": tree_fingerprint(root)}
    tracking.set_tags({"git_commit": tracking.git_commit(), "corpus_source": source, "corpus_fingerprint": info["fingerprint"]})
    return info


def build_manifest(corpus_info: dict[str, Any], corpus: dict[str, Any]) -> dict[str, Any]:
    """Ingest the corpus into ``data/02_intermediate/manifest-<hash>.json`` unless an identical one exists.

    Returns:
        ``{"path", "key", "videos", "examples", "report"}``: the manifest's location and a summary.
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
    return {"path": str(path), "key": key, "videos": len(manifest.videos), "examples": examples,
            "report": manifest.report}
