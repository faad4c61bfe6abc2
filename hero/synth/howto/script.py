"""Write one tutorial's script: the materials on the workspace, the steps over time (the ground-truth log) and
the narration (automatic-speech style: what the current step is, plus some off-topic talk)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from hero.corpus.how2 import clip_name
from hero.synth.howto.world import ACTIONS, APPLIES, ASIDES, CHATTER, NOT_AFTER, PAINTS, PROJECTS, STEP_LINES
from hero.synth.script import split_of

ACTION = {a.name: a for a in ACTIONS}
_SALT = 2
"""Seeds the tutorial RNG as ``[seed, index, _SALT]`` so it never replays a TV episode's stream (``[seed, index]``)."""
ROWS = {2: (40.0, 80.0), 3: (28.0, 60.0, 92.0)}
"""Row centres (y) of the materials on the 160x120 workspace, by how many there are."""


@dataclass
class Step:
    """One step: ``tool`` performs ``action`` on the material ``obj``; ``paint`` is the colour of a paint step."""

    id: int
    action: str
    tool: str
    obj: str
    start: float
    end: float
    paint: str | None = None


@dataclass
class Narration:
    """One subtitle. kind: "step" (describes step ``step``), "aside" (an off-topic fact: ``topic`` = ``value``),
    "chatter" (off-topic, no fact)."""

    id: int
    text: str
    start: float
    end: float
    kind: str
    step: int | None = None
    topic: str | None = None
    value: str | None = None


@dataclass
class Tutorial:
    index: int
    vid_name: str
    """The clip's name, ``<video_id>_<clip_start>_<clip_end>`` (hero.corpus.how2.clip_name)."""
    video_id: str
    """The longer (imaginary) source video the clip is cut from, as How2R / How2QA name videos."""
    clip_start: float
    """Where the clip starts in the source video, seconds (How2R / How2QA times are source-video times)."""
    split: str
    project: str
    duration: float
    layout: dict[str, list[float]]
    """Material -> centre [x, y] on the 160x120 workspace."""
    steps: list[Step] = field(default_factory=list)
    lines: list[Narration] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def object_phrase(step: Step) -> str:
    """'panel teal' for a paint step, else the material ('carrot'): what narration and queries name."""
    return f"{step.obj} {step.paint}" if step.paint else step.obj


def write_tutorial(seed: int, index: int, duration_range: tuple[float, float], num_videos: int = 10) -> Tutorial:
    """The script of tutorial ``index`` of ``num_videos``; a pure function of its arguments."""
    rng = np.random.default_rng([seed, index, _SALT])
    duration = float(round(float(rng.uniform(*duration_range))))  # whole seconds: frame-exact at any fps
    project = PROJECTS[int(rng.integers(len(PROJECTS)))]
    k = min(int(rng.integers(2, 4)), len(project.materials))
    mats = [project.materials[i] for i in rng.choice(len(project.materials), k, replace=False)]
    layout = {m: [round(80 + float(rng.uniform(-16, 16)), 1), y] for m, y in zip(mats, ROWS[k])}
    clip_start = 60.0 * int(rng.integers(0, 4))
    video_id = f"howto_{index:05d}"
    tut = Tutorial(index=index, vid_name=clip_name(video_id, clip_start, clip_start + duration), video_id=video_id,
                   clip_start=clip_start, split=split_of(index, num_videos), project=project.name, duration=duration,
                   layout=layout)
    done: set[tuple[str, str]] = set()
    finished: set[str] = set()  # materials cut apart (no further step)
    t = float(rng.uniform(0.4, 1.0))
    while True:
        options = [(a, m) for m in mats if m not in finished for a in APPLIES[m]
                   if (a, m) not in done and not any((b, m) in done for b in NOT_AFTER.get(a, ()))]
        dur = round(float(rng.uniform(2.2, 3.6)), 2)
        if not options or t + dur > duration - 0.3:
            break
        weights = np.array([0.5 if ACTION[a].terminal else 1.5 for a, _ in options])
        action, obj = options[int(rng.choice(len(options), p=weights / weights.sum()))]
        done.add((action, obj))
        if ACTION[action].terminal:
            finished.add(obj)
        paint = list(PAINTS)[int(rng.integers(len(PAINTS)))] if action == "paint" else None
        tut.steps.append(Step(len(tut.steps), action, ACTION[action].tool, obj, round(t, 2), round(t + dur, 2), paint))
        t += dur + float(rng.uniform(0.5, 1.5))
    _write_narration(tut, rng)
    return tut


def _write_narration(tut: Tutorial, rng: np.random.Generator) -> None:
    """Step lines (grounded in the frames), off-topic asides (facts only the subtitles carry) and chatter."""
    cands: list[Narration] = []
    for s in tut.steps:
        if rng.random() < 0.15:
            continue
        a = ACTION[s.action]
        text = STEP_LINES[int(rng.integers(len(STEP_LINES)))].format(v=a.name, g=a.gerund, o=object_phrase(s), t=s.tool)
        start = s.start + float(rng.uniform(0.0, 0.3)) * (s.end - s.start)
        end = min(start + float(rng.uniform(1.4, 2.4)), tut.duration - 0.05)
        cands.append(Narration(0, text, round(start, 2), round(end, 2), "step", s.id))
    topics: set[str] = set()
    for _ in range(max(1, int(tut.duration / 8))):
        start = float(rng.uniform(0.0, tut.duration - 2.0))
        end = min(start + float(rng.uniform(1.2, 2.0)), tut.duration - 0.05)
        if rng.random() < 0.6:
            topic = list(ASIDES)[int(rng.integers(len(ASIDES)))]
            line, _, _, pool = ASIDES[topic]
            value = pool[int(rng.integers(len(pool)))]
            if topic in topics:
                continue  # one fact per topic keeps text queries unambiguous
            topics.add(topic)
            cands.append(Narration(0, line.format(x=value), round(start, 2), round(end, 2), "aside", None, topic, value))
        else:
            cands.append(Narration(0, CHATTER[int(rng.integers(len(CHATTER)))], round(start, 2), round(end, 2), "chatter"))
    kept: list[Narration] = []
    for ln in sorted(cands, key=lambda ln: (ln.start, ln.end)):
        if kept and ln.start < kept[-1].end + 0.05:
            continue  # subtitles never overlap (the corpus contract rejects overlaps)
        ln.id = len(kept)
        kept.append(ln)
    tut.lines = kept
