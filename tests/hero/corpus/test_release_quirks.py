"""Quirks of the public TVQA / TVR / TVC release files, reproduced in hand-written lines, and their rules."""

import json
import re

import pytest

from hero.corpus import CorpusError, IngestReport, parse_annotations
from hero.metrics.formats import FormatError, read_caption_annotations, read_moment_annotations, read_qa_annotations

DUR = {"friends_s01e03_seg02_clip_19": 61.46, "s03e21_seg02_clip_08": 90.0}


def tvqa(qid, ts, **extra):
    return json.dumps({"qid": qid, "q": "Who?", "a0": "A", "a1": "B", "a2": "C", "a3": "D", "a4": "E", "ts": ts,
                       "vid_name": "s03e21_seg02_clip_08", "show_name": "The Big Bang Theory", **extra})


def parse(lines, task, split, on_error="raise"):
    report = IngestReport()
    out = parse_annotations("\n".join(lines), "ann.jsonl", task, split, DUR, report, on_error)
    return out, report


@pytest.mark.parametrize("on_error", ["raise", "skip"])
def test_nan_nan_ts_is_kept_as_no_timestamp(on_error):
    # TVQA's test release writes "NaN-NaN" on 3 of its 7,623 lines
    out, report = parse([tvqa(1, "48.62-60.02"), tvqa(2, "NaN-NaN")], "tvqa", "test", on_error)
    assert [e["ts"] for e in out] == [[48.62, 60.02], None] and [e["line"] for e in out] == [1, 2]
    assert report.skipped == {} and report.notes == {"annotation.ts_nan": 1, "annotation.unlabeled": 2}
    out, report = parse([tvqa(3, "NaN-NaN", answer_idx=2)], "tvqa", "val")     # labelled: accuracy still counts
    assert out[0]["ts"] is None and out[0]["answer_idx"] == 2 and report.notes == {"annotation.ts_nan": 1}


def test_other_non_finite_ts_and_a_tvc_clip_without_its_moment_are_bad_values():
    with pytest.raises(CorpusError, match=r"ann\.jsonl:1: \[annotation\.bad_value\] ts '1.5-NaN'"):
        parse([tvqa(1, "1.5-NaN")], "tvqa", "test")
    tvc = json.dumps({"vid_name": "s03e21_seg02_clip_08", "ts": "NaN-NaN", "clip_id": 7, "descs": [{"desc": "x"}]})
    with pytest.raises(CorpusError, match=r"ann\.jsonl:1: \[annotation\.bad_value\] .*needs its moment"):
        parse([tvc], "tvc", "train")


def test_tvr_query_without_type_is_kept_and_counted():
    line = {"vid_name": "friends_s01e03_seg02_clip_19", "duration": 61.46, "ts": [16.48, 33.87], "desc": "d",
            "desc_id": 90200}
    out, report = parse([json.dumps(line), json.dumps({**line, "desc_id": 1, "type": "vt"})], "tvr", "val")
    assert [e["type"] for e in out] == [None, "vt"] and report.notes == {"annotation.no_type": 1}


TEST_LINES = {  # the fields each public test release keeps
    "tvr": '{"desc": "Phoebe puts one of her ponytails in her mouth.", "desc_id": 107711}',
    "tvqa": tvqa(137648, "NaN-NaN"),
    "tvc": '{"vid_name": "friends_s01e03_seg02_clip_19", "duration": 61.46, "ts": [12.61, 15.01], "clip_id": 102867}',
}


@pytest.mark.parametrize("task", sorted(TEST_LINES))
def test_test_lines_without_labels_are_ingested_for_prediction_and_refused_by_scoring(task, tmp_path):
    (ex,), report = parse([TEST_LINES[task]], task, "test")
    assert report.notes.get("annotation.unlabeled") == 1 and report.skipped == {}
    assert {"tvr": ex.get("vid_name"), "tvqa": ex.get("answer_idx"), "tvc": ex.get("descs")}[task] in (None, [])
    path = tmp_path / f"{task}_test.jsonl"
    path.write_text(TEST_LINES[task] + "\n")
    reader = {"tvr": read_moment_annotations, "tvqa": read_qa_annotations, "tvc": read_caption_annotations}[task]
    with pytest.raises(FormatError, match="no ground truth") as err:
        reader(path)
    assert str(err.value).startswith(f"{path}:1: [score.no_ground_truth] no ")


def test_a_cut_short_manifest_fails_naming_its_file(tmp_path):
    from hero.corpus.manifest import Manifest

    path = tmp_path / "manifest-x.json"
    path.write_text('{"version": 1, "root": "/c", "clip_len": 1.5, "videos": {"a": {"vid_')
    with pytest.raises(ValueError, match=rf"^{re.escape(str(path))}: not a whole manifest \(JSON error at line 1"):
        Manifest.load(path)
