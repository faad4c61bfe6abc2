"""The caption tokenisation of the official TVC evaluator, with Java or without.

The TVC evaluator (TVCaption standalone_eval/evaluate.py) replaces every non-ASCII character by a space
(``remove_nonascii``) and hands the captions to pycocoevalcap's ``PTBTokenizer``: Stanford CoreNLP 3.4.1's
``edu.stanford.nlp.process.PTBTokenizer -preserveLines -lowerCase`` (the jar ships inside pycocoevalcap) over
all references in one stream and all predictions in another, one caption per line, then drops the tokens in
``PUNCTUATIONS``. Two implementations of that tokenizer live here:

- `java_ptb_tokenize`: that jar, all streams in one JVM (``-ioFileList``: one input file per stream).
- `ptb_tokenize` (`hero.metrics.ptb_lexer`): a pure-Python port of the lexer for machines without Java, tested
  token for token against the jar.

Stream context matters at a few places (an abbreviation at the end of a line looks at the next line's start:
"the U.S." followed by a line "The ..." gives "u.s. ."), so both take whole streams, never single captions.
"""

from __future__ import annotations

import functools
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from hero.metrics.ptb_lexer import ptb_tokenize

PUNCTUATIONS = frozenset(["''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-",
                          ".", "?", "!", ",", ":", "-", "--", "...", ";"])
"""Tokens pycocoevalcap's PTBTokenizer drops after tokenising (upper-case brackets: the lower-cased
``-lrb-`` etc. that ``-lowerCase`` produces are therefore kept, as in the official scores)."""

# Characters the lexer reads as line ends (ASCII ones); a caption's own are made spaces so lines stay aligned.
_LINE_BREAKS = str.maketrans({"\n": " ", "\r": " ", "\x0b": " ", "\x0c": " "})


def remove_nonascii(text: str) -> str:
    """The TVC evaluator's: every character >= U+0080 becomes a space."""
    return "".join(c if ord(c) < 128 else " " for c in text)


def caption_line(text: str) -> str:
    """One caption as the evaluator writes it for the tokenizer: non-ASCII and line breaks made spaces.
    (pycocoevalcap replaces only ``\\n``; a ``\\r`` or form feed would shift all following lines there.)"""
    return remove_nonascii(text).translate(_LINE_BREAKS)


@functools.lru_cache(maxsize=1)
def corenlp_jar() -> Path | None:
    """stanford-corenlp-3.4.1.jar inside the installed pycocoevalcap (None when absent)."""
    try:
        import pycocoevalcap.tokenizer.ptbtokenizer as ptb
    except ImportError:
        return None
    jar = Path(ptb.__file__).with_name(ptb.STANFORD_CORENLP_3_4_1_JAR)
    return jar if jar.is_file() else None


def java_ptb_tokenize(streams: Sequence[Sequence[str]], java: str = "java",
                      timeout: float = 600.0) -> list[list[list[str]]]:
    """The jar itself, as pycocoevalcap runs it, each stream a file of its own, all in one JVM start.

    Args:
        streams: lists of lines (each through `caption_line`); every stream is lexed on its own, as the evaluator
            tokenises references and predictions in two calls.
    Returns:
        Per stream, per line, the lower-cased tokens (punctuation not yet removed).
    Raises:
        RuntimeError when the jar is missing or the JVM fails.
    """
    jar = corenlp_jar()
    if jar is None:
        raise RuntimeError("stanford-corenlp-3.4.1.jar not found in pycocoevalcap")
    out: list[list[list[str]]] = [[] for _ in streams]
    todo = [k for k, s in enumerate(streams) if s]
    if not todo:
        return out
    with tempfile.TemporaryDirectory(prefix="ptb-") as tmp:
        d = Path(tmp)
        for k in todo:
            (d / f"{k}.txt").write_bytes("\n".join(streams[k]).encode("ascii", errors="replace"))
        # relative names: -ioFileList splits its lines on whitespace, and the temp dir's path may have some
        (d / "files.txt").write_text("".join(f"{k}.txt {k}.tok\n" for k in todo))
        cmd = [java, "-cp", str(jar), "edu.stanford.nlp.process.PTBTokenizer", "-preserveLines", "-lowerCase",
               "-ioFileList", "files.txt"]
        proc = subprocess.run(cmd, cwd=d, capture_output=True, timeout=timeout)
        if proc.returncode != 0:
            err = proc.stderr.decode(errors="replace")[-500:]
            raise RuntimeError(f"PTBTokenizer failed ({proc.returncode}): {err}")
        for k in todo:
            lines = (d / f"{k}.tok").read_bytes().decode("utf-8").split("\n")
            if len(lines) != len(streams[k]):
                raise RuntimeError(f"PTBTokenizer returned {len(lines)} lines for {len(streams[k])}")
            out[k] = [line.rstrip().split(" ") if line.strip() else [] for line in lines]
    return out


__all__ = ["PUNCTUATIONS", "caption_line", "corenlp_jar", "java_ptb_tokenize", "ptb_tokenize", "remove_nonascii"]
