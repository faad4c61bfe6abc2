"""A pure-Python port of Stanford CoreNLP 3.4.1's PTBLexer, as pycocoevalcap runs it (``-preserveLines -lowerCase``).

For machines without Java (`hero.metrics.ptb_tokenizer` runs the jar itself when it can). The rules follow the
lexer's specification for ASCII input, which is all the TVC evaluator feeds it: JFlex picks the longest match over
all rules, a rule's trailing context counting towards its length, ties going to the earlier rule; literal words
match in either case, character classes only as written. Output is checked token for token against the jar
(tests/hero/metrics/test_ptb_tokenizer.py). Not ported: the non-ASCII rules, and the strictTreebank3 / other options
pycocoevalcap never sets.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence


def _ci(s: str) -> str:
    """JFlex %caseless for a literal pattern: each letter outside [...] matches both cases."""
    out, in_class, escaped = [], False, False
    for c in s:
        if escaped:
            out.append(c)
            escaped = False
        elif c == "\\":
            out.append(c)
            escaped = True
        elif c == "[":
            in_class = True
            out.append(c)
        elif c == "]":
            in_class = False
            out.append(c)
        elif c.isalpha() and not in_class:
            out.append(f"[{c.lower()}{c.upper()}]")
        else:
            out.append(c)
    return "".join(out)


_SPLET = "&[aeiouAEIOU]" + _ci("(?:acute|grave|uml)") + ";"
_LETTER = f"(?:[A-Za-z]|{_SPLET})"
_LD = f"(?:[A-Za-z0-9]|{_SPLET})"
_WORD = f"{_LETTER}{_LD}*(?:[.!?]{_LETTER}{_LD}*)*"
_APOS = "(?:'|" + _ci("&apos;") + ")"
_APOSETC = "(?:'|`|" + _ci("&apos;") + ")"
_REDAUX = f"{_APOS}(?:[msdMSD]|{_ci('re|ve|ll')})"
_SWORD = "[A-Za-z]*[A-MO-Za-mo-z]"
_SREDAUX = _ci("n") + _APOSETC + _ci("t")
_SPACE = "[ \t]"
_NL = "(?:\r\n|[\r\n\x0b\x0c])"
_SPACENL = f"(?:{_SPACE}|{_NL})"
_SPACENLS = "[ \t\r\n\x0b\x0c]+"
_SGML = (r"<(?:[!?][A-Za-z\-][^>\r\n]*|[A-Za-z][A-Za-z0-9_:.\-]*(?:[ ]+(?:[A-Za-z][A-Za-z0-9_:.\-]*[ ]*=[ ]*"
         r"""(?:'[^']*'|"[^"]*")|[A-Za-z][A-Za-z0-9_:.\-]*))*[ ]*/?|/[A-Za-z][A-Za-z0-9_:.\-]*)[ ]*>""")
_SENTEND = f"{_SPACENL}(?:{_SPACENL}|[A-Z]|{_SGML})"
_NUMS = ("[-+]?[0-9]+", "[-+]?[0-9]*(?:[.:,][0-9]+)+")
_FRAC = r"(?:[0-9]{1,4}[- ])?[0-9]{1,4}\\?/[0-9]{1,4}"
_FILENAME_EXT = _ci("(?:" + "|".join(sorted(
    "bat bmp c class cgi cpp dll doc docx exe gif gz h htm html jar java jpeg jpg mov mp3 pdf php pl png ppt ps "
    "py sql tar txt wav x xml zip".split(), key=len, reverse=True)) + ")")
_FILENAME = rf"{_LD}+(?:\.{_LD}+)*\.{_FILENAME_EXT}"
_HYPHEN = "[-_]"
_THING_PRE = f"(?:[dDoOlL]{_APOSETC}[A-Za-z0-9])?"
_THING = f"{_THING_PRE}[A-Za-z0-9]+(?:{_HYPHEN}{_THING_PRE}[A-Za-z0-9]+)*"
_SPAMP = _ci("&amp;")
_THINGA = f"[A-Z]+(?:(?:[+&]|{_SPAMP})[A-Z]+)+"
_THING3 = r"[A-Za-z0-9]+(?:-[A-Za-z]+){0,2}(?:\\?/[A-Za-z0-9]+(?:-[A-Za-z]+){0,2}){1,2}"
_ACRO2 = (r"[A-Za-z](?:\.[A-Za-z])+|" + _ci(r"(?:Canada|Sino|Korean|EU|Japan|non)-U\.S") + "|"
          + _ci(r"U\.S\.-(?:U\.K|U\.S\.S\.R)"))
_ACRO = (r"[A-Za-z](?:\.[A-Za-z])*|" + _ci(r"(?:Canada|Sino|Korean|EU|Japan|non)-U\.S") + "|"
         + _ci(r"U\.S\.-(?:U\.K|U\.S\.S\.R)"))
_HTHING = rf"[A-Za-z0-9][A-Za-z0-9.,]*(?:-(?:(?:{_ACRO2})\.|[A-Za-z0-9]+))+"
_APOWORDS = (
    f"{_APOS}{_ci('n')}{_APOS}?", f"[lLdDjJ]{_APOS}", _ci("Dunkin") + _APOS, _ci("somethin") + _APOS,
    _ci("ol") + _APOS, _APOS + _ci("em"), f"[A-HJ-XZn]{_APOSETC}[A-Za-z]{{2}}[A-Za-z]*", f"{_APOS}[2-9]0{_ci('s')}",
    _APOS + _ci("till?"), f"[A-Za-z][A-Za-z]*[aeiouyAEIOUY]{_APOSETC}[aeiouA-Z][A-Za-z]*", _APOS + _ci("cause"),
    _ci(r"cont'd\.?"), _ci("'twas"), _ci("nor'easter"), _ci("c'mon"), _ci("e'er"), _ci("s'mores"), _ci("ev'ry"),
    _ci("li'l"), _ci("nat'l"), _ci("O") + _APOSETC + _ci("o"))
_FULLURL = _ci("https?") + r"://[^ \t\n\f\r\"<>|(){}]+[^ \t\n\f\r\"<>|.!?(){},-]"
_URLPATH = r"(?:/[^ \t\n\f\r\"<>|()]+[^ \t\n\f\r\"<>|.!?(){},-])?"
_LIKELYURLS = (_ci(r"www\.") + r"(?:[^ \t\n\f\r\"<>|.!?(){},]+\.)+[a-zA-Z]{2,4}" + _URLPATH,
               r"(?:[^ \t\n\f\r\"`'<>|.!?(){},-_$]+\.)+" + _ci("(?:com|net|org|edu)") + _URLPATH)
_EMAIL = ("(?:" + _ci("&lt;") + "|<)?[a-zA-Z0-9][^ \t\n\f\r\"<>|(){}]*@(?:[^ \t\n\f\r\"<>|(){}.]+\\.)*"
          "[^ \t\n\f\r\"<>|(){}.]+(?:" + _ci("&gt;") + "|>)?")
_ABBREV1 = _ci(r"(?:" + "|".join([
    "Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept|Sep|Oct|Nov|Dec", "Mon|Tues|Tue|Wed|Thurs|Thu|Fri",
    "Ala|Ariz|[A]z|[A]rk|Calif|Colo|Conn|Ct|Dak|[D]el|Fla|Ga|[I]ll|Ind|Kans?|Ky|[L]a|[M]ass|Md|Mich|Minn|[M]iss|Mo"
    "|Mont|Neb|Nev|Okla|[O]re|[P]a|Penn|Tenn|[T]ex|Va|Vt|[W]ash|Wisc?|Wyo",
    "Inc|Cos?|Corp|Pp?t[ye]s?|Ltd|Plc|Rt|Bancorp|Bhd|Assn|Univ|Intl|Sys", "tel|est|ext|sq",
    r"Jr|Sr|Bros|(?:Ed|Ph)\.D|Blvd|Rd|Esq", "etc|al|seq|Bldg"]) + r")\.")
_ABTITLE = ("Mr|Mrs|Ms|[M]iss|Drs?|Profs?|Sens?|Reps?|Attys?|Lt|Col|Gen|Messrs|Govs?|Adm|Rev|Maj|Sgt|Cpl|Pvt|Capt"
            "|Ste?|Ave|Pres|Lieut|Hon|Brig|Co?mdr|Pfc|Spc|Supts?|Det|Mt|Ft|Adj|Adv|Asst|Assoc|Ens|Insp|Mlle|Mme"
            "|Msgr|Sfc")
_ABBREV4 = _ci(f"(?:{_ABTITLE}|vs|Alex|Wm|Jos|Cie|a\\.k\\.a|cf|TREAS|Ph|Invt|Elec|Natl|M[ft]g|Dept)") + f"|{_ACRO}"
_ACRONYM_NEXT = "|".join(c + _ci(rest) for c, rest in (
    (w[0], w[1:]) for w in "About According Additionally After An A As At But Earlier He Her Here However If In It "
    "Last Many More Mr. Ms. Now Once One Other Our She Since So Some Such That The Their Then There These They "
    "This We When While What Yet You".replace(".", "\\.").split()))
_SMILEY = r"[<>]?[:;=][\-o*']?[()DPdpO\\{@|\[\]]"
_ASIANSMILEY = (_ci("[\\^x=~<>]\\.\\[\\^x=~<>]") + r"|[\-^x=~<>']_[\-^x=~<>']|\([\-^x=~<>'][_.]?[\-^x=~<>']\)"
                r"|\([\^x=~<>']-[\^x=~<>'`]\)")
_PHONES = (r"(?:\([0-9]{2,3}\)[ ]?|(?:\+\+?)?(?:[0-9]{2,4}[- ])?[0-9]{2,4}[- ])[0-9]{3,4}[- ]?[0-9]{3,5}",
           r"(?:(?:\+\+?)?[0-9]{2,4}\.)?[0-9]{2,4}\.[0-9]{3,4}\.[0-9]{3,5}")
_NBSP = "\u00a0"

# An action gets the rule's own text (its trailing context excluded) and returns (token or None, chars consumed).
Action = Callable[[str], "tuple[str | None, int]"]


def _keep(t: str) -> tuple[str | None, int]:
    return t, len(t)


def _drop(t: str) -> tuple[str | None, int]:
    return None, len(t)


def _push(n: int) -> Action:             # yypushback(n): the last n characters are lexed again
    return lambda t: (t[:-n], len(t) - n)


def _redup(t: str) -> tuple[str | None, int]:   # "etc." and then its period once more, as a token of its own
    return t, len(t) - 1


def _acronym(t: str) -> tuple[str | None, int]:
    return (t[:-1], 1) if len(t) == 2 else (t, len(t) - 1)


def _right_quote(t: str) -> tuple[str | None, int]:
    return re.sub("(?i)&apos;", "'", t).replace('"', "''"), len(t)


def _amp(t: str) -> tuple[str | None, int]:
    return re.sub("(?i)&amp;", "&", t), len(t)


def _space_nbsp(t: str) -> tuple[str | None, int]:
    return t.replace(" ", _NBSP), len(t)


def _paren(t: str) -> tuple[str | None, int]:
    return t.replace("(", "-LRB-").replace(")", "-RRB-"), len(t)


def _hyphens(t: str) -> tuple[str | None, int]:
    return ("--" if 3 <= len(t) <= 4 else t), len(t)


def _const(s: str) -> Action:
    return lambda t: (s, len(t))


_NEWLINE = "\n"  # what a line-end token becomes in `_lex`'s output


# (first characters, [patterns], action): in the lexer's order; each pattern's group 1 is the rule's own text,
# the rest of the match its trailing context. First characters: those a match can start with (None: any).
_A, _D = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", "0123456789"
_AD, _AMP, _Q = _A + _D, "&", "'&`"
_RULES_SPEC: list[tuple[str | None, list[str], Action]] = [
    ("cC", [_ci(r"(c\+\+)")], _keep),
    ("cCfF", [_ci("((?:c|f)#)")], _keep),
    ("cC", [_ci("(cannot)")], _push(3)),
    ("'", [_ci("('twas)")], _push(3)),
    ("'", [_ci("('tis)")], _push(2)),
    ("gGlLwW", [_ci("(gonna|gotta|lemme|gimme|wanna)")], _push(2)),
    ("<", [f"({_SGML})"], _space_nbsp),
    ("&", ["(" + _ci("&(?:MD|mdash|ndash);") + ")"], _const("--")),
    ("&", [f"({_SPAMP})"], _amp),
    ("&", ["(" + _ci("&(?:HT|TL|UR|LR|QC|QL|QR|odq|cdq|#[0-9]+);") + ")"], _keep),
    (_A + _AMP, [f"({_WORD}){_REDAUX}"], _keep),
    (_A, [f"({_SWORD}){_SREDAUX}"], _keep),
    (_A + _AMP, [f"({_WORD})"], _keep),
    (_A + _Q, [f"({p})" for p in _APOWORDS], _keep),
    ("yY", [f"({_ci('y')}{_APOS})[A-Za-z]"], _keep),
    ("hH", [f"({_FULLURL})"], _keep),
    (None, [f"({p})" for p in _LIKELYURLS], _keep),
    (None, [f"({_EMAIL})"], _keep),
    ("@#", ["(@[a-zA-Z_][a-zA-Z_0-9]*)", f"(#{_LETTER}+)"], _keep),
    (_Q, [f"({_REDAUX})[^A-Za-z]"], _right_quote),
    ("nN", [f"({_SREDAUX})[^A-Za-z]"], _right_quote),
    (_D, [r"([0-9]{1,2}[-/][0-9]{1,2}[-/][0-9]{2,4})"], _keep),
    (_D + "-+.:,", [f"({p})" for p in _NUMS], _keep),
    (_D, [f"({_FRAC})"], _space_nbsp),
    ("-cCpPaAsS'&", ["(" + p + ")" for p in (
        _ci("-(?:RRB|LRB|RCB|LCB|RSB|LSB)-"), _ci(r"C\.D\.s"), _ci("pro-"), _ci("anti-"),
        _ci("S") + f"(?:&|{_SPAMP})" + _ci("P-500"), _ci("S") + f"(?:&|{_SPAMP})" + _ci("Ls"),
        _ci("Cap") + _APOS + _ci("n"), _ci("c") + _APOS + _ci("est"))], _amp),
    (_AD, [f"({_THING3})"], _keep),
    ("$#" + _A, [r"([A-Z]*\$|#)"], _keep),
    (_A, [f"((?:{_ACRO})\\.){_SPACENLS}(?:{_ACRONYM_NEXT}|{_SGML}){_SPACENL}"], _acronym),
    (_A, [_ci(r"((?:ca|figs?|prop|nos?|art|bldg|pp|op)\.)") + f"{_SPACENL}?[0-9]"], _keep),
    ("pPcC", [_ci(r"((?:pt[eyEY]|co)\.)") + _SPACE + _ci("(?:ltd|lim)")], _keep),
    (_A, [f"({_ABBREV1}){_SENTEND}"], _redup),
    (_A, [f"({_ABBREV1})(?s:..)"], _keep),
    (_A, [f"({_ABBREV1})"], _redup),
    (_A, [f"((?:{_ABBREV4})\\.)"], _keep),
    (_A, [f"({_ABBREV4}){_SPACE}"], _keep),
    (_A, [f"({_ACRO}){_SPACENL}"], _keep),
    (_Q, [f"({_APOS}[0-9][0-9]){_SPACENL}"], _keep),
    (_AD + _AMP, [f"({_FILENAME})(?:{_SPACENL}|[.?!,])"], _keep),
    (_A + _AMP, [f"({_WORD}\\.)[,;:]"], _keep),
    (_D + "(+", [f"({p})" for p in _PHONES], lambda t: _paren(_space_nbsp(t)[0])),
    ('"&', ['("|' + _ci("&quot;") + ")[A-Za-z0-9$]"], lambda t: ("``", len(t))),
    ('"&', ['("|' + _ci("&quot;") + ")"], lambda t: ("''", len(t))),
    ("\x7f", ["(\x7f)"], _drop),
    ("<&", ["(<|" + _ci("&lt;") + ")"], _const("<")),
    (">&", ["(>|" + _ci("&gt;") + ")"], _const(">")),
    ("<>:;=", [f"({_SMILEY})[^A-Za-z0-9]"], _paren),
    ("^xX=~<>-'(", [f"({_ASIANSMILEY})"], _paren),
    ("{", [r"(\{)"], _const("-LCB-")),
    ("}", [r"(\})"], _const("-RCB-")),
    ("[", [r"(\[)"], _const("-LSB-")),
    ("]", [r"(\])"], _const("-RSB-")),
    ("(", [r"(\()"], _const("-LRB-")),
    (")", [r"(\))"], _const("-RRB-")),
    ("-", ["(-+)"], _hyphens),
    (".", [r"(\.{3,5})", r"((?:\.[ ]){2,4}\.)"], _const("...")),
    ("@#_", ["(@+)", "(#+)", "(_+)"], _keep),
    ("*\\", [r"(\*+)", r"((?:\\\*){1,3})"], _keep),
    (",;:", ["([,;:])"], _keep),
    ("?!", ["([?!]+)"], _keep),
    (".", [r"(\.)"], _keep),
    ("=", ["(=)"], _keep),
    ("/", ["(/)"], _keep),
    (_AD, [f"({_HTHING}\\.)[,;:]"], _keep),
    (_AD, [f"({_HTHING})"], _keep),
    (_AD, [f"({_THING}\\.)[,;:]"], _keep),
    (_AD, [f"({_THING})"], _keep),
    (_A, [f"({_THINGA}\\.)[,;:]"], _amp),
    (_A, [f"({_THINGA})"], _amp),
    ("'", ["(')[A-Za-z][^ \t\n\r]"], lambda t: ("`", len(t))),
    (_Q, [f"({_REDAUX})"], _right_quote),
    ("nN", [f"({_SREDAUX})"], _right_quote),
    (_Q, [f"({_APOS})", "('')", "(`{1,2})"], _right_quote),
    ("<>", ["(<<|>>)"], _keep),
    ("+%&~^|\\", [r"([+%&~^|\\])"], _keep),
    ("\x00 \t", ["(\x00|[ \t]+)"], _drop),
    ("\r\n\x0b\x0c", [f"({_NL})"], _const(_NEWLINE)),
    ("&", ["(" + _ci("&nbsp;") + ")"], _drop),
    (None, ["(.)"], _drop),  # untokenizable (control characters): deleted, as the jar's default does
]


Rule = tuple[list[re.Pattern], Action]


@functools.lru_cache(maxsize=1)
def _rules() -> tuple[dict[str, list[Rule]], list[Rule]]:
    """The rules that can match at each ASCII character, in the lexer's order, and all of them."""
    compiled = [([re.compile(p, re.DOTALL) for p in pats], act, first) for first, pats, act in _RULES_SPEC]
    by_char = {c: [(pats, act) for pats, act, first in compiled if first is None or c in first]
               for c in map(chr, range(128))}
    return by_char, [(pats, act) for pats, act, _ in compiled]


def _lex(text: str, by_first_char: bool = True) -> list[str]:
    """Tokens of ``text`` (ASCII), line ends as ``_NEWLINE``: JFlex's longest match over all rules."""
    by_char, every = _rules()
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        best, best_len = None, 0
        for pats, act in (by_char.get(text[i], every) if by_first_char else every):
            for p in pats:
                m = p.match(text, i)
                if m is not None and m.end() - i > best_len:
                    best, best_len = (m.group(1), act), m.end() - i
        if best is None:   # nothing matches (only a non-ASCII character can get here): skip it
            i += 1
            continue
        tok, used = best[1](best[0])
        if tok is not None:
            out.append(tok)
        i += used
    return out


def ptb_tokenize(lines: Sequence[str], *, by_first_char: bool = True) -> list[list[str]]:
    """Stanford PTBTokenizer 3.4.1 (``-preserveLines -lowerCase``) in pure Python over one stream of lines.

    Args:
        lines: the stream, one caption per line (ASCII without line breaks: see `ptb_tokenizer.caption_line`).
    Returns:
        The lower-cased tokens of each line (punctuation not yet removed).
    """
    if not lines:
        return []
    out: list[list[str]] = [[]]
    for tok in _lex("\n".join(lines), by_first_char):
        if tok == _NEWLINE:
            out.append([])
        else:
            out[-1].append(tok.lower())
    if len(out) != len(lines):
        raise ValueError(f"{len(out)} lines out for {len(lines)} in: a line holds a line break")
    return out


__all__ = ["ptb_tokenize"]
