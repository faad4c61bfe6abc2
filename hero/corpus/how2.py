"""The How2R and How2QA CSV formats (docs/hero-fidelity.md d.4), read into the same normalized examples as TVR and TVQA.

Both datasets annotate 60-second clips cut from longer HowTo100M videos, with times in seconds of the long video:

  how2r   ``video_id,[clip_st:clip_ed],[st:ed],query``                          (no header)
  how2qa  ``video_id,[st:ed],wrong_1,wrong_2,wrong_3,question,correct_answer``  (no header)

A corpus holds the clips as videos named ``<video_id>_<clip_st>_<clip_ed>`` (`clip_name`). A How2R line names its
clip; a How2QA line names only its span, and its clip is the corpus clip of ``video_id`` whose window holds the
span's start. Each line becomes an example on that clip with the span made relative to the clip:

  how2r   {"id", "vid_name", "ts", "line", "desc", "type": None}                 (the tvr form)
  how2qa  {"id", "vid_name", "ts", "line", "q", "answers" (4), "answer_idx"}   (the tvqa form, 4 answers)

``id`` is the line number. The correct How2QA answer is placed at a position drawn from a hash of the line's
content (stable across runs), never always last: a model must not learn "the last answer is right".
"""

from __future__ import annotations

import csv
import io
import math
import re
import zlib
from collections.abc import Mapping
from typing import Any

from hero.corpus.errors import CorpusError, IngestReport, OnError

CSV_TASKS = ("how2r", "how2qa")
COLUMNS = {"how2r": ("video_id", "[clip_st:clip_ed]", "[st:ed]", "query"),
           "how2qa": ("video_id", "[st:ed]", "wrong_1", "wrong_2", "wrong_3", "question", "correct_answer")}
_CLIP_NAME = re.compile(r"^(?P<vid>.+)_(?P<st>\d+(?:\.\d+)?)_(?P<ed>\d+(?:\.\d+)?)$")
_SPAN = re.compile(r"^\[\s*([^:\]]*?)\s*:\s*([^:\]]*?)\s*\]$")


def _num(x: float) -> str:
    """180.0 -> '180', 134.15 -> '134.15' (at most 3 decimals)."""
    return f"{x:.3f}".rstrip("0").rstrip(".")


def clip_name(video_id: str, start: float, end: float) -> str:
    """The corpus name of the clip ``[start, end]`` (seconds) of ``video_id``: ``<video_id>_<start>_<end>``."""
    return f"{video_id}_{_num(start)}_{_num(end)}"


class ClipIndex:
    """The corpus videos named like clips, by source video: resolves a CSV line to its clip video."""

    def __init__(self, names: list[str]) -> None:
        self.clips: dict[str, list[tuple[float, float, str]]] = {}
        for name in names:
            m = _CLIP_NAME.match(name)
            if m:
                self.clips.setdefault(m["vid"], []).append((float(m["st"]), float(m["ed"]), name))
        for cl in self.clips.values():
            cl.sort()

    def named(self, video_id: str, start: float, end: float) -> str | None:
        """The clip of ``video_id`` whose window is exactly ``[start, end]``."""
        return next((n for s, e, n in self.clips.get(video_id, []) if math.isclose(s, start, abs_tol=1e-3)
                     and math.isclose(e, end, abs_tol=1e-3)), None)

    def holding(self, video_id: str, t: float) -> tuple[float, str] | None:
        """(clip start, name) of the clip of ``video_id`` whose window ``[start, end)`` holds ``t`` (the latest
        starting one if windows overlap)."""
        hits = [(s, n) for s, e, n in self.clips.get(video_id, []) if s <= t < e]
        return hits[-1] if hits else None


class _Bad(Exception):
    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule


def _span(raw: str, what: str) -> tuple[float, float]:
    """``'[12.5:20]'`` -> (12.5, 20.0); start must be before end."""
    m = _SPAN.match(raw.strip())
    if not m:
        raise _Bad("annotation.bad_value", f"{what} {raw!r} is not [start:end]")
    try:
        st, ed = float(m[1]), float(m[2])
    except ValueError:
        raise _Bad("annotation.bad_value", f"{what} {raw!r}: times must be numbers of seconds") from None
    if not (math.isfinite(st) and math.isfinite(ed)) or st < 0:
        raise _Bad("annotation.bad_value", f"{what} {raw!r}: times must be finite and >= 0")
    if st >= ed:
        raise _Bad("annotation.bad_value", f"{what} {raw!r} does not start before it ends")
    return st, ed


def _text(raw: str, what: str) -> str:
    if not raw.strip():
        raise _Bad("annotation.bad_value", f"{what} is empty")
    return raw.strip()


def _relative(st: float, ed: float, clip_start: float, duration: float, clip: str, tolerance: float) -> list[float]:
    """The span in clip time, cut to ``[0, duration]``; more than ``tolerance`` s outside the clip is an error."""
    rs, re_ = st - clip_start, ed - clip_start
    if rs < -tolerance or re_ > duration + tolerance or rs >= duration:
        raise _Bad("annotation.span_outside_clip",
                   f"span [{_num(st)}:{_num(ed)}] is [{_num(rs)}:{_num(re_)}] in clip {clip!r}, which lasts "
                   f"{duration:.2f} s (tolerance {tolerance:g} s)")
    return [round(max(rs, 0.0), 3), round(min(re_, duration), 3)]


def _answer_position(row: list[str]) -> int:
    return zlib.crc32("\x1f".join(row).encode("utf-8")) % 4


def parse_how2_csv(
    data: str,
    file: str,
    task: str,
    durations: Mapping[str, float],
    report: IngestReport,
    on_error: OnError,
    tolerance: float = 2.0,
    skipped_videos: frozenset[str] = frozenset(),
) -> list[dict[str, Any]]:
    """Parse one ``how2r_<split>.csv`` / ``how2qa_<split>.csv`` file into normalized examples (module docstring).

    Args:
        durations: vid_name -> duration (s) of every usable corpus video; clips are found among these names.
        tolerance: seconds a span may run past its clip (the public files overrun 60-s clips by up to ~1.7 s);
            the overrun is cut off.
        skipped_videos: videos ingestion skipped as bad: their lines are dropped and counted as the note
            ``annotation.of_skipped_video``.

    Each bad line is reported as ``FILE:LINE: [rule] message`` (`CorpusError`): a wrong column count or broken
    quoting (``annotation.bad_csv``), a time that is not a number, a span that does not start before it ends or
    an empty text (``annotation.bad_value``), a clip that is not in the corpus (``annotation.missing_video``), a
    span outside its clip (``annotation.span_outside_clip``).
    """
    if task not in CSV_TASKS:
        raise ValueError(f"unknown CSV task {task!r} (known: {', '.join(CSV_TASKS)})")
    index = ClipIndex([*durations, *skipped_videos])
    out: list[dict[str, Any]] = []
    for line_no, raw in enumerate(data.splitlines(), 1):
        if not raw.strip():
            continue
        try:
            name, clip_start, span, fields = _resolve(task, raw, index)
            if name in skipped_videos:
                report.note("annotation.of_skipped_video")
                continue
            ts = _relative(*span, clip_start, durations[name], name, tolerance)
        except _Bad as bad:
            report.handle(CorpusError(file, bad.rule, str(bad), line_no), on_error)
            continue
        out.append({"id": line_no, "vid_name": name, "ts": ts, "line": line_no, **fields})
    return out


_Resolved = tuple[str, float, tuple[float, float], dict[str, Any]]
"""(clip video, clip start in the source video, span in the source video, the task fields)."""


def _resolve(task: str, raw: str, index: ClipIndex) -> _Resolved:
    """One CSV line -> its clip and fields (``_Bad`` on a broken line)."""
    try:
        row = next(csv.reader([raw], strict=True))
    except csv.Error as err:
        raise _Bad("annotation.bad_csv", f"not a CSV line: {err}") from None
    if len(row) != len(COLUMNS[task]):
        raise _Bad("annotation.bad_csv",
                   f"{task} lines have {len(COLUMNS[task])} columns ({','.join(COLUMNS[task])}), got {len(row)}")
    return (_how2r if task == "how2r" else _how2qa)(row, index)


def _how2r(row: list[str], index: ClipIndex) -> _Resolved:
    video_id = _text(row[0], "video_id")
    cs, ce = _span(row[1], "clip")
    span = _span(row[2], "span")
    desc = _text(row[3], "query")
    name = index.named(video_id, cs, ce)
    if name is None:
        raise _Bad("annotation.missing_video",
                   f"clip {clip_name(video_id, cs, ce)!r} (video {video_id!r}, [{_num(cs)}:{_num(ce)}]) is not a video "
                   "of this corpus")
    return name, cs, span, {"desc": desc, "type": None}


def _how2qa(row: list[str], index: ClipIndex) -> _Resolved:
    video_id = _text(row[0], "video_id")
    span = _span(row[1], "span")
    wrong = [_text(a, f"wrong_{i}") for i, a in enumerate(row[2:5], 1)]
    q, correct = _text(row[5], "question"), _text(row[6], "correct_answer")
    hit = index.holding(video_id, span[0])
    if hit is None:
        known = ", ".join(f"[{_num(s)}:{_num(e)}]" for s, e, _ in index.clips.get(video_id, [])) or "none"
        raise _Bad("annotation.missing_video",
                   f"no clip of video {video_id!r} holds {_num(span[0])} s (its clips in this corpus: {known})")
    idx = _answer_position(row)
    return hit[1], hit[0], span, {"q": q, "answers": wrong[:idx] + [correct] + wrong[idx:], "answer_idx": idx}


def _csv_line(fields: list[str]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(fields)
    return buf.getvalue()


def how2r_line(video_id: str, clip: tuple[float, float], span: tuple[float, float], query: str) -> str:
    """One How2R CSV line (with its newline); ``clip`` and ``span`` in seconds of the source video."""
    return _csv_line([video_id, f"[{_num(clip[0])}:{_num(clip[1])}]", f"[{_num(span[0])}:{_num(span[1])}]", query])


def how2qa_line(video_id: str, span: tuple[float, float], wrong: list[str], question: str, correct: str) -> str:
    """One How2QA CSV line (with its newline): three wrong answers, the question, the correct answer last."""
    if len(wrong) != 3:
        raise ValueError(f"how2qa needs 3 wrong answers, got {len(wrong)}")
    return _csv_line([video_id, f"[{_num(span[0])}:{_num(span[1])}]", *wrong, question, correct])
