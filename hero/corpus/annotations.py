"""The five JSONL annotation formats of docs/formats.md, parsed, checked and normalized (the How2R / How2QA CSV
formats, normalized to the tvr / tvqa forms, live in hero.corpus.how2).

Normalized example (one dict per line): ``{"id", "vid_name", "ts", "line", ...task fields}`` with
``ts = [start, end]`` seconds or None, and the task fields
  tvr:       desc, type ("v" | "t" | "vt" | None)
  tvqa:      q, answers (5 strings), answer_idx (None when unlabeled)
  violin:    desc, label (1 entailed | 0 contradicted | None)
  tvc:       descs ([{"desc", "desc_id", "type"}]; [] when unlabeled)
  retrieval: desc

Quirks of the public release files, and their rules (each kept line is counted as a note of the report):
  ts "NaN-NaN" (3 lines of TVQA's test release): no timestamp, ts None; the example is kept (``annotation.ts_nan``)
      except for tvc, whose example is its moment (``annotation.bad_value``).
  a TVR line without "type" (every line of TVR's test release): type None (``annotation.no_type``).
  a test line without its label (TVQA, TVR, TVC test releases): kept for prediction only (``annotation.unlabeled``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from typing import Any

from hero.corpus.errors import CorpusError, IngestReport, OnError
from hero.corpus.how2 import CSV_TASKS

FORMS = ("tvr", "tvqa", "violin", "tvc", "retrieval")
"""The JSONL annotation forms (docs/formats.md): what a line holds and how it is normalized."""
JSONL_TASKS = FORMS
TASKS = (*JSONL_TASKS, *CSV_TASKS)
"""The datasets a corpus reads by default: ``<dataset>_<split>.jsonl``, or ``.csv`` for How2R / How2QA."""
SPLITS = ("train", "val", "test")

_FORM_OF: dict[str, str] = {**{f: f for f in FORMS}, "didemo": "tvr", "msrvtt": "retrieval",
                            "how2r": "tvr", "how2qa": "tvqa"}
"""Dataset (annotation file prefix) -> the form its normalized examples take (How2R / How2QA: read from CSV,
normalized to the tvr / tvqa forms)."""


def register_dataset(dataset: str, form: str) -> None:
    """Make ``<dataset>_<split>.jsonl`` readable as annotations of ``form`` (a task registering its datasets)."""
    if form not in FORMS:
        raise ValueError(f"dataset {dataset!r}: unknown annotation form {form!r} (known: {', '.join(FORMS)})")
    if _FORM_OF.get(dataset, form) != form:
        raise ValueError(f"dataset {dataset!r} is already read as {_FORM_OF[dataset]!r}, not {form!r}")
    _FORM_OF[dataset] = form


def form_of(dataset: str) -> str:
    """The annotation form of ``dataset``'s examples; ValueError naming the known datasets otherwise."""
    if dataset not in _FORM_OF:
        raise ValueError(f"unknown dataset {dataset!r} (known: {', '.join(known_datasets())})")
    return _FORM_OF[dataset]


def known_datasets() -> tuple[str, ...]:
    """Every dataset a corpus can annotate (the built-in ones and those tasks registered)."""
    return tuple(_FORM_OF)

# Keys every line needs, and keys every labeled (non-test) line needs as well.
_ALWAYS = {
    "tvr": ("desc", "desc_id"),
    "tvqa": ("qid", "q", "a0", "a1", "a2", "a3", "a4", "vid_name", "ts"),
    "violin": ("desc_id", "desc", "vid_name"),
    "tvc": ("vid_name", "ts", "clip_id"),
    "retrieval": ("desc_id", "desc"),
}
_LABELED = {
    "tvr": ("vid_name", "ts"),
    "tvqa": ("answer_idx",),
    "violin": ("label",),
    "tvc": ("descs",),
    "retrieval": ("vid_name",),
}
_ID_KEY = {"tvr": "desc_id", "tvqa": "qid", "violin": "desc_id", "tvc": "clip_id", "retrieval": "desc_id"}
_NO_TS = "nan-nan"
"""A ts that means "no timestamp" (TVQA's test release writes "NaN-NaN"), compared case-blind."""


def _unlabeled(task: str, ex: Mapping[str, Any]) -> bool:
    """Whether a normalized example lacks its label (a test line: predicted, never scored)."""
    if task == "tvr":
        return ex["vid_name"] is None or ex["ts"] is None
    if task == "tvqa":
        return ex["answer_idx"] is None
    if task == "violin":
        return ex["label"] is None
    if task == "tvc":
        return not ex["descs"]
    return ex["vid_name"] is None


class _Bad(Exception):
    """A value problem inside one line: (rule, message)."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule


def _text(obj: Mapping, key: str) -> str:
    v = obj[key]
    if not isinstance(v, str):
        raise _Bad("annotation.bad_value", f"{key} must be a string, got {type(v).__name__}")
    return v


def _parse_ts(raw: Any) -> list[float]:
    """``[st, ed]`` (TVR, TVC, VIOLIN) or ``"st-ed"`` (TVQA) -> [st, ed]."""
    try:
        if isinstance(raw, str):
            st, ed = raw.split("-")
            pair = [float(st), float(ed)]
        else:
            pair = [float(x) for x in raw]
    except (ValueError, TypeError):
        raise _Bad("annotation.bad_value", f"ts {raw!r} is neither [st, ed] nor 'st-ed'") from None
    if len(pair) != 2 or not all(math.isfinite(x) for x in pair):
        raise _Bad("annotation.bad_value", f"ts {raw!r} must hold two finite numbers")
    if pair[1] < pair[0]:
        raise _Bad("annotation.bad_value", f"ts {raw!r} ends before it starts")
    return pair


def _fields(task: str, obj: Mapping) -> dict[str, Any]:
    if task == "tvr":
        typ = obj.get("type")
        if typ not in (None, "v", "t", "vt"):
            raise _Bad("annotation.bad_value", f"type must be v, t or vt, got {typ!r}")
        return {"desc": _text(obj, "desc"), "type": typ}
    if task == "tvqa":
        idx = obj.get("answer_idx")
        if idx is not None and (isinstance(idx, bool) or not isinstance(idx, int) or not 0 <= idx < 5):
            raise _Bad("annotation.bad_value", f"answer_idx must be 0..4, got {idx!r}")
        return {"q": _text(obj, "q"), "answers": [_text(obj, f"a{i}") for i in range(5)], "answer_idx": idx}
    if task == "violin":
        label = obj.get("label")
        if label is not None and label not in (0, 1):
            raise _Bad("annotation.bad_value", f"label must be 0 or 1, got {label!r}")
        return {"desc": _text(obj, "desc"), "label": None if label is None else int(label)}
    if task == "tvc":
        descs = obj.get("descs", [])
        if not isinstance(descs, list) or not all(isinstance(d, Mapping) and isinstance(d.get("desc"), str) for d in descs):
            raise _Bad("annotation.bad_value", "descs must be a list of {\"desc\": str, ...}")
        return {"descs": [{"desc": d["desc"], "desc_id": d.get("desc_id"), "type": d.get("type")} for d in descs]}
    return {"desc": _text(obj, "desc")}


def parse_annotations(
    data: str,
    file: str,
    task: str,
    split: str,
    durations: Mapping[str, float],
    report: IngestReport,
    on_error: OnError,
    ts_tolerance: float = 0.1,
    skipped_videos: frozenset[str] = frozenset(),
) -> list[dict[str, Any]]:
    """Parse one ``<task>_<split>.jsonl`` file into normalized examples (``task``: the dataset, read in its form).

    Args:
        durations: vid_name -> duration (s) of every video in the corpus; an example naming another video breaks
            ``annotation.missing_video``, a ts beyond ``duration + ts_tolerance`` breaks ``annotation.ts_outside_video``.
        skipped_videos: videos that ingestion skipped as bad; their examples are dropped and counted as the note
            ``annotation.of_skipped_video`` (the video's own error already reported the cause).
    """
    dataset, task = task, form_of(task)
    if dataset in CSV_TASKS:
        raise ValueError(f"{dataset} annotations are CSV files (hero.corpus.how2), not JSONL")
    required = _ALWAYS[task] + (() if split == "test" else _LABELED[task])
    seen: set[str] = set()
    out: list[dict[str, Any]] = []
    for line_no, raw in enumerate(data.splitlines(), 1):
        if not raw.strip():
            continue
        fail: Callable[[str, str], None] = lambda rule, msg: report.handle(CorpusError(file, rule, msg, line_no), on_error)  # noqa: E731
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as err:
            fail("annotation.bad_json", f"not JSON: {err.msg}")
            continue
        if not isinstance(obj, dict):
            fail("annotation.bad_json", f"expected a JSON object, got {type(obj).__name__}")
            continue
        missing = [k for k in required if k not in obj]
        if missing:
            fail("annotation.missing_key", f"{dataset} line lacks {', '.join(missing)}")
            continue
        try:
            ex_id = obj[_ID_KEY[task]]
            vid = obj.get("vid_name")
            if vid is not None and not isinstance(vid, str):
                raise _Bad("annotation.bad_value", "vid_name must be a string")
            if vid in skipped_videos:
                report.note("annotation.of_skipped_video")
                continue
            if vid is not None and vid not in durations:
                raise _Bad("annotation.missing_video", f"vid_name {vid!r} is not a video of this corpus")
            raw_ts = obj.get("ts")
            no_ts = isinstance(raw_ts, str) and raw_ts.strip().lower() == _NO_TS
            ts = _parse_ts(raw_ts) if raw_ts is not None and not no_ts else None
            if ts is None and task == "tvc":
                raise _Bad("annotation.bad_value", f"ts {raw_ts!r}: a tvc clip needs its moment [st, ed]")
            if ts is not None and vid is not None and (ts[0] < 0 or ts[1] > durations[vid] + ts_tolerance):
                raise _Bad("annotation.ts_outside_video",
                           f"ts [{ts[0]}, {ts[1]}] lies outside video {vid!r} [0, {durations[vid]:.3f}]")
            example = {"id": ex_id, "vid_name": vid, "ts": ts, "line": line_no, **_fields(task, obj)}
        except _Bad as bad:
            fail(bad.rule, str(bad))
            continue
        if str(ex_id) in seen:
            fail("annotation.duplicate_id", f"{_ID_KEY[task]} {ex_id!r} appears twice")
            continue
        seen.add(str(ex_id))
        out.append(example)
        if no_ts:
            report.note("annotation.ts_nan")
        if task == "tvr" and example["type"] is None:
            report.note("annotation.no_type")
        if _unlabeled(task, example):
            report.note("annotation.unlabeled")
    return out
