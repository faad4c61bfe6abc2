"""File plumbing shared by the prediction and annotation formats.

A JSONL reader that reports the file and line of every malformed record, a locator that finds the line of an
element inside a one-document JSON file (used only on the error path), and ``Where``: typed field access that
fails with the place. Files are written with `hero.storage.atomic.atomic_writer` (whole or not at all).
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, TypeVar

PathLike = str | os.PathLike
R = TypeVar("R")


RULES = {
    "prediction.bad_line": "a TVC prediction line is not JSON, lacks clip_id or descs, or repeats a clip_id",
    "prediction.vid_name_mismatch": "a prediction names another video than the ground truth of its id",
    "score.no_ground_truth": "the annotation file has no labels (a test split): it can be predicted, not scored",
}
"""The rules a ``FormatError`` may name (errors of the other readers name none yet)."""


class FormatError(ValueError):
    """Malformed prediction or annotation input. The message reads ``<file>:<line>: <what is wrong>``, or
    ``<file>:<line>: [rule] <what is wrong>`` when the error names one of `RULES`."""

    def __init__(self, file: PathLike, line: int | None, reason: str, rule: str | None = None) -> None:
        if rule is not None and rule not in RULES:
            raise KeyError(f"unknown format rule {rule!r}")
        self.file = str(file)
        self.line = line
        self.reason = reason
        self.rule = rule
        where = f"{self.file}:{line}" if line is not None else self.file
        super().__init__(f"{where}: " + (f"[{rule}] " if rule else "") + reason)


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not valid JSON")


def dumps_line(obj: Any) -> str:
    """One compact JSON line (no NaN/Infinity: those are not JSON and every reader here rejects them)."""
    return json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(", ", ": "))


def read_jsonl(path: PathLike, rule: str | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, object)`` for each non-blank line of a JSONL file (lines count from 1).

    Raises:
        FormatError: on a line that is not JSON, is not a JSON object, or holds NaN/Infinity; or on bytes that
            are not UTF-8. It names ``rule`` when given.
    """
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise FormatError(path, lineno, f"not UTF-8 ({err.reason} at byte {err.start})", rule) from None
            if not text.strip():
                continue
            try:
                obj = json.loads(text, parse_constant=_reject_constant)
            except json.JSONDecodeError as err:
                raise FormatError(path, lineno, f"invalid JSON: {err.msg} (column {err.colno})", rule) from None
            except ValueError as err:
                raise FormatError(path, lineno, f"invalid JSON: {err}", rule) from None
            if not isinstance(obj, dict):
                raise FormatError(path, lineno, f"expected a JSON object, got {type(obj).__name__}", rule)
            yield lineno, obj


def read_json_document(path: PathLike) -> tuple[Any, str]:
    """Parse a one-document JSON file; return ``(object, text)`` (the text is kept to locate errors later)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise FormatError(path, None, f"not UTF-8 ({err.reason} at byte {err.start})") from None
    try:
        return json.loads(text, parse_constant=_reject_constant), text
    except json.JSONDecodeError as err:
        raise FormatError(path, err.lineno, f"invalid JSON: {err.msg} (column {err.colno})") from None
    except ValueError as err:
        raise FormatError(path, None, f"invalid JSON: {err}") from None


_WS = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


def locate_json_path(text: str, path: Sequence[str | int]) -> int | None:
    """Line number (from 1) where the element at ``path`` (object keys and array indices) starts in ``text``.

    Best effort: returns None if the path cannot be followed. Values that are skipped are parsed with the C
    decoder, so this costs one pass over the text before the element.
    """
    try:
        idx = _WS.match(text, 0).end()
        for step in path:
            if isinstance(step, str):
                if text[idx] != "{":
                    return None
                idx = _WS.match(text, idx + 1).end()
                while True:
                    if text[idx] != '"':
                        return None
                    key, idx = json.decoder.scanstring(text, idx + 1)
                    idx = _WS.match(text, idx).end() + 1  # past ':'
                    idx = _WS.match(text, idx).end()
                    if key == step:
                        break
                    _, idx = _DECODER.raw_decode(text, idx)
                    idx = _WS.match(text, idx).end()
                    if text[idx] != ",":
                        return None
                    idx = _WS.match(text, idx + 1).end()
            else:
                if text[idx] != "[":
                    return None
                idx = _WS.match(text, idx + 1).end()
                for _ in range(step):
                    _, idx = _DECODER.raw_decode(text, idx)
                    idx = _WS.match(text, idx).end()
                    if text[idx] != ",":
                        return None
                    idx = _WS.match(text, idx + 1).end()
        return text.count("\n", 0, idx) + 1
    except (IndexError, ValueError):
        return None


def is_number(value: Any) -> bool:
    """A finite JSON number (bool is not a number here)."""
    try:
        return type(value) in (int, float) and math.isfinite(value)
    except OverflowError:                           # an int too large for a float
        return False


@dataclass(frozen=True)
class Where:
    """The place a record came from; its methods read typed fields and fail with ``file:line: field: rule``."""

    file: str
    line: int | None
    prefix: str = ""
    rule: str | None = None
    """The rule a failure names unless `fail` is given another (None: none)."""

    def fail(self, reason: str, rule: str | None = None) -> NoReturn:
        raise FormatError(self.file, self.line, f"{self.prefix}{reason}", rule or self.rule)

    def get(self, obj: dict[str, Any], key: str, *, required: bool = True) -> Any:
        if key not in obj:
            if required:
                self.fail(f'missing field "{key}"')
            return None
        return obj[key]

    def ident(self, obj: dict[str, Any], key: str) -> int | str:
        """An id field (int or non-empty str in the public formats); records are matched by ``str(id)``."""
        value = self.get(obj, key)
        if type(value) is int or (type(value) is str and value != ""):
            return value
        self.fail(f'"{key}" must be a non-empty string or an integer, got {value!r}')

    def string(self, obj: dict[str, Any], key: str, *, required: bool = True, default: str = "") -> str:
        value = self.get(obj, key, required=required)
        if value is None and not required:
            return default
        if not isinstance(value, str):
            self.fail(f'"{key}" must be a string, got {value!r}')
        return value

    def integer(self, obj: dict[str, Any], key: str, *, low: int | None = None, high: int | None = None) -> int:
        value = self.get(obj, key)
        if type(value) is not int:
            self.fail(f'"{key}" must be an integer, got {value!r}')
        if (low is not None and value < low) or (high is not None and value > high):
            bound = f">= {low}" if high is None else (f"<= {high}" if low is None else f"in [{low}, {high}]")
            self.fail(f'"{key}" must be {bound}, got {value}')
        return value

    def number(self, obj: dict[str, Any], key: str) -> float:
        value = self.get(obj, key)
        if not is_number(value):
            self.fail(f'"{key}" must be a finite number, got {value!r}')
        return float(value)

    def span(self, value: Any, key: str = "ts") -> tuple[float, float]:
        """``[st, ed]`` with finite numbers and st <= ed."""
        if not (isinstance(value, list) and len(value) == 2 and all(is_number(v) for v in value)):
            self.fail(f'"{key}" must be [start, end] with two finite numbers, got {value!r}')
        st, ed = float(value[0]), float(value[1])
        if st > ed:
            self.fail(f'"{key}" has start {st} > end {ed}')
        return st, ed


def read_records(path: PathLike, parse: Callable[[dict[str, Any], Where], R], key: Callable[[R], Any],
                 rule: str | None = None) -> list[R]:
    """Parse every line of a JSONL file with ``parse``; two records with the same ``str(key)`` are an error.
    ``rule``: what the errors of this file name (see `RULES`; None: none)."""
    out: list[R] = []
    first_line: dict[str, int] = {}
    for lineno, obj in read_jsonl(path, rule):
        where = Where(str(path), lineno, rule=rule)
        rec = parse(obj, where)
        k = str(key(rec))
        if k in first_line:
            where.fail(f"duplicate id {key(rec)!r} (first on line {first_line[k]})")
        first_line[k] = lineno
        out.append(rec)
    return out
