"""Raw corpora (the layout in docs/formats.md, read through `hero.storage`): text decoding, subtitles, annotations
(JSONL and How2R / How2QA CSV), subtitle->clip alignment and the manifest."""

from hero.corpus.alignment import Alignment, align_subtitles, count_clips
from hero.corpus.annotations import SPLITS, TASKS, parse_annotations
from hero.corpus.durations import parse_video2dur, read_video2dur
from hero.corpus.encoding import decode_text
from hero.corpus.errors import NOTES, RULES, CorpusError, IngestReport
from hero.corpus.how2 import CSV_TASKS, clip_name, how2qa_line, how2r_line, parse_how2_csv
from hero.corpus.ingest import CorpusConfig, VideoInfo, ingest_corpus, write_manifest
from hero.corpus.manifest import Manifest, VideoEntry
from hero.corpus.subtitles import Subtitle, parse_subtitle_text, parse_subtitles_jsonl, validate_subtitles

__all__ = [
    "CSV_TASKS", "NOTES", "RULES", "SPLITS", "TASKS", "Alignment", "CorpusConfig", "CorpusError", "IngestReport",
    "Manifest", "Subtitle", "VideoEntry", "VideoInfo", "align_subtitles", "clip_name",
    "count_clips", "decode_text", "how2qa_line", "how2r_line", "ingest_corpus", "parse_annotations", "parse_how2_csv",
    "parse_subtitle_text", "parse_subtitles_jsonl", "parse_video2dur", "read_video2dur", "validate_subtitles",
    "write_manifest",
]
