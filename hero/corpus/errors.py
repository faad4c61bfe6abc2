"""Bad-input errors and the ingestion report (docs/formats.md: every error names the file, the line and the rule)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Literal

logger = logging.getLogger(__name__)

OnError = Literal["raise", "skip"]

RULES = {
    "video.undecodable": "the video does not open or decode with PyAV",
    "video.duplicate_name": "two videos share one vid_name",
    "subtitle.unparsable": "the subtitle file or line does not parse",
    "subtitle.end_before_start": "a subtitle ends before it starts",
    "subtitle.unsorted": "a subtitle starts before the previous one",
    "subtitle.overlap": "a subtitle starts before the previous one ends",
    "subtitle.missing_video": "subtitles name a video that is not in the corpus",
    "annotation.bad_json": "an annotation line is not a JSON object",
    "annotation.bad_csv": "an annotation CSV line does not parse or has the wrong number of columns",
    "annotation.missing_key": "an annotation line lacks a required key",
    "annotation.bad_value": "an annotation value has the wrong type or range",
    "annotation.missing_video": "an annotation names a video that is not in the corpus",
    "annotation.ts_outside_video": "an annotation's ts lies outside the video",
    "annotation.span_outside_clip": "a How2R/How2QA span lies outside its clip",
    "annotation.duplicate_id": "two annotation lines of one file share an id",
    "features.non_finite": "a feature array holds NaN or inf",
    "features.wrong_dim": "a feature array has the wrong shape or dimension",
    "features.missing": "a video has no feature entry",
    "features.clip_len_mismatch": "the features' clip length is not corpus.reader.clip_len",
    "features.longer_than_video": "a video's features hold more clips than its duration covers (one clip of slack)",
    "features.no_regions": "region features were asked for (model.regions) but the feature store holds none for a video",
    "features.changed": "the features source no longer holds the bytes the manifest recorded (re-run the corpus stage)",
    "video2dur.bad_file": "the video2dur file is not JSON of {split: {vid_name: [duration, index]}} or {vid_name: duration}",
    "video2dur.bad_value": "a video2dur duration is not a finite number > 0, or two splits give one video two durations",
    "text.bad_encoding": "an annotation or subtitle file holds bytes its encoding (corpus.reader.encoding) rejects",
}
"""Every rule a corpus or feature input can break, with what it means."""

NOTES = {
    "subtitle.after_video_end": "subtitles starting after the video's end, dropped (HERO d.3)",
    "annotation.of_skipped_video": "annotation lines of a video that was skipped as bad, dropped",
    "features.duration_from_clips": "features-only videos missing from the video2dur file: duration = clips x clip_len",
    "annotation.ts_nan": 'lines with ts "NaN-NaN" (TVQA test release), kept with no timestamp',
    "annotation.no_type": "TVR lines without a query type, kept with type None (no per-type metrics)",
    "annotation.unlabeled": "test lines without their label, kept for prediction only (scoring refuses them)",
    "text.cp1252_fallback": "files that are not UTF-8, read as cp1252 (corpus.reader.encoding: auto)",
    "text.replacement_char": "lines whose text holds U+FFFD as written in the file, kept",
}
"""Every note: a count of normal adjustments that are not errors, with what it counts."""


class CorpusError(ValueError):
    """Bad input. ``str(err)`` reads ``FILE:LINE: [rule] message`` (``FILE: [rule] ...`` when no line applies)."""

    def __init__(self, file: str, rule: str, message: str, line: int | None = None) -> None:
        if rule not in RULES:
            raise KeyError(f"unknown corpus rule {rule!r}")
        self.file, self.rule, self.line, self.message = str(file), rule, line, message
        where = f"{file}:{line}" if line is not None else str(file)
        super().__init__(f"{where}: [{rule}] {message}")


@dataclass
class IngestReport:
    """What ingestion skipped or dropped and why: counts per rule plus the first messages."""

    skipped: dict[str, int] = field(default_factory=dict)
    """Rule -> number of items (videos, subtitles, annotation lines) skipped because of it."""
    notes: dict[str, int] = field(default_factory=dict)
    """Counts of normal, non-error adjustments (e.g. subtitles starting after the video end, dropped per HERO d.3)."""
    messages: list[str] = field(default_factory=list)
    max_messages: int = 200

    def handle(self, err: CorpusError, on_error: OnError) -> None:
        """Raise ``err`` (on_error="raise") or log it as a warning and count it (on_error="skip")."""
        if on_error == "raise":
            raise err
        logger.warning("skipped: %s", err)
        self.skipped[err.rule] = self.skipped.get(err.rule, 0) + 1
        if len(self.messages) < self.max_messages:
            self.messages.append(str(err))

    def note(self, key: str, n: int = 1) -> None:
        """Add ``n`` to the count of note ``key`` (one of `NOTES`)."""
        if key not in NOTES:
            raise KeyError(f"unknown corpus note {key!r}")
        self.notes[key] = self.notes.get(key, 0) + n

    def to_dict(self) -> dict:
        return {"skipped": dict(sorted(self.skipped.items())), "notes": dict(sorted(self.notes.items())),
                "total_skipped": sum(self.skipped.values()), "messages": list(self.messages)}
