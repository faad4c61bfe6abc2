"""The line-per-record prediction formats (docs/formats.md), read and written.

| format | one JSON object per line |
|---|---|
| TVQA / How2QA answers | ``{"qid", "answer_idx", "ts"?: [st, ed]}`` (``ts``: optional predicted span) |
| VIOLIN labels | ``{"desc_id", "label": 1 entailed | 0 contradicted}`` |
| TVC captions | ``{"clip_id", "descs": [{"desc"}, ...], "vid_name"?, "ts"?: [st, ed]}`` (the first desc is scored) |
| retrieval rankings | ``{"desc_id", "desc"?, "predictions": [[vid_name, score], ...]}`` |

Rankings list the videos best first, with non-increasing scores and no video twice; they may be truncated.

Ids are kept as written (int or str) and matched by ``str(id)``. A second record for the same id is an error.

TVC lines are read in the official evaluator's form (jayleicn/TVCaption ``standalone_eval``: ``clip_id`` and
``descs`` are all it reads) and in this project's, which adds ``vid_name`` and ``ts`` (checked when present).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from hero.metrics.formats.files import PathLike, Where, dumps_line, is_number, read_records
from hero.storage.atomic import atomic_writer


@dataclass(frozen=True)
class QaAnswer:
    """One TVQA / How2QA answer."""

    qid: int | str
    answer_idx: int
    ts: tuple[float, float] | None = None
    """Predicted temporal span in seconds, when the model localises."""


@dataclass(frozen=True)
class ViolinLabel:
    """One VIOLIN statement's predicted label (1 entailed, 0 contradicted)."""

    desc_id: int | str
    label: int


@dataclass(frozen=True)
class CaptionPrediction:
    """Generated caption(s) of one TVC clip (a moment ``ts`` of video ``vid_name``)."""

    vid_name: str | None
    """None when the line does not name it (the official format); otherwise checked against the ground truth."""
    clip_id: int | str
    ts: tuple[float, float] | None
    descs: tuple[str, ...]
    """Generated captions, best first; metrics score ``descs[0]``."""
    where: Where | None = field(default=None, compare=False, repr=False)
    """The file and line it was read from (None when made in memory), for errors found while scoring."""


@dataclass(frozen=True)
class VideoRanking:
    """The ranked videos of one text-to-video query."""

    desc_id: int | str
    ranked: tuple[tuple[str, float], ...]
    """``(vid_name, score)`` best first."""
    desc: str = ""


def _write(path: PathLike, records: Iterable[Any], to_obj: Callable[[Any], dict[str, Any]]) -> None:
    with atomic_writer(path) as f:
        for rec in records:
            f.write(dumps_line(to_obj(rec)) + "\n")


def _parse_answer(obj: dict[str, Any], w: Where) -> QaAnswer:
    ts = w.span(obj["ts"]) if obj.get("ts") is not None else None
    return QaAnswer(qid=w.ident(obj, "qid"), answer_idx=w.integer(obj, "answer_idx", low=0), ts=ts)


def read_qa_answers(path: PathLike) -> list[QaAnswer]:
    """Read TVQA-style answer lines. Raises FormatError (file:line) on a malformed or duplicate record."""
    return read_records(path, _parse_answer, lambda r: r.qid)


def write_qa_answers(path: PathLike, answers: Iterable[QaAnswer]) -> None:
    def obj(a: QaAnswer) -> dict[str, Any]:
        out: dict[str, Any] = {"qid": a.qid, "answer_idx": int(a.answer_idx)}
        if a.ts is not None:
            out["ts"] = [float(a.ts[0]), float(a.ts[1])]
        return out

    _write(path, answers, obj)


def _parse_violin(obj: dict[str, Any], w: Where) -> ViolinLabel:
    return ViolinLabel(desc_id=w.ident(obj, "desc_id"), label=w.integer(obj, "label", low=0, high=1))


def read_violin_labels(path: PathLike) -> list[ViolinLabel]:
    """Read VIOLIN label lines. Raises FormatError (file:line) on a malformed or duplicate record."""
    return read_records(path, _parse_violin, lambda r: r.desc_id)


def write_violin_labels(path: PathLike, labels: Iterable[ViolinLabel]) -> None:
    _write(path, labels, lambda r: {"desc_id": r.desc_id, "label": int(r.label)})


def _parse_caption(obj: dict[str, Any], w: Where) -> CaptionPrediction:
    clip_id = w.ident(obj, "clip_id")
    descs = w.get(obj, "descs")
    if not isinstance(descs, list) or not descs:
        w.fail(f'"descs" must be a non-empty list of {{"desc": str}}, got {descs!r}')
    texts = []
    for i, d in enumerate(descs):
        if not isinstance(d, dict) or not isinstance(d.get("desc"), str):
            w.fail(f'descs[{i}] must be an object with a string "desc", got {d!r}')
        texts.append(d["desc"])
    vid_name = w.string(obj, "vid_name") if obj.get("vid_name") is not None else None
    ts = w.span(obj["ts"]) if obj.get("ts") is not None else None
    return CaptionPrediction(vid_name=vid_name, clip_id=clip_id, ts=ts, descs=tuple(texts), where=w)


def read_captions(path: PathLike) -> list[CaptionPrediction]:
    """Read TVC caption prediction lines, official (``clip_id``, ``descs``) or this project's (plus ``vid_name``,
    ``ts``). Raises FormatError ``file:line: [prediction.bad_line]`` on a malformed line or a repeated clip_id."""
    return read_records(path, _parse_caption, lambda r: r.clip_id, rule="prediction.bad_line")


def write_captions(path: PathLike, captions: Iterable[CaptionPrediction]) -> None:
    """Write caption lines in this project's form (``vid_name`` and ``ts`` left out where None)."""
    def obj(c: CaptionPrediction) -> dict[str, Any]:
        out: dict[str, Any] = {} if c.vid_name is None else {"vid_name": c.vid_name}
        out["clip_id"] = c.clip_id
        if c.ts is not None:
            out["ts"] = [float(c.ts[0]), float(c.ts[1])]
        out["descs"] = [{"desc": d} for d in c.descs]
        return out

    _write(path, captions, obj)


def _parse_ranking(obj: dict[str, Any], w: Where) -> VideoRanking:
    preds = w.get(obj, "predictions")
    if not isinstance(preds, list):
        w.fail(f'"predictions" must be a list of [vid_name, score], got {type(preds).__name__}')
    ranked: list[tuple[str, float]] = []
    seen: set[str] = set()
    for j, p in enumerate(preds):
        if not (isinstance(p, list) and len(p) == 2 and isinstance(p[0], str) and is_number(p[1])):
            w.fail(f"predictions[{j}] must be [vid_name (str), score (finite number)], got {p!r}")
        if p[0] in seen:
            w.fail(f"predictions[{j}]: video {p[0]!r} is ranked twice")
        if ranked and p[1] > ranked[-1][1]:
            w.fail(f"predictions[{j}]: score {p[1]} is above the previous {ranked[-1][1]} (must be best first)")
        seen.add(p[0])
        ranked.append((p[0], float(p[1])))
    return VideoRanking(desc_id=w.ident(obj, "desc_id"), ranked=tuple(ranked),
                        desc=w.string(obj, "desc", required=False))


def read_rankings(path: PathLike) -> list[VideoRanking]:
    """Read retrieval ranking lines. Raises FormatError (file:line) on a malformed, unsorted or duplicate record."""
    return read_records(path, _parse_ranking, lambda r: r.desc_id)


def write_rankings(path: PathLike, rankings: Iterable[VideoRanking]) -> None:
    _write(path, rankings, lambda r: {"desc_id": r.desc_id, "desc": r.desc,
                                      "predictions": [[v, float(s)] for v, s in r.ranked]})


def rankings_from_scores(desc_ids: Sequence[int | str], video_names: Sequence[str], scores: Any,
                         top_k: int | None = None) -> list[VideoRanking]:
    """Build rankings from a score matrix.

    scores: [Nq, Nv] (tensor or array); ties keep the lower video index first (a stable sort).
    top_k: keep this many videos per query (None: all).
    """
    import torch

    s = torch.as_tensor(scores, dtype=torch.float64)
    if s.shape != (len(desc_ids), len(video_names)):
        raise ValueError(f"scores must be [{len(desc_ids)}, {len(video_names)}], got {tuple(s.shape)}")
    order = torch.sort(s, dim=1, descending=True, stable=True).indices[:, :top_k]
    out = []
    for qid, row, o in zip(desc_ids, s.tolist(), order.tolist()):
        out.append(VideoRanking(desc_id=qid, ranked=tuple((video_names[j], row[j]) for j in o)))
    return out
