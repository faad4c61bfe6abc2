"""corpus.reader.encoding: UTF-8 (with a mark or not), the cp1252 fallback of auto, bad bytes named by file and
line, and no U+FFFD entering the text unnoticed."""

import json

import pytest

from hero.config import ConfigError, from_dict
from hero.corpus import CorpusConfig, CorpusError, IngestReport, ingest_corpus
from hero.corpus.encoding import decode_text

UTF8 = 'caf\u00e9 \u2019'.encode()                    # é and a right single quote, as UTF-8
CP1252 = b"caf\xe9 \x92"                              # the same text as Windows writes it


def decode(data, encoding="auto", on_error="raise", by_line=True):
    report = IngestReport()
    return decode_text(data, "f.jsonl", encoding, report, on_error, by_line=by_line), report


@pytest.mark.parametrize("data", [UTF8, b"\xef\xbb\xbf" + UTF8, "caf\u00e9 \u2019".encode("utf-16")])
def test_utf8_and_byte_order_marks(data):
    text, report = decode(data)
    assert text == "caf\u00e9 \u2019" and report.notes == {} and report.skipped == {}


def test_auto_falls_back_to_cp1252_for_a_clean_non_utf8_file():
    text, report = decode(b"line one\n" + CP1252 + b"\n")
    assert text == "line one\ncaf\u00e9 \u2019\n" and report.notes == {"text.cp1252_fallback": 1}
    text, _ = decode(CP1252, encoding="cp1252")                         # configured: no note
    assert text == "caf\u00e9 \u2019"


def test_a_mixed_file_is_not_guessed_at():
    data = UTF8 + b"\n" + b"na\xefve\n"                                 # UTF-8, then a lone latin-1 byte
    with pytest.raises(CorpusError, match=r"f\.jsonl:2: \[text\.bad_encoding\] byte 0xef at column 3 is not utf-8; "
                                          "the file also holds UTF-8 text"):
        decode(data)
    text, report = decode(data, on_error="skip")                       # the UTF-8 line is kept intact
    assert text.splitlines() == ["caf\u00e9 \u2019", ""] and report.skipped == {"text.bad_encoding": 1}


def test_configured_encoding_reports_each_bad_line_or_skips_a_whole_subtitle_file():
    data = b'{"a": 1}\n{"a": "\xe9"}\n{"a": 3}\n{"a": "\xe8"}\n'
    text, report = decode(data, encoding="utf-8", on_error="skip")
    assert [ln for ln in text.splitlines() if ln] == ['{"a": 1}', '{"a": 3}']
    assert report.skipped == {"text.bad_encoding": 2}
    assert report.messages[1].startswith("f.jsonl:4: [text.bad_encoding] byte 0xe8 at column 8 is not utf-8")
    text, report = decode(b"1\n00:00:01,000 --> 00:00:02,000\n\x81\n", by_line=False, on_error="skip")
    assert text is None
    assert report.messages == ["f.jsonl:3: [text.bad_encoding] byte 0x81 at column 1 is not utf-8 nor cp1252"]


def test_a_replacement_character_in_the_file_is_counted():
    text, report = decode("ok\nbroken \ufffd\n".encode())
    assert "\ufffd" in text and report.notes == {"text.replacement_char": 1}


def _latin1_line(path, line_no):
    lines = path.read_bytes().split(b"\n")
    obj = json.loads(lines[line_no - 1])
    key = "desc" if "desc" in obj else "q"
    obj[key] = "Ren\u00e9e " + obj[key]
    lines[line_no - 1] = json.dumps(obj, ensure_ascii=False).encode("latin-1")
    path.write_bytes(b"\n".join(lines))
    return key


def test_ingest_reads_a_latin1_annotation_and_a_cp1252_srt(corpus_copy):
    key = _latin1_line(corpus_copy / "annotations" / "tvr_val.jsonl", 2)
    srt = sorted((corpus_copy / "subtitles").glob("*.srt"))[0]
    lines = srt.read_bytes().split(b"\n")
    lines[2] = "Caf\u00e9 \u2019".encode("cp1252")                     # the first subtitle's text
    srt.write_bytes(b"\n".join(lines))
    m = ingest_corpus(CorpusConfig(path=str(corpus_copy)))
    assert m.tasks["tvr"]["val"][1][key].startswith("Ren\u00e9e ")
    assert m.videos[srt.stem].subs[0][0] == "Caf\u00e9 \u2019"
    assert m.report["notes"]["text.cp1252_fallback"] == 2 and m.report["total_skipped"] == 0
    assert "\ufffd" not in json.dumps(m.to_dict(), ensure_ascii=False)


def test_ingest_with_utf8_configured_skips_and_counts(corpus_copy):
    ann = corpus_copy / "annotations" / "tvqa_train.jsonl"
    _latin1_line(ann, 3)
    n = len(ann.read_bytes().strip().split(b"\n"))
    with pytest.raises(CorpusError) as err:
        ingest_corpus(CorpusConfig(path=str(corpus_copy), encoding="utf-8"))
    assert (err.value.rule, err.value.line) == ("text.bad_encoding", 3) and err.value.file.endswith("tvqa_train.jsonl")
    m = ingest_corpus(CorpusConfig(path=str(corpus_copy), encoding="utf-8", on_error="skip"))
    assert len(m.tasks["tvqa"]["train"]) == n - 1 and m.report["skipped"] == {"text.bad_encoding": 1}


def test_encoding_is_validated():
    assert CorpusConfig(path=".", encoding="latin-1").encoding == "latin-1"
    for bad in ("nope", "utf-16"):
        with pytest.raises(ConfigError, match="corpus.encoding"):
            CorpusConfig(path=".", encoding=bad)
    assert from_dict(CorpusConfig, {"path": ".", "encoding": "cp1252"}).encoding == "cp1252"


def test_cli_takes_the_encoding_and_prints_the_notes(corpus_copy, tmp_path, capsys):
    from hero.corpus.__main__ import main

    _latin1_line(corpus_copy / "annotations" / "violin_val.jsonl", 1)
    out = ["--corpus", str(corpus_copy), "--out", str(tmp_path / "m.json")]
    assert main([*out, "--encoding", "nope"]) == 2
    assert "corpus.encoding: unknown encoding 'nope'" in capsys.readouterr().err
    assert main(out) == 0
    assert json.loads(capsys.readouterr().out)["notes"] == {"text.cp1252_fallback": 1}
    assert main([*out, "--encoding", "utf-8"]) == 2
    assert "violin_val.jsonl:1: [text.bad_encoding] byte 0xe9" in capsys.readouterr().err
