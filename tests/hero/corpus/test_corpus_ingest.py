import json
import os
import shutil

import pytest

from hero.corpus import CorpusConfig, CorpusError, Manifest, ingest_corpus, write_manifest
from hero.synth import load_episodes


def test_ingest_synthetic_corpus(tiny_corpus, tmp_path):
    m = ingest_corpus(CorpusConfig(path=str(tiny_corpus)))
    eps = {e["vid_name"]: e for e in load_episodes(tiny_corpus)}
    assert set(m.videos) == set(eps)
    for name, v in m.videos.items():
        assert v.duration == pytest.approx(eps[name]["duration"], abs=1e-6)
        assert v.num_clips == -(-int(eps[name]["duration"] * 2) // 3)  # ceil(duration / 1.5)
        assert len(v.subs) == len(eps[name]["lines"]) == len(v.sub_clips)
        assigned = sorted([c for cl in v.sub_clips for c in cl] + v.unmatched)
        assert assigned == list(range(v.num_clips))  # every clip is matched once or unmatched
    assert set(m.tasks) == {"tvr", "tvqa", "violin", "tvc", "retrieval"}
    assert all(set(m.tasks[t]) == {"train", "val", "test"} for t in m.tasks)
    ex = m.tasks["tvqa"]["train"][0]
    assert len(ex["answers"]) == 5 and ex["ts"][0] <= ex["ts"][1]
    assert m.report["total_skipped"] == 0
    path = tmp_path / "manifest.json"
    write_manifest(m, path)
    again = Manifest.load(path)
    assert again.to_dict() == json.loads(json.dumps(m.to_dict()))
    assert again.split_videos("val") and set(again.split_videos("train")).isdisjoint(again.split_videos("val"))


def test_user_folder_with_srt_and_tvr_queries(tiny_corpus, tmp_path):
    """A user's own layout (different folder names, .srt + a TVR file only) needs nothing but config."""
    root = tmp_path / "mine"
    (root / "clips").mkdir(parents=True)
    (root / "captions").mkdir()
    (root / "queries").mkdir()
    for v in sorted((tiny_corpus / "videos").glob("*.mp4"))[:2]:
        shutil.copy(v, root / "clips" / f"my_{v.name}")
        shutil.copy(tiny_corpus / "subtitles" / f"{v.stem}.srt", root / "captions" / f"my_{v.stem}.srt")
    rows = [json.loads(x) for x in (tiny_corpus / "annotations" / "tvr_train.jsonl").read_text().splitlines()]
    mine = [{**r, "vid_name": f"my_{r['vid_name']}"} for r in rows if (root / "clips" / f"my_{r['vid_name']}.mp4").exists()]
    (root / "queries" / "tvr_train.jsonl").write_text("\n".join(json.dumps(r) for r in mine))
    cfg = CorpusConfig(path=str(root), videos_dir="clips", subtitles_dir="captions", annotations_dir="queries")
    m = ingest_corpus(cfg)
    assert len(m.videos) == 2 and all(v.subs for v in m.videos.values())
    assert len(m.tasks["tvr"]["train"]) == len(mine) > 0


def test_subtitles_jsonl_is_used_when_no_srt(corpus_copy):
    eps = {e["vid_name"]: e for e in load_episodes(corpus_copy)}
    shutil.rmtree(corpus_copy / "subtitles")
    with open(corpus_copy / "subtitles.jsonl", "w") as f:
        for name, ep in eps.items():
            f.write(json.dumps({"vid_name": name, "sub": [{"text": f"{ln['speaker']}: {ln['text']}", "start": ln["start"],
                                                             "end": ln["end"]} for ln in ep["lines"]]}) + "\n")
    m = ingest_corpus(CorpusConfig(path=str(corpus_copy), tasks=()))
    for name, v in m.videos.items():
        assert [s[1:] for s in v.subs] == [[ln["start"], ln["end"]] for ln in eps[name]["lines"]]


def _rewrite_line(path, line_no, fn):
    lines = path.read_text().splitlines()
    lines[line_no - 1] = fn(lines[line_no - 1])
    path.write_text("\n".join(lines) + "\n")


def _overlap_second(path):
    """Start subtitle 2 (timing on line 6) one tick before subtitle 1 (line 2) ends."""
    first_end = path.read_text().splitlines()[1].split(" --> ")[1]
    hms, ms = first_end.split(",")
    _rewrite_line(path, 6, lambda s: f"{hms},{int(ms) - 1:03d} --> " + s.split(" --> ")[1] if int(ms) else
                  f"{hms[:-2]}{int(hms[-2:]) - 1:02d},999 --> " + s.split(" --> ")[1])


def _swap_first_two(path):
    """Swap the timings of subtitles 1 (line 2) and 2 (line 6): the second now starts before the first."""
    lines = path.read_text().splitlines()
    lines[1], lines[5] = lines[5], lines[1]
    path.write_text("\n".join(lines) + "\n")


def _first(corpus):
    return sorted((corpus / "videos").glob("*.mp4"))[0].stem


BAD_INPUTS = {
    "video.undecodable": lambda c: (c / "videos" / f"{_first(c)}.mp4").write_bytes(b"not a video at all" * 100),
    "subtitle.end_before_start": lambda c: _rewrite_line(c / "subtitles" / f"{_first(c)}.srt", 2,
                                                         lambda s: s.split(" --> ")[0] + " --> 00:00:00,100"),
    "subtitle.overlap": lambda c: _overlap_second(c / "subtitles" / f"{_first(c)}.srt"),
    "subtitle.unsorted": lambda c: _swap_first_two(c / "subtitles" / f"{_first(c)}.srt"),
    "annotation.missing_video": lambda c: _rewrite_line(c / "annotations" / "tvr_train.jsonl", 2,
                                                        lambda s: json.dumps({**json.loads(s), "vid_name": "nope"})),
    "annotation.ts_outside_video": lambda c: _rewrite_line(c / "annotations" / "tvc_train.jsonl", 3,
                                                           lambda s: json.dumps({**json.loads(s), "ts": [1.0, 999.0]})),
    "annotation.bad_json": lambda c: _rewrite_line(c / "annotations" / "violin_val.jsonl", 1, lambda s: s[:-3]),
    "annotation.missing_key": lambda c: _rewrite_line(c / "annotations" / "tvqa_train.jsonl", 1,
                                                      lambda s: json.dumps({k: v for k, v in json.loads(s).items() if k != "a3"})),
}
WHERE = {
    "video.undecodable": (lambda c: f"videos/{_first(c)}.mp4", None),
    "subtitle.end_before_start": (lambda c: f"subtitles/{_first(c)}.srt", 2),
    "subtitle.overlap": (lambda c: f"subtitles/{_first(c)}.srt", 6),
    "subtitle.unsorted": (lambda c: f"subtitles/{_first(c)}.srt", 6),
    "annotation.missing_video": (lambda c: "annotations/tvr_train.jsonl", 2),
    "annotation.ts_outside_video": (lambda c: "annotations/tvc_train.jsonl", 3),
    "annotation.bad_json": (lambda c: "annotations/violin_val.jsonl", 1),
    "annotation.missing_key": (lambda c: "annotations/tvqa_train.jsonl", 1),
}


@pytest.mark.parametrize("rule", sorted(BAD_INPUTS))
def test_bad_input_is_an_error_naming_file_line_rule_and_leaves_no_artifact(rule, corpus_copy, tmp_path):
    BAD_INPUTS[rule](corpus_copy)
    out = tmp_path / "out" / "manifest.json"
    with pytest.raises(CorpusError) as err:
        write_manifest(ingest_corpus(CorpusConfig(path=str(corpus_copy))), out)
    rel, line = WHERE[rule]
    assert err.value.rule == rule
    assert err.value.file.endswith(rel(corpus_copy)) and err.value.line == line
    assert f"[{rule}]" in str(err.value)
    assert not out.exists() and not (out.parent.exists() and os.listdir(out.parent))
    # with on_error=skip: a warning, a count in the report, and everything else ingested
    m = ingest_corpus(CorpusConfig(path=str(corpus_copy), on_error="skip"))
    assert m.report["skipped"] == {rule: 1}
    assert m.report["messages"][0].startswith(err.value.file)


def test_failed_manifest_write_leaves_the_old_one(corpus_copy, tmp_path, monkeypatch):
    m = ingest_corpus(CorpusConfig(path=str(corpus_copy), tasks=()))
    (tmp_path / "out").mkdir()
    path = tmp_path / "out" / "manifest.json"
    path.write_text("old")

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OSError):
        write_manifest(m, path)
    assert path.read_text() == "old" and os.listdir(tmp_path / "out") == ["manifest.json"]


def test_config_is_validated():
    from hero.config import ConfigError, from_dict

    with pytest.raises(ConfigError, match="clip_len"):
        CorpusConfig(path=".", clip_len=0)
    with pytest.raises(ConfigError, match="unknown key"):
        from_dict(CorpusConfig, {"path": ".", "clip_length": 2})
    with pytest.raises(ConfigError, match="tasks"):
        CorpusConfig(path=".", tasks=("vqa",))
