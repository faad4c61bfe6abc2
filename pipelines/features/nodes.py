"""Features node: manifest -> per-clip features in the content-addressed store (a re-run extracts nothing new); a
features-only corpus's features are imported, not extracted. The store's lock and record are
`pipelines.datasets.FeatureStoreDataset`'s."""

from __future__ import annotations

from typing import Any

from hero.config import from_dict
from hero.features.extract import ExtractConfig, run_extraction
from hero.features.prebuilt import import_features
from pipelines.datasets import Extraction, open_manifest


def extract_features(manifest_info: dict[str, Any], features: dict[str, Any]) -> Extraction:
    """Ask for features of every video of the manifest: extracted with ``params:features.extract``
    (hero.features.ExtractConfig fields), or, for a features-only corpus, imported from its features source
    (`hero.features.prebuilt.import_features`; ``params:features`` is not used). Videos the store holds under the
    same content key are not extracted again.
    """
    cfg = from_dict(ExtractConfig, features.get("extract", {}), _path="features.extract")
    manifest = open_manifest(manifest_info)
    if manifest.features:
        return Extraction(tuple(manifest.videos), lambda store_dir: import_features(manifest, store_dir))
    return Extraction(tuple(manifest.videos), lambda store_dir: run_extraction(manifest, store_dir, cfg))
