"""Annotations of a tutorial for the five task families, in the same files and formats as the TV show's
(hero.synth.annotate), so ingestion and every downstream task read them unchanged: moment queries about steps
and narration, questions about tools, materials, paint colours and the narrator's asides, true/false statements,
step captions and whole-video descriptions.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from hero.synth.annotate import clamp_ts, qa_record
from hero.synth.howto.script import ACTION, Narration, Step, Tutorial
from hero.synth.howto.world import APPLIES, ASIDES, CHANNEL, MATERIALS, PAINTS, TOOLS

_MATERIAL_NAMES = [m.name for m in MATERIALS]


def describe(s: Step, *, obj: str | None = None, action: str | None = None, paint: str | None = None) -> str:
    """'Someone paints the panel teal with the brush.' (any detail replaceable, for contradicted statements)."""
    act = ACTION[action or s.action]
    colour = paint or s.paint if act.name == "paint" else None
    what = f"{obj or s.obj} {colour}" if colour else (obj or s.obj)
    return f"Someone {act.third} the {what} with the {act.tool}."


def paraphrase(s: Step) -> str:
    """'The panel is painted teal using the brush.'"""
    colour = f" {s.paint}" if s.paint else ""
    return f"The {s.obj} is {ACTION[s.action].participle}{colour} using the {s.tool}."


def _aside(ln: Narration, value: str | None = None) -> str:
    return ASIDES[ln.topic][1].format(x=value or ln.value)


def _works_on(action: str) -> list[str]:
    return [m for m, acts in APPLIES.items() if action in acts]


def _perturb(s: Step, tut: Tutorial, rng: np.random.Generator) -> tuple[str, str]:
    """A false statement that differs from the step in one detail, and which: the material (one the action
    works on, preferably one in view), the action with its tool (one that works this material) or the paint
    colour. Every false statement is a plausible step, so only the video tells it from the true one."""
    objs = [m for m in _works_on(s.action) if m != s.obj]
    objs = [m for m in objs if m in tut.layout] or objs
    acts = [a for a in APPLIES[s.obj] if a != s.action]
    what = (["obj"] if objs else []) + (["action"] if acts else []) + (["paint"] if s.paint else [])
    pick = what[int(rng.integers(len(what)))]
    if pick == "obj":
        return describe(s, obj=objs[int(rng.integers(len(objs)))]), "obj"
    if pick == "action":
        other = acts[int(rng.integers(len(acts)))]
        return describe(s, action=other, paint=list(PAINTS)[int(rng.integers(len(PAINTS)))]), "action"
    pool = [c for c in PAINTS if c != s.paint]
    return describe(s, paint=pool[int(rng.integers(len(pool)))]), "paint"


def _choices(answer: str, tiers: list[list[str]], rng: np.random.Generator) -> list[str]:
    """``answer`` and four wrong answers taken tier by tier (each tier shuffled): plausible ones first, so the
    question's words alone do not rule the wrong answers out."""
    wrong: list[str] = []
    for tier in tiers:
        for c in rng.permutation(tier).tolist():
            if c != answer and c not in wrong and len(wrong) < 4:
                wrong.append(c)
    return [answer, *wrong]


def _question(s: Step, tut: Tutorial, rng: np.random.Generator) -> tuple[str, str, list[str]]:
    """One question about the step; its answer depends on the window (a tool or material may recur elsewhere).
    Only questions whose words leave at least three plausible answers are asked (what the roller flattens is
    always the dough), and their wrong answers are the plausible ones first (tools that work this material,
    materials this action works on, then materials in view), then anything."""
    kinds = (["colour"] if s.paint else []) + (["tool"] if len(APPLIES[s.obj]) >= 3 else []) + (
        ["material"] if len(_works_on(s.action)) >= 3 else [])
    kind = kinds[int(rng.integers(len(kinds)))]
    if kind == "colour":
        return f"What colour is the {s.obj} painted?", s.paint, list(PAINTS)
    if kind == "tool":
        fitting = [ACTION[a].tool for a in APPLIES[s.obj]]
        return f"Which tool is used on the {s.obj}?", s.tool, _choices(s.tool, [fitting, list(TOOLS)], rng)
    return (f"What is {ACTION[s.action].participle} with the {s.tool}?", s.obj,
            _choices(s.obj, [_works_on(s.action), list(tut.layout), _MATERIAL_NAMES], rng))


def annotate(tut: Tutorial, seed: int, ids: dict[str, int]) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """Yield ``(task, record, truth)`` for one tutorial. ``ids`` holds running id counters (shared across videos).

    truth: {"vid_name", "step"|"line"|"steps", "ts": the span the record must cover}.
    """
    rng = np.random.default_rng([seed, tut.index, 7, 2])
    vid, dur = tut.vid_name, tut.duration

    def next_id(key: str) -> int:
        ids[key] = ids.get(key, 0) + 1
        return ids[key]

    said_during = {ln.step: ln for ln in tut.lines if ln.step is not None}
    for s in tut.steps:
        ts = clamp_ts(s.start, s.end, dur)
        truth = {"vid_name": vid, "step": s.id, "ts": ts}
        yield "tvr", {"vid_name": vid, "duration": dur, "ts": ts, "desc": describe(s), "type": "v",
                      "desc_id": next_id("tvr")}, truth
        ln = said_during.get(s.id)
        if ln is not None and rng.random() < 0.6:
            span = clamp_ts(min(s.start, ln.start), max(s.end, ln.end), dur)
            desc = f"{describe(s).rstrip('.')} as the narrator explains \"{ln.text}\""
            yield "tvr", {"vid_name": vid, "duration": dur, "ts": span, "desc": desc, "type": "vt",
                          "desc_id": next_id("tvr")}, {"vid_name": vid, "step": s.id, "line": ln.id, "ts": span}
        n = next_id("violin")
        false, changed = _perturb(s, tut, rng)
        yield "violin", {"desc_id": f"{n}-1", "desc": describe(s), "vid_name": vid, "label": 1, "ts": ts}, truth
        yield "violin", {"desc_id": f"{n}-0", "desc": false, "vid_name": vid, "label": 0, "ts": ts}, {**truth, "changed": changed}
        cid = next_id("tvc")
        descs = [{"desc": describe(s), "desc_id": next_id("tvc_desc"), "type": "v"},
                 {"desc": paraphrase(s), "desc_id": next_id("tvc_desc"), "type": "v"}]
        yield "tvc", {"vid_name": vid, "duration": dur, "ts": ts, "clip_id": cid, "descs": descs}, truth
        q, answer, pool = _question(s, tut, rng)
        yield "tvqa", qa_record(q, answer, pool, ts, vid, next_id("tvqa"), rng, show=CHANNEL), truth
    for ln in tut.lines:
        if ln.kind != "aside":
            continue
        ts = clamp_ts(ln.start, ln.end, dur)
        truth = {"vid_name": vid, "line": ln.id, "ts": ts}
        _, _, question, pool = ASIDES[ln.topic]
        yield "tvr", {"vid_name": vid, "duration": dur, "ts": ts, "desc": _aside(ln), "type": "t",
                      "desc_id": next_id("tvr")}, truth
        yield "tvqa", qa_record(question, ln.value, list(pool), ts, vid, next_id("tvqa"), rng, show=CHANNEL), truth
        n = next_id("violin")
        wrong = [v for v in pool if v != ln.value][int(rng.integers(len(pool) - 1))]
        yield "violin", {"desc_id": f"{n}-1", "desc": _aside(ln), "vid_name": vid, "label": 1, "ts": ts}, truth
        yield "violin", {"desc_id": f"{n}-0", "desc": _aside(ln, wrong), "vid_name": vid, "label": 0, "ts": ts}, {
            **truth, "changed": "value"}
    for _ in range(min(2, len(tut.steps))):  # retrieval: whole-video descriptions (the project and two steps)
        pick = sorted(rng.choice(len(tut.steps), min(2, len(tut.steps)), replace=False).tolist())
        parts = [describe(tut.steps[i]).removeprefix("Someone ").rstrip(".") for i in pick]
        desc = f"A {tut.project} tutorial where someone " + " and then ".join(parts) + "."
        yield "retrieval", {"desc_id": next_id("retrieval"), "desc": desc, "vid_name": vid}, {"vid_name": vid, "steps": pick,
                                                                                            "ts": [0.0, dur]}
