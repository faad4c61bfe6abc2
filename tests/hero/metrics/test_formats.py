"""Every prediction format round-trips; every parser rejects malformed input naming the file and the line."""

import json
import os

import numpy as np
import pytest

from hero.metrics.formats import (
    CaptionPrediction, FormatError, QaAnswer, QueryPredictions, TvrSubmission, VideoRanking, ViolinLabel,
    rankings_from_scores, read_captions, read_qa_answers, read_rankings, read_tvr_submission,
    read_violin_labels, write_captions, write_qa_answers, write_rankings, write_tvr_submission,
    write_violin_labels,
)
from hero.storage.atomic import atomic_writer


def submission():
    p = np.array([[0, 1.5, 6.0, 0.9], [1, 0.0, 3.0, 0.5]])
    return TvrSubmission(
        video2idx={"vid_a": 0, "vid_b": 1},
        tasks={"VCMR": [QueryPredictions(90200, p, "a query"), QueryPredictions("x-1", np.zeros((0, 4)))],
               "VR": [QueryPredictions(90200, np.array([[1, 0, 0, 2.0], [0, 0, 0, 1.0]]))]})


def test_tvr_submission_round_trip(tmp_path):
    path = tmp_path / "val_predictions.json"
    sub = submission()
    write_tvr_submission(path, sub)
    back = read_tvr_submission(path)
    assert back.video2idx == sub.video2idx and set(back.tasks) == {"VCMR", "VR"}
    for task in sub.tasks:
        for a, b in zip(sub.tasks[task], back.tasks[task]):
            assert (a.desc_id, a.desc) == (b.desc_id, b.desc)
            np.testing.assert_array_equal(a.predictions, b.predictions)
    assert type(back.tasks["VCMR"][0].desc_id) is int and back.tasks["VCMR"][1].desc_id == "x-1"
    json.loads(path.read_text())                                     # plain JSON for the official evaluator


def _corrupt(tmp_path, edit):
    path = tmp_path / "sub.json"
    write_tvr_submission(path, submission())
    lines = path.read_text().splitlines()
    edit(lines)
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("old,new,line,match", [
    ("[1, 0.0, 3.0, 0.5]", "[1, 0.0, 3.0]", 3, r"VCMR\[0\]\.predictions\[1\]: expected \[video_idx"),
    ("[1, 0.0, 3.0, 0.5]", "[7, 0.0, 3.0, 0.5]", 3, "video_idx 7 is not a value of video2idx"),
    ("[1, 0.0, 3.0, 0.5]", "[1, 4.0, 3.0, 0.5]", 3, "start 4.0 > end 3.0"),
    ("[1, 0.0, 3.0, 0.5]", "[true, 0.0, 3.0, 0.5]", 3, "expected"),
    ('"desc_id": "x-1"', '"desc_id": 90200', 4, r"VCMR\[1\]: duplicate desc_id 90200"),
    ('"desc_id": "x-1"', '"id": 3', 4, r'VCMR\[1\]: "desc_id" must be'),
    ('"desc_id": "x-1", "desc": "", "predictions": []', '"desc_id": "x-1"', 4, 'missing field "predictions"'),
    ("[1, 0.0, 3.0, 0.5]", "[1, 0.0, NaN, 0.5]", None, "NaN is not valid JSON"),
    ("[1, 0.0, 3.0, 0.5]", "[1, 0.0, 1e400, 0.5]", 3, "finite numbers"),
    ("[1, 0.0, 3.0, 0.5]", "[1, 0.0, 3.0, " + "9" * 400 + "]", 3, "finite numbers"),
    ("[1, 0.0, 3.0, 0.5]]", "[1, 0.0, 3.0, 0.5]", 3, "invalid JSON"),
])
def test_tvr_submission_rejects_malformed_input(tmp_path, old, new, line, match):
    def edit(lines):
        i = next(i for i, s in enumerate(lines) if old in s)
        lines[i] = lines[i].replace(old, new, 1)

    path = _corrupt(tmp_path, edit)
    with pytest.raises(FormatError, match=match) as err:
        read_tvr_submission(path)
    assert str(err.value).startswith(str(path))
    if line is not None:
        assert err.value.line == line and f"{path}:{line}:" in str(err.value)


def test_tvr_submission_rejects_bad_top_level(tmp_path):
    path = tmp_path / "s.json"
    for doc, match in [([], "expected a JSON object"), ({"VCMR": []}, "video2idx"),
                       ({"video2idx": {}}, "no prediction list"), ({"video2idx": {}, "VMR": []}, "unknown top-level"),
                       ({"video2idx": {"a": 0, "b": 0}, "VR": []}, "share an index")]:
        path.write_text(json.dumps(doc))
        with pytest.raises(FormatError, match=match):
            read_tvr_submission(path)


def test_line_formats_round_trip(tmp_path):
    answers = [QaAnswer(1, 3), QaAnswer("q2", 0, ts=(1.5, 4.5))]
    write_qa_answers(tmp_path / "a.jsonl", answers)
    assert read_qa_answers(tmp_path / "a.jsonl") == answers
    labels = [ViolinLabel("v-0", 0), ViolinLabel("v-1", 1)]
    write_violin_labels(tmp_path / "v.jsonl", labels)
    assert read_violin_labels(tmp_path / "v.jsonl") == labels
    caps = [CaptionPrediction("friends_s01_clip_00", 86618, (5.8, 8.24), ("Rachel walks in.", "second")),
            CaptionPrediction("bbt_clip_01", "c2", (0.0, 1.0), ("",))]
    write_captions(tmp_path / "c.jsonl", caps)
    assert read_captions(tmp_path / "c.jsonl") == caps
    ranks = [VideoRanking(5, (("v1", 0.9), ("v0", 0.9), ("v2", -1.0)), desc="a dog"), VideoRanking("e", ())]
    write_rankings(tmp_path / "r.jsonl", ranks)
    assert read_rankings(tmp_path / "r.jsonl") == ranks


def test_captions_official_lines_and_errors(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text('{"clip_id": 86603, "descs": [{"desc": "phoebe talks ."}]}\n'
                    '{"vid_name": null, "clip_id": 86604, "ts": null, "descs": [{"desc": "x"}, {"desc": "y"}]}\n')
    assert read_captions(path) == [CaptionPrediction(None, 86603, None, ("phoebe talks .",)),
                                   CaptionPrediction(None, 86604, None, ("x", "y"))]
    write_captions(tmp_path / "w.jsonl", read_captions(path))
    first = (tmp_path / "w.jsonl").read_text().splitlines()[0]
    assert first == '{"clip_id": 86603, "descs": [{"desc": "phoebe talks ."}]}'
    path.write_text('{"clip_id": 1, "descs": [{"desc": "x"}]}\n{"clip_id": 1, "descs": [{"desc": "y"}]}\n')
    with pytest.raises(FormatError) as err:
        read_captions(path)
    assert str(err.value) == f"{path}:2: [prediction.bad_line] duplicate id 1 (first on line 1)"


def test_rankings_from_scores_keeps_ties_in_index_order():
    r = rankings_from_scores([7, 8], ["a", "b", "c"], [[0.5, 0.9, 0.5], [1.0, 1.0, 1.0]], top_k=2)
    assert r[0].ranked == (("b", 0.9), ("a", 0.5)) and [v for v, _ in r[1].ranked] == ["a", "b"]


GOOD = {
    "answers": ('{"qid": 1, "answer_idx": 2}', read_qa_answers),
    "violin": ('{"desc_id": "d-1", "label": 1}', read_violin_labels),
    "captions": ('{"vid_name": "v", "clip_id": 3, "ts": [0, 1], "descs": [{"desc": "x"}]}', read_captions),
    "rankings": ('{"desc_id": 4, "predictions": [["v1", 2.0], ["v2", 1.0]]}', read_rankings),
}
BAD = [
    ("answers", '{"qid": 1, "answer_idx": 2', "invalid JSON"),
    ("answers", '[1, 2]', "expected a JSON object"),
    ("answers", '{"qid": 5}', 'missing field "answer_idx"'),
    ("answers", '{"qid": 5, "answer_idx": "2"}', '"answer_idx" must be an integer'),
    ("answers", '{"qid": 5, "answer_idx": -1}', r'"answer_idx" must be >= 0, got -1'),
    ("answers", '{"qid": 5, "answer_idx": 1, "ts": [4, 2]}', "start 4.0 > end 2.0"),
    ("answers", '{"qid": true, "answer_idx": 1}', '"qid" must be'),
    ("answers", '{"qid": 1, "answer_idx": 0}', r"duplicate id 1 \(first on line 1\)"),
    ("violin", '{"desc_id": "d-2", "label": 2}', r'"label" must be in \[0, 1\]'),
    ("violin", '{"desc_id": "d-2", "label": Infinity}', "Infinity is not valid JSON"),
    ("captions", '{"vid_name": "v", "clip_id": 4, "ts": [0, 1], "descs": []}', '"descs" must be a non-empty'),
    ("captions", '{"vid_name": "v", "clip_id": 4, "ts": [0, 1], "descs": ["x"]}', r"descs\[0\] must be"),
    ("captions", '{"vid_name": "v", "clip_id": 4, "ts": [2, 1], "descs": [{"desc": "x"}]}', "start 2.0 > end 1.0"),
    ("captions", '{"vid_name": "v", "descs": [{"desc": "x"}]}', 'missing field "clip_id"'),
    ("rankings", '{"desc_id": 5, "predictions": [["v1", 1.0], ["v2", 2.0]]}', "above the previous"),
    ("rankings", '{"desc_id": 5, "predictions": [["v1", 1.0], ["v1", 0.0]]}', "ranked twice"),
    ("rankings", '{"desc_id": 5, "predictions": [["v1"]]}', r"predictions\[0\] must be \[vid_name"),
]


@pytest.mark.parametrize("fmt,bad,match", BAD)
def test_line_parsers_reject_malformed_lines(tmp_path, fmt, bad, match):
    good, reader = GOOD[fmt]
    path = tmp_path / f"{fmt}.jsonl"
    path.write_text(good + "\n\n" + bad + "\n")          # the blank line is skipped but still counted
    with pytest.raises(FormatError, match=match) as err:
        reader(path)
    assert err.value.line == 3 and str(err.value).startswith(f"{path}:3: ")


def test_non_utf8_is_rejected_with_the_line(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_bytes(b'{"qid": 1, "answer_idx": 0}\n{"qid": "\xff", "answer_idx": 0}\n')
    with pytest.raises(FormatError, match="not UTF-8") as err:
        read_qa_answers(path)
    assert err.value.line == 2


def test_atomic_writer_leaves_the_old_file_on_failure(tmp_path):
    path = tmp_path / "out" / "preds.jsonl"
    write_violin_labels(path, [ViolinLabel(1, 1)])
    before = path.read_text()
    with pytest.raises(RuntimeError):
        with atomic_writer(path) as f:
            f.write("half a fi")
            raise RuntimeError("crash mid-write")
    assert path.read_text() == before
    assert os.listdir(path.parent) == ["preds.jsonl"]        # no temp file left behind
    with pytest.raises(ValueError):                          # NaN never reaches disk
        write_rankings(path, [VideoRanking(1, (("v", float("nan")),))])
    assert path.read_text() == before
