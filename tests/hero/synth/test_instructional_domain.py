"""The instructional (how-to) synthetic domain: deterministic, in the corpus contract, disjoint from the TV domain
in words, colours and video names, every step visible, and its How2R / How2QA CSV twin ingests to the same
examples as its TVR / TVQA files."""

import dataclasses
import hashlib
import json
import math
import re

import numpy as np
import pysubs2
import pytest

import hero.synth.howto.world as howto_world
import hero.synth.world as tv_world
from hero.corpus import CorpusConfig, ingest_corpus
from hero.synth import SynthConfig, generate_corpus, load_episodes
from hero.synth.howto.annotate import annotate
from hero.synth.howto.render import ENTER, LEAVE, frame_at
from hero.synth.howto.script import ACTION, write_tutorial
from hero.synth.howto.world import APPLIES
from hero.synth.render import HAIR, SKIN, frames
from hero.synth.script import write_episode

TASKS = ("tvr", "tvqa", "violin", "tvc", "retrieval")
FUNCTION_WORDS = {"a", "am", "an", "and", "as", "at", "does", "for", "i", "in", "is", "it", "my", "now", "of", "on",
                  "so", "that", "the", "then", "this", "to", "what", "where", "which", "who", "with", "you", "your"}
"""Words both domains may use: grammar, not content."""


def _digest(root, skip_suffix=None):
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.suffix != skip_suffix:
            h.update(p.relative_to(root).as_posix().encode())
            h.update(p.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def howto(tmp_path_factory):
    root = tmp_path_factory.mktemp("howto") / "c"
    generate_corpus(root, SynthConfig(size="tiny", seed=5, num_videos=4, workers=1, domain="instructional", how2_csv=True))
    return root


@pytest.fixture(scope="module")
def tv(tmp_path_factory):
    root = tmp_path_factory.mktemp("tv") / "c"
    generate_corpus(root, SynthConfig(size="tiny", seed=3, num_videos=3, workers=1))
    return root


def test_deterministic_by_seed(howto, tmp_path):
    again = tmp_path / "again"
    generate_corpus(again, SynthConfig(size="tiny", seed=5, num_videos=4, workers=2, domain="instructional", how2_csv=True))
    assert _digest(again) == _digest(howto)
    other = tmp_path / "other"
    generate_corpus(other, SynthConfig(size="tiny", seed=6, num_videos=4, workers=1, domain="instructional", how2_csv=True))
    assert _digest(other) != _digest(howto)


def test_tv_domain_is_unchanged(tv):
    """The tv corpus of a seed is what it was before domains existed (digests taken then): annotations, subtitles
    and metadata byte for byte, and the rendered frames (the mp4 bytes also depend on the x264 build)."""
    assert _digest(tv, skip_suffix=".mp4") == "36fbe9dc0245d6a4bae410a7565f59c193583d30cb38929407056913623ed0b5"
    h = hashlib.sha256()
    for f in frames(write_episode(3, 1, (12.0, 18.0), 3), 8):
        h.update(f.tobytes())
    assert h.hexdigest() == "e6c4d238dab560c165008656810fc2ca7077319d870cb75749360ca44863992a"
    assert SynthConfig().domain == "tv"


def test_same_files_and_formats_as_the_tv_domain(howto, tv):
    for task in TASKS:
        for split in ("train", "val", "test"):
            mine = [json.loads(x) for x in (howto / "annotations" / f"{task}_{split}.jsonl").read_text().splitlines()]
            theirs = json.loads((tv / "annotations" / f"{task}_{split}.jsonl").read_text().splitlines()[0])
            assert mine, (task, split)
            assert all(set(r) == set(theirs) for r in mine), (task, split)
    types = {json.loads(x)["type"] for x in (howto / "annotations" / "tvr_train.jsonl").read_text().splitlines()}
    assert {"v", "vt"} <= types
    config = json.loads((howto / "meta" / "config.json").read_text())
    assert config["domain"] == "instructional" and "domain" not in json.loads((tv / "meta" / "config.json").read_text())


def test_annotations_match_the_step_log(howto):
    """Every record covers the step (or narration line) it was made from, and its text names that step's
    material and tool."""
    tuts = {t["vid_name"]: t for t in load_episodes(howto)}
    truth = {(t["task"], str(t["id"])): t for t in map(json.loads, (howto / "meta" / "truth.jsonl").read_text().splitlines())}
    checked = 0
    for task in TASKS:
        for split in ("train", "val", "test"):
            for line in (howto / "annotations" / f"{task}_{split}.jsonl").read_text().splitlines():
                rec = json.loads(line)
                gt = truth[(task, str(rec.get("desc_id", rec.get("qid", rec.get("clip_id")))))]
                tut = tuts[rec["vid_name"]]
                assert tut["split"] == split and rec["vid_name"].startswith("howto_")
                if "ts" not in rec:
                    continue
                ts = [float(x) for x in rec["ts"].split("-")] if isinstance(rec["ts"], str) else rec["ts"]
                spans = []
                if "step" in gt:
                    s = tut["steps"][gt["step"]]
                    spans.append((s["start"], s["end"]))
                    if task in ("tvr", "tvc") or (task == "violin" and rec["label"] == 1):
                        text = rec["desc"] if "desc" in rec else rec["descs"][0]["desc"]
                        assert s["obj"] in text and s["tool"] in text
                if "line" in gt:
                    ln = tut["lines"][gt["line"]]
                    spans.append((ln["start"], ln["end"]))
                for st, ed in spans:
                    assert ts[0] <= st + 0.01 and ts[1] >= min(ed, tut["duration"]) - 0.01
                checked += 1
    assert checked > 40


def test_narration_reads_like_speech_recognition(howto):
    """Lower case, no punctuation, no speaker names; step lines name the step being performed; some lines are
    off-topic."""
    kinds = []
    for tut in load_episodes(howto):
        subs = pysubs2.load(str(howto / "subtitles" / f"{tut['vid_name']}.srt"))
        assert [s.text for s in subs] == [ln["text"] for ln in tut["lines"]]
        for ln in tut["lines"]:
            assert re.fullmatch(r"[a-z ]+", ln["text"]), ln["text"]
            kinds.append(ln["kind"])
            if ln["kind"] == "step":
                step = tut["steps"][ln["step"]]
                assert step["start"] <= ln["start"] < step["end"]
    assert "step" in kinds and {"aside", "chatter"} & set(kinds)
    # over many tutorials, every kind of line occurs
    many = {ln.kind for i in range(40) for ln in write_tutorial(0, i, (24.0, 40.0), 40).lines}
    assert many == {"step", "aside", "chatter"}


def _strings(obj):
    if isinstance(obj, str):
        yield obj
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        for f in dataclasses.fields(obj):
            yield from _strings(getattr(obj, f.name))
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from _strings(k)
            yield from _strings(v)
    elif isinstance(obj, (list, tuple)):
        for x in obj:
            yield from _strings(x)


def _words(text):
    return set(re.findall(r"[a-z]+", re.sub(r"\{[a-z]+\}", " ", text).lower()))


def _world_words(module):
    return {w for name in dir(module) if name.isupper() for s in _strings(getattr(module, name)) for w in _words(s)}


def _corpus_words(root):
    out = set()
    for p in (root / "annotations").glob("*.jsonl"):
        for rec in map(json.loads, p.read_text().splitlines()):
            for text in [rec.get(k, "") for k in ("desc", "q", "a0", "a1", "a2", "a3", "a4", "show_name")]:
                out |= _words(str(text))
            out |= {w for d in rec.get("descs", []) for w in _words(d["desc"])}
    for p in (root / "subtitles").glob("*.srt"):
        out |= {w for s in pysubs2.load(str(p)) for w in _words(s.text)}
    return out


def test_the_domains_share_only_function_words(howto, tv):
    """No content word (object, action, tool, place, name, topic, answer) is shared: a model pretrained on one
    domain cannot read the other's queries through shared words."""
    tv_words = _world_words(tv_world) | _corpus_words(tv)
    howto_words = _world_words(howto_world) | _corpus_words(howto)
    assert len(tv_words) > 100 and len(howto_words) > 100
    assert tv_words & howto_words <= FUNCTION_WORDS, sorted(tv_words & howto_words - FUNCTION_WORDS)


def test_the_domains_share_no_colour(howto, tv):
    """Every colour of the how-to world keeps an RGB distance >= 30 from every colour of the TV world, and the
    video names differ (corpora of both domains mix without a clash)."""

    def colours(module):
        return {v for name in dir(module) if name.isupper() for v in _flat_rgb(getattr(module, name))}

    tv_colours = colours(tv_world) | {SKIN, HAIR}
    mine = colours(howto_world)
    assert len(mine) > 30
    closest = min((math.dist(a, b), a, b) for a in mine for b in tv_colours)
    assert closest[0] >= 30, closest
    assert not {p.stem for p in (tv / "videos").iterdir()} & {p.stem for p in (howto / "videos").iterdir()}


def _flat_rgb(obj):
    if isinstance(obj, tuple) and len(obj) == 3 and all(isinstance(x, int) for x in obj):
        yield obj
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        for f in dataclasses.fields(obj):
            yield from _flat_rgb(getattr(obj, f.name))
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _flat_rgb(v)
    elif isinstance(obj, (list, tuple)):
        for x in obj:
            yield from _flat_rgb(x)


def test_every_step_is_visible():
    """While a step runs its tool is in view (the frame differs from the one just before), and afterwards the
    material is changed for good (the material's box differs from before the step) -- for every kind of action."""
    seen = set()
    for i in range(30):
        tut = write_tutorial(1, i, (24.0, 40.0), 30)
        for s in tut.steps:
            length = s.end - s.start
            before = frame_at(tut, s.start - 0.05).astype(int)
            working = frame_at(tut, s.start + length * (ENTER + LEAVE) / 2).astype(int)
            after = frame_at(tut, s.end + 0.05).astype(int)
            moving = int(np.abs(working - before).sum(-1).astype(bool).sum())
            assert moving > 40, (tut.vid_name, s, moving)
            cx, cy = tut.layout[s.obj]
            box = (slice(max(int(cy) - 20, 0), int(cy) + 20), slice(max(int(cx) - 45, 0), int(cx) + 45))
            changed = int(np.abs(after[box] - before[box]).sum(-1).astype(bool).sum())
            assert changed > 8, (tut.vid_name, s, changed)
            seen.add(s.action)
    assert seen == set(ACTION)


def test_text_alone_does_not_decide():
    """False statements describe steps that could happen (the action works on that material, with its own tool),
    and a question about a tool or a material offers at least three answers its words allow: only the video
    tells the true statement or the right answer."""
    third = {a.third: a for a in ACTION.values()}
    ids, checked = {}, 0
    for i in range(40):
        for task, rec, _ in annotate(write_tutorial(2, i, (24.0, 40.0), 40), 2, ids):
            if task == "violin" and rec["desc"].startswith("Someone"):
                verb, _, obj, *rest = rec["desc"].rstrip(".").split()[1:]
                act = third[verb]
                assert act.name in APPLIES[obj] and rest[-1] == act.tool, rec
                checked += 1
            elif task == "tvqa" and rec["q"].startswith(("Which tool", "What is")) and "weather" not in rec["q"]:
                answers = [rec[f"a{k}"] for k in range(5)]
                if rec["q"].startswith("Which tool"):
                    obj = rec["q"].rstrip("?").split()[-1]
                    plausible = [a for a in answers if any(x.tool == a for x in ACTION.values() if x.name in APPLIES[obj])]
                else:
                    act = next(x for x in ACTION.values() if f" {x.participle} " in rec["q"])
                    plausible = [a for a in answers if act.name in APPLIES.get(a, ())]
                assert len(plausible) >= 3, rec
                checked += 1
    assert checked > 300


def test_how2_csv_twin_ingests_to_the_same_examples(howto):
    """ingest_corpus on the generated corpus: zero errors, and each How2R / How2QA line (times in the source video)
    lands on the clip with the TVR / TVQA record's span."""
    m = ingest_corpus(CorpusConfig(path=str(howto), on_error="raise"))
    assert m.report["total_skipped"] == 0 and m.report["skipped"] == {}
    assert set(m.tasks) == {*TASKS, "how2r", "how2qa"}
    for split in ("train", "val", "test"):
        tvr, how2r = m.tasks["tvr"][split], m.tasks["how2r"][split]
        assert [(e["vid_name"], e["desc"]) for e in tvr] == [(e["vid_name"], e["desc"]) for e in how2r]
        assert all(a["ts"] == pytest.approx(b["ts"], abs=1e-6) for a, b in zip(tvr, how2r))
        tvqa, how2qa = m.tasks["tvqa"][split], m.tasks["how2qa"][split]
        assert len(tvqa) == len(how2qa) > 0
        for a, b in zip(tvqa, how2qa):
            assert (a["vid_name"], a["q"]) == (b["vid_name"], b["q"]) and a["ts"] == pytest.approx(b["ts"], abs=1e-6)
            assert len(b["answers"]) == 4 and set(b["answers"]) < set(a["answers"])
            assert b["answers"][b["answer_idx"]] == a["answers"][a["answer_idx"]]


def test_cli_domain(tmp_path, capsys):
    from hero.synth.__main__ import main

    assert main(["--out", str(tmp_path / "c"), "--size", "tiny", "--num-videos", "1", "--domain", "instructional"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["domain"] == "instructional" and out["videos"] == 1
    assert [p.name.split("_")[0] for p in (tmp_path / "c" / "videos").iterdir()] == ["howto"]
    assert main(["--out", str(tmp_path / "d"), "--size", "tiny", "--num-videos", "1", "--how2-csv"]) == 2
    assert "only the instructional domain" in capsys.readouterr().err
