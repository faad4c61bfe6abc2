"""Captioning metrics (TVC): BLEU-1..4, METEOR, ROUGE-L and CIDEr-D through pycocoevalcap, x100 like HERO.

pycocoevalcap is a declared dependency (imported lazily here, never vendored). Its ``Cider`` is CIDEr-D (length
penalty sigma = 6, clipped counts; its IDF comes from the references of the evaluated clips, so a single clip
scores 0). METEOR runs ``java -jar meteor-1.5.jar``: Java is looked up once per process, and when it is missing
(or METEOR fails) one warning is logged and the other metrics are still reported. SPICE is never used.

Text goes through ``tokenize_caption`` instead of the PTB tokenizer (which also needs Java), the same way for
hypotheses and references: NFKC + lower case, curly quotes made straight, English clitics split off as the PTB
tokenizer does ("don't" -> "do n't", "Rachel's" -> "rachel 's"), then the word tokens kept — runs of letters and
digits that may contain inner ``-``, ``.``, ``,`` or ``'`` ("t-shirt", "1.5", "o'clock"); all other punctuation is
dropped (pycocoevalcap drops punctuation tokens after PTB tokenisation too).
"""

from __future__ import annotations

import functools
import logging
import re
import shutil
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hero.eval.formats.annotations import CaptionAnnotation
from hero.eval.formats.files import Where
from hero.eval.formats.lines import CaptionPrediction

log = logging.getLogger(__name__)

_CLITIC = re.compile(r"(?<=[^\W_])(n't|'s|'re|'ve|'ll|'d|'m)\b")
_TOKEN = re.compile(r"n't|'(?:s|re|ve|ll|d|m)\b|[^\W_]+(?:[-.,'][^\W_]+)*")
_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"', "`": "'"})


def tokenize_caption(text: str) -> list[str]:
    """Caption -> lower-case word tokens (see the module docstring), e.g. "Rachel's T-shirt, isn't it?" ->
    ["rachel", "'s", "t-shirt", "is", "n't", "it"]."""
    text = unicodedata.normalize("NFKC", text).translate(_QUOTES).lower()
    text = _CLITIC.sub(r" \1", text)
    return _TOKEN.findall(text)


@dataclass(frozen=True, kw_only=True)
class CaptionEvalConfig:
    meteor: bool = True
    """Run METEOR when Java is available (it costs a JVM start, a few seconds)."""


_warned: set[str] = set()


def _warn_once(key: str, msg: str, *args: Any) -> None:
    if key not in _warned:
        _warned.add(key)
        log.warning(msg, *args)


@functools.lru_cache(maxsize=1)
def java_path() -> str | None:
    """The ``java`` executable on PATH, looked up once per process (None when absent)."""
    return shutil.which("java")


def _meteor(gts: dict[int, list[str]], res: dict[int, list[str]]) -> float | None:
    if java_path() is None:
        _warn_once("no-java", "METEOR skipped: no `java` on PATH (METEOR runs meteor-1.5.jar); reporting the "
                   "other caption metrics")
        return None
    from pycocoevalcap.meteor.meteor import Meteor

    scorer = None
    try:
        scorer = Meteor()
        score, _ = scorer.compute_score(gts, res)
        return float(score)
    except Exception as err:  # a broken JVM must not lose the other metrics
        _warn_once("meteor-failed", "METEOR skipped: it failed (%s); reporting the other caption metrics", err)
        return None
    finally:
        if scorer is not None:
            proc = scorer.meteor_p
            with scorer.lock:
                proc.stdin.close()
                proc.kill()
                proc.wait()


def caption_metrics(hypotheses: Mapping[Any, str], references: Mapping[Any, Sequence[str]],
                    cfg: CaptionEvalConfig | None = None) -> dict[str, float]:
    """Corpus-level caption metrics.

    Args:
        hypotheses: clip key -> generated caption (raw text).
        references: clip key -> its reference captions (>= 1 each); the keys must match ``hypotheses``.
    Returns:
        ``{"bleu1".."bleu4", "meteor" (if it ran), "rouge_l", "cider"}`` x100.
    """
    cfg = cfg or CaptionEvalConfig()
    if set(hypotheses) != set(references):
        raise ValueError("hypotheses and references must have the same clip keys")
    if not hypotheses:
        raise ValueError("no captions to evaluate")
    try:
        from pycocoevalcap.bleu.bleu import Bleu
        from pycocoevalcap.cider.cider import Cider
        from pycocoevalcap.rouge.rouge import Rouge
    except ImportError as err:
        raise ImportError("caption metrics need pycocoevalcap (pip install 'pycocoevalcap>=1.2')") from err

    keys = list(hypotheses)
    res = {i: [" ".join(tokenize_caption(hypotheses[k]))] for i, k in enumerate(keys)}
    gts = {}
    for i, k in enumerate(keys):
        refs = list(references[k])
        if not refs:
            raise ValueError(f"clip {k!r} has no reference caption")
        gts[i] = [" ".join(tokenize_caption(r)) for r in refs]
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    out = {f"bleu{n + 1}": 100.0 * float(b) for n, b in enumerate(bleu)}
    if cfg.meteor:
        meteor = _meteor(gts, res)
        if meteor is not None:
            out["meteor"] = 100.0 * meteor
    out["rouge_l"] = 100.0 * float(Rouge().compute_score(gts, res)[0])
    out["cider"] = 100.0 * float(Cider().compute_score(gts, res)[0])
    return out


def tvc_metrics(predictions: Sequence[CaptionPrediction], ground_truth: Sequence[CaptionAnnotation],
                cfg: CaptionEvalConfig | None = None) -> dict[str, float]:
    """TVC: each GT clip's first predicted caption against all its reference captions, matched by ``clip_id``.

    A GT clip without a prediction is scored with an empty caption; predictions for unknown clips are ignored.
    A prediction that names no ``vid_name`` (the official format) is matched by ``clip_id`` alone.

    Raises:
        FormatError: ``PRED_FILE:LINE: [prediction.vid_name_mismatch] ...`` when a prediction's ``vid_name``
            disagrees with the GT clip's (the message names the GT file and line too).
    """
    by_clip = {str(p.clip_id): p for p in predictions}
    hyps: dict[str, str] = {}
    refs: dict[str, Sequence[str]] = {}
    missing = 0
    for g in ground_truth:
        p = by_clip.get(str(g.clip_id))
        if p is None:
            missing += 1
        elif p.vid_name is not None and p.vid_name != g.vid_name:
            gt_at = f" ({g.where.file}:{g.where.line})" if g.where is not None else ""
            (p.where or Where("<predictions>", None)).fail(
                f"clip_id {g.clip_id!r}: vid_name {p.vid_name!r}, but the ground truth{gt_at} has {g.vid_name!r}",
                rule="prediction.vid_name_mismatch")
        hyps[str(g.clip_id)] = p.descs[0] if p is not None else ""
        refs[str(g.clip_id)] = g.refs
    extra = len(set(by_clip) - set(hyps))
    if missing or extra:
        log.warning("tvc: %d of %d clips have no caption (scored as empty); %d predicted clips are not in the "
                    "ground truth (ignored)", missing, len(ground_truth), extra)
    return caption_metrics(hyps, refs, cfg)
