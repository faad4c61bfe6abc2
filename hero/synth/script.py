"""Write one episode's script: who is where, the events over time (the ground-truth log) and the dialogue."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from hero.synth.world import ACTOR_LINES, CHARACTERS, CHAT, OTHER_LINES, PLACES, THINGS

X_MIN, X_MAX, OFFSCREEN = 16, 144, (-14, 174)


@dataclass
class Event:
    """One action. The actor moves from x0 to x1 during it; ``obj``/``target`` where the action has them."""

    id: int
    kind: str
    actor: str
    start: float
    end: float
    x0: float
    x1: float
    obj: str | None = None
    target: str | None = None


@dataclass
class Line:
    """One subtitle. kind: "actor" (the actor speaks about the action), "other" (someone else does), "chat"."""

    id: int
    speaker: str
    text: str
    start: float
    end: float
    kind: str
    event: int | None = None
    topic: str | None = None
    value: str | None = None


@dataclass
class Episode:
    index: int
    vid_name: str
    split: str
    place: str
    duration: float
    cast: list[str]
    start_x: dict[str, float]
    """Initial x of each cast member; those absent at the start are off screen (x outside [0, 160))."""
    floor: dict[str, float]
    """Initial floor x of each object in the scene."""
    events: list[Event] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def _free_x(rng: np.random.Generator, taken: list[float], min_gap: float = 20.0) -> float:
    for _ in range(50):
        x = float(rng.uniform(X_MIN, X_MAX))
        if all(abs(x - t) >= min_gap for t in taken):
            return round(x, 1)
    return round(float(rng.uniform(X_MIN, X_MAX)), 1)


def split_of(index: int, num_videos: int) -> str:
    """80/10/10 by index (every 10th video from the 9th is val, from the 10th test); a corpus of fewer than ten
    videos still gets one val and one test video (its last two) when it has at least three."""
    if num_videos < 10:
        back = num_videos - index
        return "test" if back == 1 and num_videos >= 3 else ("val" if back == 2 and num_videos >= 3 else "train")
    r = index % 10
    return "train" if r < 8 else ("val" if r == 8 else "test")


def write_episode(seed: int, index: int, duration_range: tuple[float, float], num_videos: int = 10) -> Episode:
    """The script of episode ``index`` of ``num_videos``; a pure function of its arguments."""
    rng = np.random.default_rng([seed, index])
    duration = round(float(rng.uniform(*duration_range)) * 2) / 2  # whole half-seconds: frame-exact at any fps
    place = PLACES[int(rng.integers(len(PLACES)))].name
    cast = [CHARACTERS[i].name for i in rng.choice(len(CHARACTERS), int(rng.integers(2, 5)), replace=False)]
    late = cast[-1] if rng.random() < 0.5 else None
    x: dict[str, float] = {}
    for c in cast:
        x[c] = float(OFFSCREEN[int(rng.integers(2))]) if c == late else _free_x(rng, list(x.values()))
    floor = {}
    for t in rng.choice(len(THINGS), int(rng.integers(2, 4)), replace=False):
        floor[THINGS[t].name] = _free_x(rng, list(floor.values()), 14.0)
    ep = Episode(index=index, vid_name=f"synth_{index:05d}", split=split_of(index, num_videos), place=place, duration=duration,
                 cast=cast, start_x=dict(x), floor=dict(floor))
    present = {c for c in cast if c != late}
    held: dict[str, str] = {}  # actor -> object
    done: set[tuple] = set()
    t = float(rng.uniform(0.3, 1.2))
    while True:
        options = []
        for a in sorted(present):
            free = a not in held
            options += [("wave", a, None, None), ("jump", a, None, None), ("walk", a, None, None)]
            if free and len(present) >= 2:
                options.append(("leave", a, None, None))
            if free:
                options += [("pick_up", a, o, None) for o in floor]
            else:
                options.append(("put_down", a, held[a], None))
                options += [("give", a, held[a], b) for b in sorted(present) if b != a and b not in held]
        options += [("enter", a, None, None) for a in cast if a not in present and a not in {e.actor for e in ep.events if e.kind == "leave"}]
        options = [o for o in options if o not in done]
        weights = np.array([{"enter": 4, "pick_up": 3, "give": 4, "put_down": 2, "leave": 1}.get(o[0], 1.5) for o in options])
        dur = round(float(rng.uniform(2.0, 3.6)), 2)
        if not options or t + dur > duration - 0.3:
            break
        kind, a, o, b = options[int(rng.choice(len(options), p=weights / weights.sum()))]
        done.add((kind, a, o, b))
        x0 = x[a]
        if kind == "enter":
            x1 = _free_x(rng, [x[c] for c in present])
            present.add(a)
        elif kind == "leave":
            x1 = float(OFFSCREEN[0] if x0 < 80 else OFFSCREEN[1])
            present.discard(a)
        elif kind == "walk":
            x1 = _free_x(rng, [x0] + [x[c] for c in present if c != a], 30.0)
        elif kind == "pick_up":
            x1 = floor.pop(o)
            held[a] = o
        elif kind == "put_down":
            x1 = x0
            floor[o] = round(min(max(x0 + 9, X_MIN), X_MAX), 1)
            del held[a]
        elif kind == "give":
            x1 = round(x[b] - 16 if x[b] > x0 else x[b] + 16, 1)
            held[b] = held.pop(a)
        else:
            x1 = x0
        x[a] = x1
        ep.events.append(Event(len(ep.events), kind, a, round(t, 2), round(t + dur, 2), x0, x1, o, b))
        t += dur + float(rng.uniform(0.6, 2.4))
    _write_dialogue(ep, rng)
    return ep


def present_at(ep: Episode, t: float) -> list[str]:
    """Cast members on screen at time ``t``."""
    out = []
    for c in ep.cast:
        on = 0 <= ep.start_x[c] < 160
        for e in ep.events:
            if e.actor == c and e.kind == "enter" and e.start <= t:
                on = True
            if e.actor == c and e.kind == "leave" and e.end <= t:
                on = False
        if on:
            out.append(c)
    return out


def _write_dialogue(ep: Episode, rng: np.random.Generator) -> None:
    """Lines about the events (grounded in the frames) plus chat lines (facts only the subtitles carry)."""
    cands: list[Line] = []
    for e in ep.events:
        if rng.random() < 0.2:
            continue
        others = [c for c in present_at(ep, e.start) if c != e.actor]
        by_actor = not others or rng.random() < 0.6
        pool = ACTOR_LINES[e.kind] if by_actor else OTHER_LINES[e.kind]
        text = pool[int(rng.integers(len(pool)))].format(a=e.actor, o=e.obj, t=e.target, p=ep.place)
        speaker = e.actor if by_actor else others[int(rng.integers(len(others)))]
        start = e.start + float(rng.uniform(0.0, 0.4)) * (e.end - e.start)
        end = min(start + float(rng.uniform(1.2, 2.2)), ep.duration - 0.05)
        cands.append(Line(0, speaker, text, round(start, 2), round(end, 2), "actor" if by_actor else "other", e.id))
    for _ in range(max(1, int(ep.duration / 9))):
        start = float(rng.uniform(0.0, ep.duration - 2.0))
        speakers = present_at(ep, start)
        if not speakers:
            continue
        topic = list(CHAT)[int(rng.integers(len(CHAT)))]
        line, _, _, pool = CHAT[topic]
        value = pool[int(rng.integers(len(pool)))]
        speaker = speakers[int(rng.integers(len(speakers)))]
        if any(ln.kind == "chat" and ln.speaker == speaker and ln.topic == topic for ln in cands):
            continue  # one fact per speaker and topic keeps text queries unambiguous
        end = min(start + float(rng.uniform(1.2, 2.0)), ep.duration - 0.05)
        cands.append(Line(0, speaker, line.format(x=value), round(start, 2), round(end, 2), "chat", None, topic, value))
    kept: list[Line] = []
    for ln in sorted(cands, key=lambda ln: (ln.start, ln.end)):
        if kept and ln.start < kept[-1].end + 0.05:
            continue  # subtitles never overlap (the corpus contract rejects overlaps)
        ln.id = len(kept)
        kept.append(ln)
    ep.lines = kept
