"""The TVR submission JSON (docs/hero-fidelity.md d.4), read and written.

``{"video2idx": {vid_name: idx}, "VCMR"|"SVMR"|"VR": [{"desc_id", "desc", "predictions": [[vid_idx, st, ed,
score], ...]}, ...]}``. Predictions are in rank order (the evaluator ignores the score); VR rows carry st = ed = 0.
The writer puts one query per line so that an error can name a useful line.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hero.metrics.formats.files import (
    FormatError, PathLike, dumps_line, is_number, locate_json_path, read_json_document,
)
from hero.storage.atomic import atomic_writer

TVR_TASKS = ("VCMR", "SVMR", "VR")


@dataclass(frozen=True, eq=False)
class QueryPredictions:
    """Ranked moments of one query.

    predictions: [N, 4] float64 rows ``(video_idx, start_s, end_s, score)``, best first; N may be 0.
    """

    desc_id: int | str
    """As written in the file; ids are matched to the ground truth by ``str(desc_id)``."""
    predictions: np.ndarray
    desc: str = ""


@dataclass(frozen=True, eq=False)
class TvrSubmission:
    """A TVR submission: the video index plus any of the VCMR / SVMR / VR prediction lists."""

    video2idx: Mapping[str, int]
    tasks: Mapping[str, Sequence[QueryPredictions]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = set(self.tasks) - set(TVR_TASKS)
        if unknown:
            raise ValueError(f"unknown TVR task(s) {sorted(unknown)}; expected some of {TVR_TASKS}")


class _Bad(Exception):
    def __init__(self, path: tuple[str | int, ...], reason: str) -> None:
        super().__init__(reason)
        self.path, self.reason = path, reason


def _dotted(path: Sequence[str | int]) -> str:
    out = ""
    for step in path:
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else step)
    return out


def _check_rows(rows: Any, task: str, valid_idx: np.ndarray, at: tuple[str | int, ...]) -> np.ndarray:
    """[N, 4] float64 from a list of ``[int, number, number, number]`` rows; raises _Bad naming the first bad row."""
    if not isinstance(rows, list):
        raise _Bad(at, f"predictions must be a list, got {type(rows).__name__}")
    if not rows:
        return np.zeros((0, 4))
    # fast path: C-level type scans, then numpy checks; any doubt falls through to the row-by-row search below
    if (set(map(type, rows)) == {list} and set(map(len, rows)) == {4}
            and set(map(type, itertools.chain.from_iterable(rows))) <= {int, float}
            and set(map(type, map(operator.itemgetter(0), rows))) == {int}):
        try:
            arr = np.asarray(rows, dtype=np.float64)
        except OverflowError:                       # an int beyond float64: reported by the search below
            arr = np.full((1, 4), np.nan)
        if (np.isfinite(arr).all() and np.isin(arr[:, 0], valid_idx).all()
                and (task == "VR" or (arr[:, 1] <= arr[:, 2]).all())):
            return arr
    idx_set = set(valid_idx.tolist())
    for j, row in enumerate(rows):
        if not (type(row) is list and len(row) == 4 and type(row[0]) is int and all(is_number(x) for x in row)):
            raise _Bad((*at, j), f"expected [video_idx (int), st, ed, score] with finite numbers, got {row!r}")
        if row[0] not in idx_set:
            raise _Bad((*at, j), f"video_idx {row[0]} is not a value of video2idx")
        if task != "VR" and row[1] > row[2]:
            raise _Bad((*at, j), f"start {row[1]} > end {row[2]}")
    raise AssertionError("unreachable: the fast path rejected rows the slow path accepts")


def _parse(doc: Any) -> TvrSubmission:
    if not isinstance(doc, dict):
        raise _Bad((), f"expected a JSON object, got {type(doc).__name__}")
    unknown = set(doc) - {"video2idx", *TVR_TASKS}
    if unknown:
        raise _Bad((), f"unknown top-level key(s) {sorted(unknown)}; expected video2idx and some of {TVR_TASKS}")
    v2i = doc.get("video2idx")
    if not isinstance(v2i, dict):
        raise _Bad((), 'missing or non-object "video2idx"')
    for name, idx in v2i.items():
        if type(idx) is not int:
            raise _Bad(("video2idx", name), f"index must be an integer, got {idx!r}")
    if len(set(v2i.values())) != len(v2i):
        raise _Bad(("video2idx",), "two videos share an index")
    valid_idx = np.fromiter(v2i.values(), dtype=np.float64, count=len(v2i))
    tasks: dict[str, list[QueryPredictions]] = {}
    for task in TVR_TASKS:
        if task not in doc:
            continue
        entries = doc[task]
        if not isinstance(entries, list):
            raise _Bad((task,), f"must be a list of queries, got {type(entries).__name__}")
        seen: set[str] = set()
        out = []
        for i, e in enumerate(entries):
            at = (task, i)
            if not isinstance(e, dict):
                raise _Bad(at, f"expected an object, got {type(e).__name__}")
            qid = e.get("desc_id")
            if not (type(qid) is int or (type(qid) is str and qid)):
                raise _Bad(at, f'"desc_id" must be a non-empty string or an integer, got {qid!r}')
            if str(qid) in seen:
                raise _Bad(at, f"duplicate desc_id {qid!r} in {task}")
            seen.add(str(qid))
            desc = e.get("desc", "")
            if not isinstance(desc, str):
                raise _Bad(at, f'"desc" must be a string, got {desc!r}')
            if "predictions" not in e:
                raise _Bad(at, 'missing field "predictions"')
            rows = _check_rows(e["predictions"], task, valid_idx, (*at, "predictions"))
            out.append(QueryPredictions(desc_id=qid, predictions=rows, desc=desc))
        tasks[task] = out
    if not tasks:
        raise _Bad((), f"no prediction list: expected at least one of {TVR_TASKS}")
    return TvrSubmission(video2idx=dict(v2i), tasks=tasks)


def read_tvr_submission(path: PathLike) -> TvrSubmission:
    """Read and validate a TVR submission JSON.

    Raises:
        FormatError: naming the file, the line and the JSON path of the first malformed element (bad JSON, a
            missing field, a prediction row that is not ``[int, number, number, number]``, an unknown video
            index, start > end in VCMR/SVMR, a duplicate desc_id within a task).
    """
    doc, text = read_json_document(path)
    try:
        return _parse(doc)
    except _Bad as bad:
        where = f"{_dotted(bad.path)}: " if bad.path else ""
        raise FormatError(path, locate_json_path(text, bad.path), f"{where}{bad.reason}") from None


def _rows(a: np.ndarray) -> list[list[Any]]:
    return [[int(v), st, ed, sc] for v, st, ed, sc in np.asarray(a, dtype=np.float64).reshape(-1, 4).tolist()]


def write_tvr_submission(path: PathLike, submission: TvrSubmission) -> None:
    """Write ``submission`` atomically, one query per line."""
    with atomic_writer(path) as f:
        f.write('{"video2idx": ' + dumps_line({k: int(v) for k, v in submission.video2idx.items()}))
        for task in TVR_TASKS:
            if task not in submission.tasks:
                continue
            f.write(f',\n"{task}": [')
            for i, q in enumerate(submission.tasks[task]):
                entry = {"desc_id": q.desc_id, "desc": q.desc, "predictions": _rows(q.predictions)}
                f.write(("\n" if i == 0 else ",\n") + dumps_line(entry))
            f.write("\n]")
        f.write("\n}\n")


__all__ = ["TVR_TASKS", "QueryPredictions", "TvrSubmission", "read_tvr_submission",
           "write_tvr_submission"]
