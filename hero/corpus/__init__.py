"""Raw corpora (DESIGN.md §4): storage, subtitles, annotations, subtitle->clip alignment and the manifest."""

from hero.corpus.alignment import Alignment, align_subtitles, count_clips
from hero.corpus.annotations import SPLITS, TASKS, parse_annotations
from hero.corpus.errors import RULES, CorpusError, IngestReport
from hero.corpus.ingest import CorpusConfig, ingest_corpus, write_manifest
from hero.corpus.manifest import Manifest, VideoEntry
from hero.corpus.storage import LocalStorage, Storage, open_storage
from hero.corpus.subtitles import Subtitle, parse_subtitle_text, parse_subtitles_jsonl, validate_subtitles

__all__ = [
    "RULES", "SPLITS", "TASKS", "Alignment", "CorpusConfig", "CorpusError", "IngestReport", "LocalStorage", "Manifest",
    "Storage", "Subtitle", "VideoEntry", "align_subtitles", "count_clips", "ingest_corpus", "open_storage",
    "parse_annotations", "parse_subtitle_text", "parse_subtitles_jsonl", "validate_subtitles", "write_manifest",
]
