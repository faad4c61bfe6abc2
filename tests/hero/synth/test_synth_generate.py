import hashlib
import json

import av
import pysubs2
import pytest

from hero.synth import SynthConfig, generate_corpus, load_episodes

TASKS = ("tvr", "tvqa", "violin", "tvc", "retrieval")


def _digest(root):
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(p.relative_to(root).as_posix().encode())
            h.update(p.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth") / "c"
    summary = generate_corpus(root, SynthConfig(size="tiny", seed=3, num_videos=10, workers=1))
    return root, summary


def test_deterministic_by_seed(corpus, tmp_path):
    root, _ = corpus
    again = tmp_path / "again"
    generate_corpus(again, SynthConfig(size="tiny", seed=3, num_videos=10, workers=2))  # workers do not matter
    assert _digest(again) == _digest(root)
    other = tmp_path / "other"
    generate_corpus(other, SynthConfig(size="tiny", seed=4, num_videos=10, workers=1))
    assert _digest(other) != _digest(root)


def test_files_open_with_pyav_and_pysubs2(corpus):
    root, summary = corpus
    videos = sorted((root / "videos").glob("*.mp4"))
    assert len(videos) == summary["videos"] == 10
    eps = {e["vid_name"]: e for e in load_episodes(root)}
    for v in videos[:3]:
        with av.open(str(v)) as c:
            s = c.streams.video[0]
            assert s.codec_context.name == "h264"
            frames = list(c.decode(video=0))
            assert (frames[0].width, frames[0].height) == (160, 120)
            assert len(frames) == round(eps[v.stem]["duration"] * 8)
        subs = pysubs2.load(str(root / "subtitles" / f"{v.stem}.srt"))
        assert len(subs) == len(eps[v.stem]["lines"]) > 0
        assert all(e.end > e.start for e in subs)
        assert all(a.end <= b.start for a, b in zip(subs, subs[1:]))


def test_all_tasks_and_splits_in_the_contract_format(corpus):
    root, _ = corpus
    keys = {
        "tvr": {"vid_name", "duration", "ts", "desc", "type", "desc_id"},
        "tvqa": {"qid", "q", "a0", "a1", "a2", "a3", "a4", "answer_idx", "ts", "vid_name", "show_name"},
        "violin": {"desc_id", "desc", "vid_name", "label", "ts"},
        "tvc": {"vid_name", "duration", "ts", "clip_id", "descs"},
        "retrieval": {"desc_id", "desc", "vid_name"},
    }
    types = set()
    for task in TASKS:
        for split in ("train", "val", "test"):
            lines = (root / "annotations" / f"{task}_{split}.jsonl").read_text().splitlines()
            assert lines, (task, split)
            for line in lines:
                rec = json.loads(line)
                assert set(rec) == keys[task]
                types.add(rec.get("type"))
    assert {"v", "t", "vt"} <= types


def test_annotations_match_the_event_log(corpus):
    """Every record's ts covers the event (or line) it was made from, and its text names the event's details."""
    root, _ = corpus
    eps = {e["vid_name"]: e for e in load_episodes(root)}
    truth = {(t["task"], str(t["id"])): t for t in map(json.loads, (root / "meta" / "truth.jsonl").read_text().splitlines())}
    checked = 0
    for task in TASKS:
        for split in ("train", "val", "test"):
            for line in (root / "annotations" / f"{task}_{split}.jsonl").read_text().splitlines():
                rec = json.loads(line)
                key = rec.get("desc_id", rec.get("qid", rec.get("clip_id")))
                gt = truth[(task, str(key))]
                ep = eps[rec["vid_name"]]
                assert ep["split"] == split
                if "ts" not in rec:
                    continue
                ts = [float(x) for x in rec["ts"].split("-")] if isinstance(rec["ts"], str) else rec["ts"]
                assert 0 <= ts[0] <= ts[1] <= ep["duration"]
                spans = []
                if "event" in gt:
                    e = ep["events"][gt["event"]]
                    spans.append((e["start"], e["end"]))
                    if task in ("tvr", "tvc") or (task == "violin" and rec["label"] == 1):
                        text = rec["desc"] if "desc" in rec else rec["descs"][0]["desc"]
                        assert e["actor"] in text and (e["obj"] is None or e["obj"] in text)
                if "line" in gt:
                    ln = ep["lines"][gt["line"]]
                    spans.append((ln["start"], ln["end"]))
                for st, ed in spans:
                    assert ts[0] <= st + 0.01 and ts[1] >= min(ed, ep["duration"]) - 0.01
                checked += 1
    assert checked > 100


def test_false_statements_differ_in_one_detail(corpus):
    root, _ = corpus
    recs = [json.loads(x) for x in (root / "annotations" / "violin_train.jsonl").read_text().splitlines()]
    by_pair = {}
    for r in recs:
        by_pair.setdefault(r["desc_id"].split("-")[0], {})[r["label"]] = r["desc"]
    for pair in by_pair.values():
        a, b = pair[1].rstrip(".").split(), pair[0].rstrip(".").split()
        if len(a) == len(b):
            assert sum(x != y for x, y in zip(a, b)) == 1, pair


def test_existing_output_is_not_clobbered(tmp_path):
    out = tmp_path / "c"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    with pytest.raises(FileExistsError):
        generate_corpus(out, SynthConfig(size="tiny", num_videos=1))
    assert (out / "keep.txt").read_text() == "x"


def test_cli(tmp_path, capsys):
    from hero.synth.__main__ import main

    assert main(["--out", str(tmp_path / "c"), "--size", "tiny", "--seed", "1", "--num-videos", "2"]) == 0
    assert json.loads(capsys.readouterr().out)["videos"] == 2
    assert len(list((tmp_path / "c" / "videos").glob("*.mp4"))) == 2
