"""How2R / How2QA CSV ingestion (docs/formats.md): clip resolution, spans made clip-relative, and every bad line
reported as FILE:LINE: [rule] (docs/formats.md), skipped or fatal by ``on_error``."""

import numpy as np
import pytest

from hero.corpus import CorpusConfig, CorpusError, clip_name, how2qa_line, how2r_line, ingest_corpus
from hero.synth.render import encode_mp4

CLIPS = ("abc_60_70", "abc_120_130", "x-y_z_0_10", "plain")
"""Four 10-second videos: three named as clips of longer videos, one not."""

HOW2R = """\
abc,[60:70],[61.5:64],Someone glues the tile.
abc,[60.0:70.00],[60:70],"A query, with a comma"
x-y_z,[0:10],[2:3],query three
abc,[60:70],[65:66]
abc,[60:70],[6x:66],non-numeric time
abc,[60:70],[66:66],empty span
abc,[60:70],[50:55],before the clip
abc,[60:70],[65:71.5],overruns within tolerance
nope,[0:60],[1:2],unknown video
abc,[180:240],[181:182],unknown clip of a known video
broken,[0:10],[1:2],a clip that did not decode

abc,[60:70],"[61:62]"x,broken quoting
abc,[60:70],[68:75],overruns beyond tolerance
"""

HOW2QA = """\
abc,[61:64],plank,tile,sheet,What is glued?,the card
abc,[125:127.5],"red, dark",blue,green,"Which colour, exactly?",white
abc,[61:64],w1,w2,What?,right
abc,[90:95],w1,w2,w3,question,answer
abc,[69:75],w1,w2,w3,question,answer
abc,[61:abc],w1,w2,w3,question,answer
abc,[61:64],w1,,w3,question,answer
"""


@pytest.fixture(scope="module")
def how2_corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("how2")
    (root / "videos").mkdir()
    (root / "annotations").mkdir()
    for i, name in enumerate(CLIPS):
        img = np.full((32, 32, 3), 40 * i, np.uint8)
        encode_mp4((img for _ in range(40)), str(root / "videos" / f"{name}.mp4"), 4)
    (root / "videos" / "broken_0_10.mp4").write_bytes(b"not a video")
    (root / "annotations" / "how2r_val.csv").write_text(HOW2R)
    (root / "annotations" / "how2qa_val.csv").write_text(HOW2QA)
    return root


def _ingest(root, **kw):
    return ingest_corpus(CorpusConfig(path=str(root), tasks=("how2r", "how2qa"), on_error="skip", **kw))


def test_how2r_lines_become_moment_examples_on_their_clip(how2_corpus):
    m = _ingest(how2_corpus)
    got = [(e["id"], e["vid_name"], e["ts"], e["desc"], e["type"]) for e in m.tasks["how2r"]["val"]]
    assert got == [
        (1, "abc_60_70", [1.5, 4.0], "Someone glues the tile.", None),
        (2, "abc_60_70", [0.0, 10.0], "A query, with a comma", None),
        (3, "x-y_z_0_10", [2.0, 3.0], "query three", None),
        (8, "abc_60_70", [5.0, 10.0], "overruns within tolerance", None),  # the 1.5 s past the clip is cut off
    ]
    assert all(e["line"] == e["id"] for e in m.tasks["how2r"]["val"])


def test_how2qa_lines_become_four_answer_qa_examples(how2_corpus):
    m = _ingest(how2_corpus)
    ex = m.tasks["how2qa"]["val"]
    assert [(e["id"], e["vid_name"], e["ts"], e["q"]) for e in ex] == [
        (1, "abc_60_70", [1.0, 4.0], "What is glued?"),
        (2, "abc_120_130", [5.0, 7.5], "Which colour, exactly?"),  # the clip is the one whose window holds 125 s
    ]
    assert sorted(ex[0]["answers"]) == ["plank", "sheet", "the card", "tile"]
    assert ex[0]["answers"][ex[0]["answer_idx"]] == "the card"
    assert ex[1]["answers"][ex[1]["answer_idx"]] == "white" and "red, dark" in ex[1]["answers"]


def test_bad_lines_are_reported_with_file_line_and_rule(how2_corpus):
    m = _ingest(how2_corpus)
    r_file = str(how2_corpus / "annotations" / "how2r_val.csv")
    qa_file = str(how2_corpus / "annotations" / "how2qa_val.csv")
    msgs = [x for x in m.report["messages"] if ".csv:" in x]
    expected = [
        (r_file, 4, "annotation.bad_csv"), (r_file, 5, "annotation.bad_value"), (r_file, 6, "annotation.bad_value"),
        (r_file, 7, "annotation.span_outside_clip"), (r_file, 9, "annotation.missing_video"),
        (r_file, 10, "annotation.missing_video"), (r_file, 13, "annotation.bad_csv"),
        (r_file, 14, "annotation.span_outside_clip"),
        (qa_file, 3, "annotation.bad_csv"), (qa_file, 4, "annotation.missing_video"),
        (qa_file, 5, "annotation.span_outside_clip"), (qa_file, 6, "annotation.bad_value"),
        (qa_file, 7, "annotation.bad_value"),
    ]
    assert [x.split("] ", 1)[0] + "]" for x in msgs] == [f"{f}:{line}: [{rule}]" for f, line, rule in expected]
    by_line = {(x.split(":")[0], int(x.split(":")[1])): x.split("] ", 1)[1] for x in msgs}
    assert by_line[(r_file, 4)] == "how2r lines have 4 columns (video_id,[clip_st:clip_ed],[st:ed],query), got 3"
    assert by_line[(r_file, 5)] == "span '[6x:66]': times must be numbers of seconds"
    assert by_line[(r_file, 6)] == "span '[66:66]' does not start before it ends"
    assert by_line[(r_file, 7)] == ("span [50:55] is [-10:-5] in clip 'abc_60_70', which lasts 10.00 s "
                                    "(tolerance 2 s)")
    assert by_line[(r_file, 9)] == "clip 'nope_0_60' (video 'nope', [0:60]) is not a video of this corpus"
    assert by_line[(qa_file, 4)] == ("no clip of video 'abc' holds 90 s (its clips in this corpus: [60:70], "
                                     "[120:130])")
    assert by_line[(qa_file, 7)] == "wrong_2 is empty"
    assert m.report["skipped"]["annotation.bad_csv"] == 3
    assert m.report["skipped"]["video.undecodable"] == 1
    assert m.report["notes"]["annotation.of_skipped_video"] == 1  # line 11 names the clip that did not decode


def _good_videos(how2_corpus, root):
    """A corpus at ``root`` with the fixture's decodable videos (linked) and an empty annotations folder."""
    (root / "videos").mkdir()
    (root / "annotations").mkdir()
    for name in CLIPS:
        (root / "videos" / f"{name}.mp4").symlink_to(how2_corpus / "videos" / f"{name}.mp4")


def test_raise_stops_at_the_first_bad_line(how2_corpus, tmp_path):
    _good_videos(how2_corpus, tmp_path)
    (tmp_path / "annotations" / "how2r_train.csv").write_text(HOW2R.replace("broken,", "abc,"))
    with pytest.raises(CorpusError) as err:
        ingest_corpus(CorpusConfig(path=str(tmp_path), tasks=("how2r",)))
    assert (err.value.line, err.value.rule) == (4, "annotation.bad_csv")
    assert str(err.value).startswith(f"{tmp_path / 'annotations' / 'how2r_train.csv'}:4: [annotation.bad_csv]")


def test_tolerance_is_configurable(how2_corpus):
    strict = _ingest(how2_corpus, span_tolerance=0.0)
    assert [e["id"] for e in strict.tasks["how2r"]["val"]] == [1, 2, 3]  # line 8 overruns its clip by 1.5 s


def test_written_lines_read_back(how2_corpus, tmp_path):
    """The writers (used by the instructional generator) and the reader agree, quoting included; the correct
    answer's position varies from line to line."""
    _good_videos(how2_corpus, tmp_path)
    queries = [f'step {i}, with "quotes"' for i in range(12)]
    (tmp_path / "annotations" / "how2r_test.csv").write_text(
        "".join(how2r_line("abc", (120, 130), (120 + i * 0.5, 121.25 + i * 0.5), q) for i, q in enumerate(queries)))
    (tmp_path / "annotations" / "how2qa_test.csv").write_text(
        "".join(how2qa_line("abc", (61, 62.5), ["a", "b, c", "d"], f"question {i}?", "right") for i in range(12)))
    m = ingest_corpus(CorpusConfig(path=str(tmp_path), tasks=("how2r", "how2qa")))
    assert [e["desc"] for e in m.tasks["how2r"]["test"]] == queries
    assert [e["ts"] for e in m.tasks["how2r"]["test"]] == [[i * 0.5, 1.25 + i * 0.5] for i in range(12)]
    qa = m.tasks["how2qa"]["test"]
    assert all(e["answers"][e["answer_idx"]] == "right" and "b, c" in e["answers"] for e in qa)
    assert len({e["answer_idx"] for e in qa}) > 1
    assert clip_name("abc", 120.0, 130.0) == "abc_120_130" and clip_name("v", 1.25, 61.5) == "v_1.25_61.5"
