"""Decoding annotation and subtitle files (``corpus.reader.encoding``).

``auto`` (the default) reads, in this order:
  1. a byte-order mark: UTF-8 (the mark is dropped) or UTF-16 LE/BE;
  2. UTF-8;
  3. cp1252, only when the whole file decodes under it and holds no well-formed UTF-8 multi-byte sequence.
     A file with both (UTF-8 text plus stray single bytes) fits no one encoding: it is not guessed at but
     reported. cp1252 rather than latin-1: it is what Windows editors write (curly quotes and dashes in
     0x80-0x9F), and it rejects 5 bytes, where latin-1 accepts any bytes at all (and turns 0x85 into a line
     break for ``str.splitlines``).
Any other value is a Python codec used as is (``utf-8`` also drops a UTF-8 mark).

Undecodable bytes break ``text.bad_encoding`` (``FILE:LINE: [text.bad_encoding] ...``). With on_error="skip"
a line-oriented file (JSONL, CSV) loses only its undecodable lines, read as UTF-8 (each counted), and a
subtitle file is skipped whole. Text is never decoded with replacement characters: a U+FFFD that the file
itself holds is kept and its lines are counted as the note ``text.replacement_char``.
"""

from __future__ import annotations

import codecs
import logging
import re

from hero.corpus.errors import CorpusError, IngestReport, OnError

logger = logging.getLogger(__name__)

AUTO = "auto"
FALLBACK = "cp1252"
"""The encoding ``auto`` falls back to for a file that is not UTF-8."""

_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))
# Well-formed UTF-8 multi-byte sequences (Unicode 15, table 3-7).
_UTF8_MULTI = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|\xe0[\xa0-\xbf][\x80-\xbf]|[\xe1-\xec\xee\xef][\x80-\xbf]{2}|\xed[\x80-\x9f][\x80-\xbf]"
    rb"|\xf0[\x90-\xbf][\x80-\xbf]{2}|[\xf1-\xf3][\x80-\xbf]{3}|\xf4[\x80-\x8f][\x80-\xbf]{2}")
_PROBE = '\n\r {}[]":,+-.0123456789abcXYZ'


def ascii_compatible(codec: str) -> bool:
    """Whether ``codec`` writes ASCII (newlines, JSON punctuation, digits, letters) as ASCII bytes."""
    try:
        return _PROBE.encode(codec) == _PROBE.encode("ascii")
    except (LookupError, UnicodeError):
        return False


def check_encoding(name: str) -> None:
    """Raise ValueError unless ``name`` is ``auto`` or an ASCII-compatible Python codec."""
    if name == AUTO:
        return
    try:
        codecs.lookup(name)
    except LookupError:
        raise ValueError(f"unknown encoding {name!r} (auto, utf-8, cp1252, latin-1, ...)") from None
    if not ascii_compatible(name):
        raise ValueError(f"encoding {name!r} does not write ASCII as ASCII; corpus files are line-oriented "
                         "(UTF-16 files with a byte-order mark are read by auto)")


def _where(body: bytes, pos: int) -> tuple[int, int]:
    """(line, byte column) of ``body[pos]``, both from 1."""
    return body.count(b"\n", 0, pos) + 1, pos - (body.rfind(b"\n", 0, pos) + 1) + 1


def _pick(data: bytes, encoding: str) -> tuple[str, bytes, str | None]:
    """(codec, bytes without a mark, why nothing fits or None). ``auto`` may answer cp1252."""
    if encoding != AUTO:
        bom = codecs.BOM_UTF8 if codecs.lookup(encoding).name == "utf-8" else b""
        return encoding, data[len(bom):] if bom and data.startswith(bom) else data, None
    for bom, codec in _BOMS:
        if data.startswith(bom):
            return codec, data[len(bom):], None
    try:
        data.decode("utf-8")
        return "utf-8", data, None
    except UnicodeDecodeError:
        pass
    if _UTF8_MULTI.search(data):
        return "utf-8", data, "; the file also holds UTF-8 text, so no one encoding fits (set corpus.reader.encoding)"
    try:
        data.decode(FALLBACK)
        return FALLBACK, data, None
    except UnicodeDecodeError:
        return "utf-8", data, f" nor {FALLBACK}"


def decode_text(data: bytes, file: str, encoding: str, report: IngestReport, on_error: OnError, *,
                by_line: bool = False) -> str | None:
    """Decode one annotation or subtitle file (see the module docstring for the rules).

    Args:
        encoding: ``auto`` or an ASCII-compatible Python codec (``corpus.reader.encoding``).
        by_line: the file is line-oriented (JSONL, CSV): under on_error="skip" its undecodable lines are left
            blank (line numbers keep) instead of the whole file being skipped.
    Returns:
        The text, or None when the file is skipped.
    Raises:
        CorpusError: rule ``text.bad_encoding`` under on_error="raise".
    """
    codec, body, why = _pick(data, encoding)
    name = codecs.lookup(codec).name
    try:
        text = body.decode(codec)
    except UnicodeDecodeError as err:
        reason = why if why is not None else ""
        if not (by_line and ascii_compatible(codec)):
            line, at = None, f"offset {err.start}"
            if ascii_compatible(codec):
                line, col = _where(body, err.start)
                at = f"column {col}"
            report.handle(CorpusError(file, "text.bad_encoding",
                                      f"byte 0x{body[err.start]:02x} at {at} is not {name}{reason}", line), on_error)
            return None
        text = _decode_lines(body, codec, name, reason, file, report, on_error)
    else:
        if codec == FALLBACK and encoding == AUTO:
            logger.warning("%s: not UTF-8, read as %s (corpus.reader.encoding: auto)", file, FALLBACK)
            report.note("text.cp1252_fallback")
    bad = sum("\ufffd" in ln for ln in text.splitlines())
    if bad:
        logger.warning("%s: %d line(s) hold U+FFFD (a replacement character in the file itself), kept", file, bad)
        report.note("text.replacement_char", bad)
    return text


def _decode_lines(body: bytes, codec: str, name: str, reason: str, file: str, report: IngestReport,
                  on_error: OnError) -> str:
    """Each ``\\n``-separated line decoded on its own; an undecodable one is reported and left blank."""
    out = []
    for line_no, raw in enumerate(body.split(b"\n"), 1):
        try:
            out.append(raw.decode(codec))
        except UnicodeDecodeError as err:
            report.handle(CorpusError(file, "text.bad_encoding",
                                      f"byte 0x{raw[err.start]:02x} at column {err.start + 1} is not {name}{reason}",
                                      line_no), on_error)
            out.append("")
    return "\n".join(out)
