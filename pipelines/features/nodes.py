"""Features node: manifest -> per-clip features in the content-addressed store (a re-run extracts nothing new); a
features-only corpus's features are imported, not extracted."""

from __future__ import annotations

import logging
from typing import Any

from hero.config import from_dict
from hero.corpus.manifest import Manifest
from hero.features.extract import ExtractConfig, run_extraction
from hero.features.prebuilt import import_features
from hero.features.store import FeatureStore
from hero.storage.lock import hold
from pipelines.fingerprint import params_hash
from pipelines.paths import layer

log = logging.getLogger(__name__)


def extract_features(manifest_info: dict[str, Any], features: dict[str, Any]) -> dict[str, Any]:
    """Extract (or find cached) features for every video of the manifest; for a features-only corpus, import them
    from its features source instead (`hero.features.prebuilt.import_features`; ``params:features`` is not used).

    Args:
        manifest_info: from the corpus pipeline (``path`` of the manifest JSON).
        features: ``params:features`` (``extract``: hero.features.ExtractConfig fields).

    Returns:
        ``{"path", "dim", "videos", "key", "stats"}``: the store, its feature dimension (the model's
        feature_dim comes from here), what this run extracted (or imported) versus found cached, and ``key``, a
        hash of the videos' content keys in the store.
    """
    cfg = from_dict(ExtractConfig, features.get("extract", {}), _path="features.extract")
    manifest = Manifest.load(manifest_info["path"])
    store_dir = layer("03_primary") / "features"
    with hold(store_dir.with_name(".features.lock"), f"writing {store_dir}"):  # one writer; the next finds it cached
        if manifest.features:
            stats = import_features(manifest, store_dir)
            stats["extracted"] = 0
        else:
            stats = run_extraction(manifest, store_dir, cfg)
    store = FeatureStore(store_dir)
    dims = {int(store.entry(v)["dim"]) for v in manifest.videos if v in store}
    if len(dims) != 1:
        raise ValueError(f"{store_dir}: expected one feature dimension for the manifest's videos, found {sorted(dims)}")
    keys = sorted(store.entry(v)["key"] for v in manifest.videos if v in store)
    log.info("features: %d extracted, %d imported, %d cached, %.1f clips/s", stats["extracted"], stats.get("imported", 0),
             stats["cached"], stats["clips_per_s"])
    return {"path": str(store_dir), "dim": dims.pop(), "videos": len(keys), "key": params_hash(keys),
            "stats": {k: v for k, v in stats.items() if k != "per_rank"}}
