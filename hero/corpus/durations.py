"""Video durations from a ``video2dur`` file, for corpora whose videos are features only (no file to probe).

Two forms are read: the TVR release's ``tvr_video2dur_idx.json``, ``{split: {vid_name: [duration_s, index]}}``
(index = the video's global index, ignored here), and a flat ``{vid_name: duration_s}`` (or ``[duration_s, ...]``).
"""

from __future__ import annotations

import json
import math
from typing import Any

from hero.corpus.errors import CorpusError


def _duration(value: Any) -> float | None:
    """The duration in ``value`` (a number, or a list whose first item is one); None when it holds none."""
    if isinstance(value, list) and value:
        value = value[0]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def parse_video2dur(text: str, file: str) -> dict[str, float]:
    """``{vid_name: duration_s}`` from the text of a video2dur file (either form above).

    Raises:
        CorpusError: ``video2dur.bad_file`` (not JSON, or neither form) or ``video2dur.bad_value`` (a duration that is
            not a finite number > 0, or one video given two durations by two splits), naming the file and the key.
    """
    try:
        obj = json.loads(text)
    except ValueError as err:
        raise CorpusError(file, "video2dur.bad_file", f"not JSON: {err}") from None
    if not isinstance(obj, dict) or not obj:
        raise CorpusError(file, "video2dur.bad_file", f"expected a non-empty JSON object, got {type(obj).__name__}")
    nested = all(isinstance(v, dict) for v in obj.values())
    groups = obj.items() if nested else [("", obj)]
    out: dict[str, float] = {}
    for split, videos in groups:
        for vid, value in videos.items():
            where = f"{split}.{vid}" if split else vid
            d = _duration(value)
            if d is None or not math.isfinite(d) or d <= 0:
                raise CorpusError(file, "video2dur.bad_value", f"{where!r}: duration {value!r} is not a number > 0")
            if vid in out and abs(out[vid] - d) > 1e-6:
                raise CorpusError(file, "video2dur.bad_value", f"{where!r}: duration {d} but another split gives {out[vid]}")
            out[vid] = d
    return out


def read_video2dur(path: str) -> dict[str, float]:
    """`parse_video2dur` of the file at ``path`` (UTF-8)."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except UnicodeDecodeError as err:
        raise CorpusError(path, "video2dur.bad_file", f"not UTF-8: {err}") from None
    return parse_video2dur(text, path)
