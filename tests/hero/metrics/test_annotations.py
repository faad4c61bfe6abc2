"""Ground-truth readers: the annotation lines of docs/formats.md, and malformed ones named by file and line."""

import pytest

from hero.metrics import qa_metrics
from hero.metrics.formats import (
    FormatError, QaAnswer, read_caption_annotations, read_moment_annotations, read_qa_annotations,
    read_retrieval_annotations, read_violin_annotations,
)

TVR = ('{"vid_name": "friends_s01e03_seg02_clip_19", "duration": 61.46, "ts": [16.48, 33.87], '
       '"desc": "Phoebe puts one of her ponytails in her mouth.", "type": "v", "desc_id": 90200}')
DIDEMO = '{"vid_name": "d1", "ts": [[0, 5], [0, 5], [5, 10], [0, 10]], "desc": "x", "desc_id": 3}'
TVQA = ('{"a0": "A", "a1": "B", "a2": "C", "a3": "D", "a4": "E", "answer_idx": 4, "q": "Who?", "qid": 137292, '
        '"show_name": "The Big Bang Theory", "ts": "48.62-60.02", "vid_name": "s03e21_seg02_clip_08"}')
TVC = ('{"vid_name": "friends_s08e08_seg01_clip_00", "duration": 61.03, "ts": [5.8, 8.24], "clip_id": 86618, '
       '"descs": [{"desc": "Rachael walks up.", "type": "v", "desc_id": 109026}, {"desc": "Two."}]}')


def write(tmp_path, *lines):
    path = tmp_path / "ann.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_reads_the_public_formats(tmp_path):
    (a, b) = read_moment_annotations(write(tmp_path, TVR, DIDEMO))
    assert a.spans == ((16.48, 33.87),) and a.type == "v" and a.desc_id == 90200
    assert len(b.spans) == 4 and b.type is None
    (q,) = read_qa_annotations(write(tmp_path, TVQA))
    assert (q.answer_idx, q.num_answers, q.ts) == (4, 5, (48.62, 60.02))
    (c,) = read_caption_annotations(write(tmp_path, TVC))
    assert c.refs == ("Rachael walks up.", "Two.") and c.clip_id == 86618
    (v,) = read_violin_annotations(write(tmp_path, '{"desc_id": "c-1", "desc": "s", "vid_name": "x", "label": 1}'))
    assert v.label == 1
    (r,) = read_retrieval_annotations(write(tmp_path, '{"desc_id": 1, "desc": "s", "vid_name": "video7"}'))
    assert r.vid_name == "video7"


@pytest.mark.parametrize("reader,bad,match", [
    (read_moment_annotations, '{"desc": "no labels", "desc_id": 107711}', "no ground truth"),
    (read_moment_annotations, TVR.replace('"v"', '"x"'), '"type" must be one of'),
    (read_moment_annotations, TVR.replace("[16.48, 33.87]", "[33.87, 16.48]"), "start 33.87 > end 16.48"),
    (read_moment_annotations, TVR.replace("[16.48, 33.87]", "[16.48]"), r'"ts" must be \[start, end\]'),
    (read_qa_annotations, TVQA.replace('"48.62-60.02"', '"48.62 to 60.02"'), r'"ts" must be "start-end"'),
    (read_qa_annotations, TVQA.replace('"answer_idx": 4', '"answer_idx": 5'), r'"answer_idx" must be in \[0, 4\]'),
    (read_caption_annotations, TVC.replace('"clip_id": 86618, ', ""), 'missing field "clip_id"'),
    (read_violin_annotations, '{"desc_id": "c-1", "vid_name": "x"}', "no ground truth"),
    (read_retrieval_annotations, '{"desc_id": 1, "vid_name": 7}', '"vid_name" must be a string'),
])
def test_rejects_malformed_annotations(tmp_path, reader, bad, match):
    ok = {read_moment_annotations: TVR.replace("90200", "1"), read_qa_annotations: TVQA.replace("137292", "1"),
          read_caption_annotations: TVC.replace("86618", "1"),
          read_violin_annotations: '{"desc_id": "c-0", "vid_name": "x", "label": 0}',
          read_retrieval_annotations: '{"desc_id": 0, "vid_name": "v"}'}[reader]
    path = write(tmp_path, ok, bad)
    with pytest.raises(FormatError, match=match) as err:
        reader(path)
    assert err.value.line == 2 and str(err.value).startswith(f"{path}:2: ")


def test_nan_nan_ts_counts_for_accuracy_not_localisation(tmp_path):
    untimed = TVQA.replace("137292", "1").replace('"48.62-60.02"', '"NaN-NaN"')
    (q, r) = read_qa_annotations(write(tmp_path, TVQA, untimed))
    assert q.ts == (48.62, 60.02) and r.ts is None and r.answer_idx == 4
    out = qa_metrics([QaAnswer(137292, 4, ts=(48.62, 60.02)), QaAnswer(1, 4, ts=(0.0, 1.0))], [q, r])
    assert out["acc"] == 100.0 and out["loc_miou"] == pytest.approx(100.0)   # only the timed question is localised


def test_duplicate_ids_in_the_ground_truth(tmp_path):
    with pytest.raises(FormatError, match=r"duplicate id 90200 \(first on line 1\)"):
        read_moment_annotations(write(tmp_path, TVR, TVR))
