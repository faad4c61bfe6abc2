"""Subtitle parsing (SRT / WebVTT through pysubs2, and the TVR/TVQA `subtitles.jsonl`) and validation."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass

from hero.corpus.errors import CorpusError, IngestReport, OnError

_TIMING = re.compile(r"-->")
_TAGS = re.compile(r"<[^>]+>")


@dataclass(frozen=True)
class Subtitle:
    """One subtitle: text and times in seconds; ``line`` is where it starts in its source file (1-based)."""

    text: str
    start: float
    end: float
    line: int | None = None


def _clean(text: str) -> str:
    return " ".join(_TAGS.sub("", text).split())


def parse_subtitle_text(data: str, file: str, fmt: str) -> list[Subtitle]:
    """Parse an SRT or WebVTT document with pysubs2, keeping the file's order and each entry's line number.

    Raises:
        CorpusError: rule ``subtitle.unparsable`` when pysubs2 rejects the document.
    """
    import pysubs2

    try:
        doc = pysubs2.SSAFile.from_string(data, format_=fmt)
    except Exception as err:  # pysubs2 raises several types for malformed input
        raise CorpusError(file, "subtitle.unparsable", f"{type(err).__name__}: {err}") from None
    events = [e for e in doc if e.type == "Dialogue"]
    # pysubs2 keeps no line numbers: the k-th timing line ("-->") of the file is the k-th entry.
    timing_lines = [i + 1 for i, ln in enumerate(data.splitlines()) if _TIMING.search(ln)]
    lines = timing_lines if len(timing_lines) == len(events) else [None] * len(events)
    return [Subtitle(_clean(e.plaintext), e.start / 1000.0, e.end / 1000.0, ln) for e, ln in zip(events, lines)]


def parse_subtitles_jsonl(data: str, file: str, report: IngestReport, on_error: OnError) -> Iterator[tuple[str, list[Subtitle], int]]:
    """Yield ``(vid_name, subtitles, line_no)`` for each line of a TVR/TVQA-style subtitles.jsonl:
    ``{"vid_name": str, "sub": [{"text": str, "start": float, "end": float}, ...]}``."""
    for line_no, raw in enumerate(data.splitlines(), 1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
            vid, subs = obj["vid_name"], obj["sub"]
            if not isinstance(vid, str) or not isinstance(subs, list):
                raise TypeError("vid_name must be a string and sub a list")
            parsed = []
            for s in subs:
                start, end = float(s["start"]), float(s["end"])
                if not (math.isfinite(start) and math.isfinite(end)):
                    raise ValueError("non-finite time")
                parsed.append(Subtitle(_clean(str(s["text"])), start, end, line_no))
        except (ValueError, KeyError, TypeError) as err:
            report.handle(CorpusError(file, "subtitle.unparsable", f"{type(err).__name__}: {err}", line_no), on_error)
            continue
        yield vid, parsed, line_no


def validate_subtitles(subs: list[Subtitle], file: str, report: IngestReport, on_error: OnError) -> list[Subtitle]:
    """Check each subtitle against the previous kept one; return the kept ones (all of them, or an error).

    Rules: ``subtitle.end_before_start`` (end < start), ``subtitle.unsorted`` (start before the previous start),
    ``subtitle.overlap`` (start before the previous end). With on_error="skip" the offending subtitle is dropped.
    """
    kept: list[Subtitle] = []
    for k, s in enumerate(subs, 1):
        where = s.line if s.line is not None else None
        label = f"subtitle {k}" + (f" ({s.start:.3f}-{s.end:.3f} s)")
        if s.end < s.start:
            report.handle(CorpusError(file, "subtitle.end_before_start", f"{label} ends before it starts", where), on_error)
            continue
        if kept and s.start < kept[-1].start:
            report.handle(CorpusError(file, "subtitle.unsorted",
                                      f"{label} starts before the previous one ({kept[-1].start:.3f} s)", where), on_error)
            continue
        if kept and s.start < kept[-1].end:
            report.handle(CorpusError(file, "subtitle.overlap",
                                      f"{label} starts before the previous one ends ({kept[-1].end:.3f} s)", where), on_error)
            continue
        kept.append(s)
    return kept
