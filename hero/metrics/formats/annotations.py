"""Ground-truth readers for scoring: ``annotations/<task>_<split>.jsonl`` in the formats of docs/formats.md.

Only the fields a scorer needs are read, and each is checked; a file without labels (a test split) fails with the
line of the first unlabelled record (``[score.no_ground_truth]``). Ids are kept as written and matched by ``str(id)``.
A TVQA ``ts`` of ``"NaN-NaN"`` (the TVQA test release has 3) means no timestamp: the question counts for accuracy,
not for localisation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from hero.metrics.formats.files import PathLike, Where, read_records

QUERY_TYPES = ("v", "t", "vt")


@dataclass(frozen=True)
class MomentAnnotation:
    """One moment-retrieval query (TVR / How2R / DiDeMo)."""

    desc_id: int | str
    vid_name: str
    spans: tuple[tuple[float, float], ...]
    """GT spans in seconds: one for TVR; several for DiDeMo (``ts`` as a list of [st, ed])."""
    type: str | None = None
    """TVR query type: "v" (video), "t" (text/subtitle) or "vt"; None where the dataset has none."""


@dataclass(frozen=True)
class QaAnnotation:
    qid: int | str
    answer_idx: int
    num_answers: int
    ts: tuple[float, float] | None = None


@dataclass(frozen=True)
class ViolinAnnotation:
    desc_id: int | str
    label: int
    vid_name: str = ""


@dataclass(frozen=True)
class CaptionAnnotation:
    clip_id: int | str
    vid_name: str
    ts: tuple[float, float]
    refs: tuple[str, ...]
    """All reference captions of the clip."""
    where: Where | None = field(default=None, compare=False, repr=False)
    """The file and line it was read from (None when made in memory)."""


@dataclass(frozen=True)
class RetrievalAnnotation:
    desc_id: int | str
    vid_name: str


def _labelled(obj: dict[str, Any], w: Where, key: str) -> None:
    if key not in obj:
        w.fail(f'no "{key}": this file has no ground truth (a test split: predict it with score=False and let '
               'the official server score it)', rule="score.no_ground_truth")


def _parse_moment(obj: dict[str, Any], w: Where) -> MomentAnnotation:
    _labelled(obj, w, "ts")
    ts = obj["ts"]
    if isinstance(ts, list) and ts and all(isinstance(t, list) for t in ts):
        spans = tuple(w.span(t, "ts[]") for t in ts)
    else:
        spans = (w.span(ts),)
    qtype = obj.get("type")
    if qtype is not None and qtype not in QUERY_TYPES:
        w.fail(f'"type" must be one of {list(QUERY_TYPES)}, got {qtype!r}')
    return MomentAnnotation(desc_id=w.ident(obj, "desc_id"), vid_name=w.string(obj, "vid_name"), spans=spans,
                            type=qtype)


def read_moment_annotations(path: PathLike) -> list[MomentAnnotation]:
    """tvr lines ``{"vid_name", "ts": [st, ed] | [[st, ed], ...], "type"?, "desc_id", ...}``."""
    return read_records(path, _parse_moment, lambda a: a.desc_id)


_TS_STRING = re.compile(r"^\s*(\d+(?:\.\d*)?)\s*-\s*(\d+(?:\.\d*)?)\s*$")
_NO_TS = "nan-nan"


def _parse_qa(obj: dict[str, Any], w: Where) -> QaAnnotation:
    _labelled(obj, w, "answer_idx")
    n = sum(1 for k in obj if re.fullmatch(r"a\d+", k))
    if n < 2:
        w.fail(f'expected candidate answers "a0".."a{{n-1}}" (n >= 2), found {n}')
    ts = obj.get("ts")
    span = None
    if isinstance(ts, str) and ts.strip().lower() == _NO_TS:
        span = None
    elif isinstance(ts, str):
        m = _TS_STRING.match(ts)
        if not m:
            w.fail(f'"ts" must be "start-end" in seconds, got {ts!r}')
        span = w.span([float(m.group(1)), float(m.group(2))])
    elif ts is not None:
        span = w.span(ts)
    return QaAnnotation(qid=w.ident(obj, "qid"), answer_idx=w.integer(obj, "answer_idx", low=0, high=n - 1),
                        num_answers=n, ts=span)


def read_qa_annotations(path: PathLike) -> list[QaAnnotation]:
    """tvqa lines ``{"qid", "q", "a0".."a4", "answer_idx", "ts": "st-ed", "vid_name", ...}``."""
    return read_records(path, _parse_qa, lambda a: a.qid)


def _parse_violin(obj: dict[str, Any], w: Where) -> ViolinAnnotation:
    _labelled(obj, w, "label")
    return ViolinAnnotation(desc_id=w.ident(obj, "desc_id"), label=w.integer(obj, "label", low=0, high=1),
                            vid_name=w.string(obj, "vid_name", required=False))


def read_violin_annotations(path: PathLike) -> list[ViolinAnnotation]:
    """violin lines ``{"desc_id", "desc", "vid_name", "label": 1 | 0, "ts"?}``."""
    return read_records(path, _parse_violin, lambda a: a.desc_id)


def _parse_caption(obj: dict[str, Any], w: Where) -> CaptionAnnotation:
    _labelled(obj, w, "descs")
    descs = obj["descs"]
    if not isinstance(descs, list) or not descs:
        w.fail(f'"descs" must be a non-empty list of {{"desc": str}}, got {descs!r}')
    refs = []
    for i, d in enumerate(descs):
        if not isinstance(d, dict) or not isinstance(d.get("desc"), str):
            w.fail(f'descs[{i}] must be an object with a string "desc", got {d!r}')
        refs.append(d["desc"])
    return CaptionAnnotation(clip_id=w.ident(obj, "clip_id"), vid_name=w.string(obj, "vid_name"),
                             ts=w.span(w.get(obj, "ts")), refs=tuple(refs), where=w)


def read_caption_annotations(path: PathLike) -> list[CaptionAnnotation]:
    """tvc lines ``{"vid_name", "duration", "ts": [st, ed], "clip_id", "descs": [{"desc", ...}, ...]}``."""
    return read_records(path, _parse_caption, lambda a: a.clip_id)


def _parse_retrieval(obj: dict[str, Any], w: Where) -> RetrievalAnnotation:
    _labelled(obj, w, "vid_name")
    return RetrievalAnnotation(desc_id=w.ident(obj, "desc_id"), vid_name=w.string(obj, "vid_name"))


def read_retrieval_annotations(path: PathLike) -> list[RetrievalAnnotation]:
    """retrieval lines ``{"desc_id", "desc", "vid_name"}``."""
    return read_records(path, _parse_retrieval, lambda a: a.desc_id)


__all__ = [
    "QUERY_TYPES", "CaptionAnnotation", "MomentAnnotation", "QaAnnotation", "RetrievalAnnotation",
    "ViolinAnnotation", "read_caption_annotations", "read_moment_annotations",
    "read_qa_annotations", "read_retrieval_annotations", "read_violin_annotations",
]
