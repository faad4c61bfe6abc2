"""The TVC evaluator's tokenisation: the pure-Python PTB tokenizer against the Stanford jar, and on its own."""

import logging
import shutil
from pathlib import Path

import pytest

from hero.metrics import captioning
from hero.metrics.captioning import CaptionEvalConfig, caption_metrics, tokenize_caption, tokenize_streams
from hero.metrics.ptb_tokenizer import caption_line, corenlp_jar, java_ptb_tokenize, ptb_tokenize, remove_nonascii

SENTENCES = Path(__file__).parent / "fixtures" / "ptb_sentences.txt"
needs_java = pytest.mark.skipif(shutil.which("java") is None or corenlp_jar() is None,
                                reason="the comparison needs java on PATH and pycocoevalcap's CoreNLP jar")


def _lines() -> list[str]:
    text = SENTENCES.read_text(encoding="utf-8").split("\n")
    return [caption_line(t) for t in text if t and not t.startswith("# ")]


def test_sentence_set_is_a_few_hundred_lines():
    assert len(_lines()) >= 300


@needs_java
def test_python_equals_the_jar_token_for_token():
    lines = _lines()
    # one stream as written, and reversed (each line then meets another neighbour), in one JVM
    java = java_ptb_tokenize([lines, lines[::-1]])
    for stream, expected in zip((lines, lines[::-1]), java, strict=True):
        got = ptb_tokenize(stream)
        assert len(got) == len(expected) == len(stream)
        for line, g, e in zip(stream, got, expected):
            assert g == e, line


def test_first_character_table_changes_nothing():
    lines = _lines()
    assert ptb_tokenize(lines) == ptb_tokenize(lines, by_first_char=False)


# Expected outputs of the Stanford jar (-preserveLines -lowerCase), checked by the test above where Java exists.
EDGE_CASES = {
    "Dr. Smith paid $5 for it.": ["dr.", "smith", "paid", "$", "5", "for", "it", "."],
    "Mr. and Mrs. Jones, etc., left": ["mr.", "and", "mrs.", "jones", ",", "etc.", ",", "left"],
    "She got an A. The end": ["she", "got", "an", "a", ".", "the", "end"],
    "She got an A.": ["she", "got", "an", "a."],
    "Ross cannot go, he's gonna stay": ["ross", "can", "not", "go", ",", "he", "'s", "gon", "na", "stay"],
    "Joey wanna gimme lemme gotta": ["joey", "wan", "na", "gim", "me", "lem", "me", "got", "ta"],
    "50% & # / + = * @ ~ ^ | \\": ["50", "%", "&", "#", "/", "+", "=", "*", "@", "~", "^", "|", "\\"],
    "@home #tag #1 AT&T at&t": ["@home", "#tag", "#", "1", "at&t", "at", "&", "t"],
    "Amy\u2019s \u201cgreat\u201d caf\u00e9": ["amy", "s", "great", "caf"],            # non-ASCII -> spaces first
    "Don't, can't; won't": ["do", "n't", ",", "ca", "n't", ";", "wo", "n't"],
    "He said \"hi\" to 'Bob' (twice) [sic] {x}": [
        "he", "said", "``", "hi", "''", "to", "`", "bob", "'", "-lrb-", "twice", "-rrb-", "-lsb-", "sic", "-rsb-",
        "-lcb-", "x", "-rcb-"],
    "Wait... what?! Yes -- no --- ok": ["wait", "...", "what", "?!", "yes", "--", "no", "--", "ok"],
    "3 1/2 cups, 1,000 and 3.5 at 12:30 on 12/25/2019": [
        "3\u00a01/2", "cups", ",", "1,000", "and", "3.5", "at", "12:30", "on", "12/25/2019"],
    "Call 555 123 4567 or (555) 123-4567": ["call", "555\u00a0123\u00a04567", "or", "-lrb-555-rrb-\u00a0123-4567"],
    "a t-shirt, and/or U.S.-based e-mail": ["a", "t-shirt", ",", "and/or", "u.s.-based", "e-mail"],
    "y'all c'mon O'Brien o'clock '90s 'em": ["y'", "all", "c'mon", "o'brien", "o'clock", "'90s", "'em"],
    "C++ and C# at www.google.com": ["c++", "and", "c#", "at", "www.google.com"],
    "&amp; &lt;b&gt; :) ;-) ok": ["&", "<", "b", ">", ":-rrb-", ";--rrb-", "ok"],
    "a smiley at the end ;-)": ["a", "smiley", "at", "the", "end", ";", "-", "-rrb-"],
}


@pytest.mark.parametrize("text", list(EDGE_CASES))
def test_python_tokenizer_edge_cases(text):
    assert ptb_tokenize([caption_line(text)]) == [EDGE_CASES[text]]


@needs_java
def test_edge_case_table_is_the_jars():
    texts = list(EDGE_CASES)
    assert java_ptb_tokenize([[caption_line(t) for t in texts]])[0] == [EDGE_CASES[t] for t in texts]


def test_a_line_end_depends_on_the_next_line():
    # "U.S." before a line starting with "The" repeats its period; before "then", or at the end, it does not
    assert ptb_tokenize(["in the U.S.", "The end"])[0] == ["in", "the", "u.s.", "."]
    assert ptb_tokenize(["in the U.S.", "then"])[0] == ["in", "the", "u.s."]
    assert ptb_tokenize(["in the U.S."])[0] == ["in", "the", "u.s."]


def test_caption_line_keeps_lines_aligned():
    assert remove_nonascii("caf\u00e9\u2019s") == "caf  s"
    assert caption_line("a\nb\rc\x0bd\x0ce\u2028f") == "a b c d e f"
    assert ptb_tokenize([caption_line("two\nlines"), "next"]) == [["two", "lines"], ["next"]]


def test_tokenize_caption_is_the_evaluators():
    assert tokenize_caption("Rachel's T-shirt, isn't it?") == ["rachel", "'s", "t-shirt", "is", "n't", "it"]
    assert tokenize_caption("He pays $1.5 at 5 o'clock... \u201cDon\u2019t\u201d go-- NOW!") == \
        ["he", "pays", "$", "1.5", "at", "5", "o'clock", "don", "t", "go", "now"]
    assert tokenize_caption("  ") == [] and tokenize_caption("Sheldon:  (laughs)") == ["sheldon", "-lrb-", "laughs", "-rrb-"]


def test_scores_follow_the_evaluators_tokens():
    # "cannot"/"gonna" split, "Dr." kept whole: the hypothesis equals the reference after tokenisation
    out = caption_metrics({"a": "Dr. Ross cannot go, he's gonna stay.", "b": "x y"},
                          {"a": ["dr. ross can not go he 's gon na stay"], "b": ["z w"]},
                          CaptionEvalConfig(meteor=False, tokenizer="python"))
    assert out["bleu4"] > 50.0 and out["rouge_l"] == pytest.approx(50.0)   # clip a: exact; clip b: no overlap


def test_tokenizer_used_is_logged_and_python_without_java(monkeypatch, caplog):
    monkeypatch.setattr(captioning, "java_path", lambda: None)
    monkeypatch.setattr(captioning, "_warned", set())
    with caplog.at_level(logging.INFO, logger="hero.metrics.captioning"):
        for _ in range(2):
            caption_metrics({"a": "a b"}, {"a": ["a b"]}, CaptionEvalConfig(meteor=False))
    assert sum("no `java` on PATH" in r.getMessage() for r in caplog.records) == 1
    assert sum("PTB tokenisation by the pure-Python port" in r.getMessage() for r in caplog.records) == 2
    with pytest.raises(RuntimeError, match="no `java`"):
        tokenize_streams([["a"]], "java")


@needs_java
def test_java_is_used_when_present(caplog):
    with caplog.at_level(logging.INFO, logger="hero.metrics.captioning"):
        caption_metrics({"a": "a b"}, {"a": ["a b"]}, CaptionEvalConfig(meteor=False))
    assert any("PTB tokenisation by the Stanford jar (java)" in r.getMessage() for r in caplog.records)
    (hyps, refs), used = tokenize_streams([["Dr. Who cannot."], ["Dr. Who", "can not"]])
    assert used == "java" and hyps == ["dr. who can not"] and refs == ["dr. who", "can not"]


def test_config_rejects_an_unknown_tokenizer():
    with pytest.raises(ValueError, match="tokenizer"):
        CaptionEvalConfig(tokenizer="spacy")
