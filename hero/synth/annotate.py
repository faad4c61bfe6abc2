"""Annotations for the five task families, derived from the episodes' event logs (formats of docs/formats.md).

Each record's ground truth is kept in a side log (`synth_log.jsonl`) so tests can check ts against the events.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from hero.synth.script import Episode, Event, Line
from hero.synth.world import CHARACTERS, CHAT, PARAPHRASE, THINGS, VERB

_PRONOUN = {c.name: c.pronoun for c in CHARACTERS}
SHOW = "Synthetic Show"


def describe(e: Event, place: str, *, actor: str | None = None, obj: str | None = None, kind: str | None = None) -> str:
    """'Alice picks up the cup.' (any detail replaceable, for contradicted statements)."""
    return f"{actor or e.actor} " + VERB[kind or e.kind].format(o=obj or e.obj, t=e.target, p=place) + "."


def _say(ln: Line) -> str:
    return CHAT[ln.topic][1].format(a=ln.speaker, pr=_PRONOUN[ln.speaker], x=ln.value)


def clamp_ts(a: float, b: float, duration: float) -> list[float]:
    """[a, b] cut to the video and rounded to 0.01 s: an annotation's ts."""
    return [round(max(a, 0.0), 2), round(min(b, duration), 2)]


def _perturb(e: Event, ep: Episode, rng: np.random.Generator) -> tuple[str, str]:
    """A false statement that differs from the event in exactly one detail, and which detail."""
    choices = ["actor"] + (["obj"] if e.obj else []) + (["kind"] if e.kind in ("wave", "jump", "walk") else [])
    what = choices[int(rng.integers(len(choices)))]
    if what == "actor":
        pool = [c for c in ep.cast if c not in (e.actor, e.target)]
        pool = pool or [c.name for c in CHARACTERS if c.name not in (e.actor, e.target)]
        return describe(e, ep.place, actor=pool[int(rng.integers(len(pool)))]), "actor"
    if what == "obj":
        pool = [t.name for t in THINGS if t.name != e.obj]
        return describe(e, ep.place, obj=pool[int(rng.integers(len(pool)))]), "obj"
    pool = [k for k in ("wave", "jump", "walk") if k != e.kind]
    return describe(e, ep.place, kind=pool[int(rng.integers(len(pool)))]), "kind"


def annotate(ep: Episode, seed: int, ids: dict[str, int]) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """Yield ``(task, record, truth)`` for one episode. ``ids`` holds running id counters (shared across episodes).

    truth: {"vid_name", "event"|"line"|"events", "ts": the span the record must cover}.
    """
    rng = np.random.default_rng([seed, ep.index, 7])
    vid, dur = ep.vid_name, ep.duration

    def next_id(key: str) -> int:
        ids[key] = ids.get(key, 0) + 1
        return ids[key]

    said_during = {ln.event: ln for ln in ep.lines if ln.event is not None}
    for e in ep.events:
        ts = clamp_ts(e.start, e.end, dur)
        truth = {"vid_name": vid, "event": e.id, "ts": ts}
        yield "tvr", {"vid_name": vid, "duration": dur, "ts": ts, "desc": describe(e, ep.place), "type": "v",
                      "desc_id": next_id("tvr")}, truth
        ln = said_during.get(e.id)
        if ln is not None and rng.random() < 0.6:
            span = clamp_ts(min(e.start, ln.start), max(e.end, ln.end), dur)
            desc = f"{e.actor} {VERB[e.kind].format(o=e.obj, t=e.target, p=ep.place)} while {ln.speaker} says \"{ln.text}\""
            yield "tvr", {"vid_name": vid, "duration": dur, "ts": span, "desc": desc, "type": "vt",
                          "desc_id": next_id("tvr")}, {"vid_name": vid, "event": e.id, "line": ln.id, "ts": span}
        # VIOLIN: one true and one false statement per event, differing in one detail.
        n = next_id("violin")
        false, changed = _perturb(e, ep, rng)
        yield "violin", {"desc_id": f"{n}-1", "desc": describe(e, ep.place), "vid_name": vid, "label": 1, "ts": ts}, truth
        yield "violin", {"desc_id": f"{n}-0", "desc": false, "vid_name": vid, "label": 0, "ts": ts}, {**truth, "changed": changed}
        # TVC: captions of the event's window.
        cid = next_id("tvc")
        descs = [{"desc": describe(e, ep.place), "desc_id": next_id("tvc_desc"), "type": "v"},
                 {"desc": PARAPHRASE[e.kind].format(a=e.actor, o=e.obj, t=e.target, p=ep.place),
                  "desc_id": next_id("tvc_desc"), "type": "v"}]
        yield "tvc", {"vid_name": vid, "duration": dur, "ts": ts, "clip_id": cid, "descs": descs}, truth
        # TVQA: the answer depends on the window (the same person may do other things elsewhere in the video).
        qa = _question(e, ep)
        if qa is not None:
            q, answer, pool = qa
            yield "tvqa", qa_record(q, answer, pool, ts, vid, next_id("tvqa"), rng), truth
    for ln in ep.lines:
        if ln.kind != "chat":
            continue
        ts = clamp_ts(ln.start, ln.end, dur)
        truth = {"vid_name": vid, "line": ln.id, "ts": ts}
        yield "tvr", {"vid_name": vid, "duration": dur, "ts": ts, "desc": _say(ln), "type": "t", "desc_id": next_id("tvr")}, truth
        _, _, question, pool = CHAT[ln.topic]
        q = question.format(a=ln.speaker, pr=_PRONOUN[ln.speaker])
        yield "tvqa", qa_record(q, ln.value, list(pool), ts, vid, next_id("tvqa"), rng), truth
        n = next_id("violin")
        wrong = [v for v in pool if v != ln.value][int(rng.integers(len(pool) - 1))]
        yield "violin", {"desc_id": f"{n}-1", "desc": _say(ln), "vid_name": vid, "label": 1, "ts": ts}, truth
        fake = Line(ln.id, ln.speaker, ln.text, ln.start, ln.end, ln.kind, None, ln.topic, wrong)
        yield "violin", {"desc_id": f"{n}-0", "desc": _say(fake), "vid_name": vid, "label": 0, "ts": ts}, {**truth, "changed": "value"}
    # Retrieval: whole-video descriptions (place + two events).
    for _ in range(2 if len(ep.events) >= 2 else len(ep.events)):
        pick = sorted(rng.choice(len(ep.events), min(2, len(ep.events)), replace=False).tolist())
        parts = [describe(ep.events[i], ep.place).rstrip(".") for i in pick]
        desc = f"In the {ep.place}, " + " and then ".join(parts) + "."
        yield "retrieval", {"desc_id": next_id("retrieval"), "desc": desc, "vid_name": vid}, {"vid_name": vid, "events": pick,
                                                                                            "ts": [0.0, dur]}


def _question(e: Event, ep: Episode) -> tuple[str, str, list[str]] | None:
    names = [c.name for c in CHARACTERS]
    things = [t.name for t in THINGS]
    if e.kind == "pick_up":
        return f"What does {e.actor} pick up?", e.obj, things
    if e.kind == "put_down":
        return f"What does {e.actor} put down?", e.obj, things
    if e.kind == "give":
        return f"Who does {e.actor} give the {e.obj} to?", e.target, names
    if e.kind in ("wave", "jump"):
        return f"What does {e.actor} do?", {"wave": "Waves.", "jump": "Jumps."}[e.kind], [
            "Waves.", "Jumps.", "Sits down.", "Walks away.", "Claps.", "Dances."]
    if e.kind == "enter":
        return f"Who walks into the {ep.place}?", e.actor, names
    return None


def qa_record(q: str, answer: str, pool: list[str], ts: list[float], vid: str, qid: int, rng, *,
              show: str = SHOW) -> dict[str, Any]:
    """A tvqa line: ``answer`` among four others drawn from ``pool``, at a random index."""
    wrong = [p for p in pool if p != answer]
    picks = [wrong[i] for i in rng.choice(len(wrong), 4, replace=False)]
    idx = int(rng.integers(5))
    picks.insert(idx, answer)
    rec = {"qid": qid, "q": q, **{f"a{i}": a for i, a in enumerate(picks)}, "answer_idx": idx,
           "ts": f"{ts[0]:.2f}-{ts[1]:.2f}", "vid_name": vid, "show_name": show}
    return rec

