"""Clip feature extraction (PyAV decode -> registered extractors) and the content-addressed feature store."""

from hero.features.appearance import EfficientNetConfig, EfficientNetMotion, TorchImageExtractor
from hero.features.decode import ClipFrames, DecodeSpec, decode_clips
from hero.features.extract import ExtractConfig, assign_videos, extract_features, run_extraction
from hero.features.lmdb_import import VideoDb, import_video_db, write_video_db
from hero.features.prebuilt import import_features, ingest_features_corpus, open_features
from hero.features.registry import Extractor, available_extractors, build_extractor, register_extractor, weights_sha256
from hero.features.store import FeatureStore, StoreWriter, check_features, consolidate, entry_key, imported_key

__all__ = [
    "ClipFrames", "DecodeSpec", "EfficientNetConfig", "EfficientNetMotion", "ExtractConfig", "Extractor", "FeatureStore",
    "StoreWriter", "TorchImageExtractor", "VideoDb", "assign_videos", "available_extractors", "build_extractor",
    "check_features", "consolidate", "decode_clips", "entry_key", "extract_features", "import_features",
    "import_video_db", "imported_key", "ingest_features_corpus", "open_features", "register_extractor",
    "run_extraction", "weights_sha256", "write_video_db",
]
