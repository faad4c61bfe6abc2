import json

import pytest

from hero.corpus.errors import CorpusError, IngestReport
from hero.corpus.subtitles import parse_subtitle_text, parse_subtitles_jsonl, validate_subtitles

SRT = """1
00:00:01,000 --> 00:00:02,500
Alice: <i>hello</i>
there

2
00:00:03,000 --> 00:00:04,000
Bob: hi
"""

VTT = """WEBVTT

00:00:01.000 --> 00:00:02.500
Alice: hello

00:00:03.000 --> 00:00:04.000
Bob: hi
"""


def test_srt_and_vtt_parse_to_the_same_subtitles():
    srt = parse_subtitle_text(SRT, "a.srt", "srt")
    vtt = parse_subtitle_text(VTT, "a.vtt", "vtt")
    assert [(s.start, s.end) for s in srt] == [(s.start, s.end) for s in vtt] == [(1.0, 2.5), (3.0, 4.0)]
    assert srt[0].text == "Alice: hello there"  # tags stripped, lines joined
    assert [s.line for s in srt] == [2, 7]


def test_jsonl_subtitles():
    rows = [{"vid_name": "v1", "sub": [{"text": "a", "start": 0.5, "end": 1.0}]}, {"vid_name": "v2", "sub": []}]
    text = "\n".join(json.dumps(r) for r in rows) + "\n{broken\n"
    report = IngestReport()
    out = list(parse_subtitles_jsonl(text, "subs.jsonl", report, "skip"))
    assert [(v, len(s), ln) for v, s, ln in out] == [("v1", 1, 1), ("v2", 0, 2)]
    assert report.skipped == {"subtitle.unparsable": 1}
    with pytest.raises(CorpusError, match=r"subs.jsonl:3: \[subtitle.unparsable\]"):
        list(parse_subtitles_jsonl(text, "subs.jsonl", IngestReport(), "raise"))


@pytest.mark.parametrize(("times", "rule"), [
    ([(1.0, 2.0), (4.0, 3.0)], "subtitle.end_before_start"),
    ([(3.0, 4.0), (1.0, 2.0)], "subtitle.unsorted"),
    ([(1.0, 3.0), (2.0, 4.0)], "subtitle.overlap"),
])
def test_bad_subtitles_name_file_line_and_rule(times, rule):
    text = "\n".join(f"{i + 1}\n00:00:0{int(a)},000 --> 00:00:0{int(b)},000\nline {i}\n" for i, (a, b) in enumerate(times))
    subs = parse_subtitle_text(text, "x.srt", "srt")
    with pytest.raises(CorpusError) as err:
        validate_subtitles(subs, "x.srt", IngestReport(), "raise")
    assert err.value.rule == rule and err.value.file == "x.srt" and err.value.line == 6
    assert str(err.value).startswith(f"x.srt:6: [{rule}]")
    report = IngestReport()
    kept = validate_subtitles(subs, "x.srt", report, "skip")
    assert len(kept) == 1 and report.skipped == {rule: 1}


def test_touching_subtitles_are_not_overlapping():
    subs = parse_subtitle_text("1\n00:00:01,000 --> 00:00:02,000\na\n\n2\n00:00:02,000 --> 00:00:03,000\nb\n", "t.srt", "srt")
    assert len(validate_subtitles(subs, "t.srt", IngestReport(), "raise")) == 2
