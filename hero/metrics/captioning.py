"""Captioning metrics (TVC): BLEU-1..4, METEOR, ROUGE-L and CIDEr-D through pycocoevalcap, x100 like HERO.

pycocoevalcap is a declared dependency (imported lazily here, never vendored). Its ``Cider`` is CIDEr-D (length
penalty sigma = 6, clipped counts; its IDF comes from the references of the evaluated clips, so a single clip
scores 0). METEOR runs ``java -jar meteor-1.5.jar``: Java is looked up once per process, and when it is missing
(or METEOR fails) one warning is logged and the other metrics are still reported. Each scoring starts its own
METEOR process (~7 s), except inside `shared_meteor`, where one serves the whole block. SPICE is never used.

Text is tokenised as the official TVC evaluator does (`hero.metrics.ptb_tokenizer`): non-ASCII characters become
spaces, then Stanford's PTBTokenizer (``-preserveLines -lowerCase``) runs over all references as one stream and
all hypotheses as another, and pycocoevalcap's punctuation tokens are dropped. With Java on PATH that is the jar
shipped in pycocoevalcap (one JVM for both streams); without it, a pure-Python port tested token for token
against the jar. Which one ran is logged with every score (``CaptionEvalConfig.tokenizer`` can force either).

`cider_per_clip` / `per_clip_tvc` give each clip's CIDEr-D from the same single run over all clips (the corpus's
document frequencies), so their mean is the reported ``cider``.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import shutil
import subprocess
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from hero.metrics.formats.annotations import CaptionAnnotation
from hero.metrics.formats.files import Where
from hero.metrics.formats.lines import CaptionPrediction
from hero.metrics.ptb_tokenizer import PUNCTUATIONS, caption_line, java_ptb_tokenize, ptb_tokenize

log = logging.getLogger(__name__)


def tokenize_caption(text: str) -> list[str]:
    """One caption through the TVC evaluator's tokenisation (pure-Python PTB tokenizer, punctuation dropped), e.g.
    "Rachel's T-shirt, isn't it?" -> ["rachel", "'s", "t-shirt", "is", "n't", "it"]. Scoring tokenises whole
    streams instead (`tokenize_streams`): a caption ending in an abbreviation can depend on the next one."""
    return [t for t in ptb_tokenize([caption_line(text)])[0] if t not in PUNCTUATIONS]


@dataclass(frozen=True, kw_only=True)
class CaptionEvalConfig:
    meteor: bool = True
    """Run METEOR when Java is available (it costs a JVM start, a few seconds)."""
    tokenizer: Literal["auto", "java", "python"] = "auto"
    """PTB tokenizer: `auto` = the Stanford jar when Java is on PATH, else the pure-Python port; `java` fails
    without Java; `python` always uses the port."""

    def __post_init__(self) -> None:
        if self.tokenizer not in ("auto", "java", "python"):
            raise ValueError(f"tokenizer must be auto, java or python, got {self.tokenizer!r}")


_warned: set[str] = set()


def _warn_once(key: str, msg: str, *args: Any) -> None:
    if key not in _warned:
        _warned.add(key)
        log.warning(msg, *args)


@functools.lru_cache(maxsize=1)
def java_path() -> str | None:
    """The ``java`` executable on PATH, looked up once per process (None when absent)."""
    return shutil.which("java")


class _MeteorScorers:
    """Where `_meteor` gets its METEOR process: a fresh one per call, or inside `shared_meteor` one for the block.

    Starting meteor-1.5.jar costs ~7 s (it loads its paraphrase tables) against ~0.3 s to score a split; its stdio
    protocol is stateless between calls (each ``EVAL`` line carries its own statistics), so one process scores
    many splits with the same results as one process each.
    """

    def __init__(self) -> None:
        self.depth = 0
        self.scorer: Any = None

    def get(self) -> tuple[Any, bool]:
        """(a METEOR scorer, whether the caller owns it and must close it)."""
        from pycocoevalcap.meteor.meteor import Meteor

        if self.depth == 0:
            return Meteor(), True
        if self.scorer is None:
            self.scorer = Meteor()
        return self.scorer, False

    def discard(self, scorer: Any) -> None:
        if scorer is self.scorer:
            self.scorer = None
        _close_meteor(scorer)


_METEOR = _MeteorScorers()


@contextlib.contextmanager
def shared_meteor() -> Iterator[None]:
    """Within the block, every caption scoring of this process shares one METEOR process (closed at the end):
    for code that scores several splits or models in a row (the baselines, the evaluation of every job)."""
    _METEOR.depth += 1
    try:
        yield
    finally:
        _METEOR.depth -= 1
        if _METEOR.depth == 0 and _METEOR.scorer is not None:
            _METEOR.discard(_METEOR.scorer)


def _close_meteor(scorer: Any) -> None:
    proc = scorer.meteor_p
    proc.stdin.close()
    proc.kill()
    proc.wait()
    # pycocoevalcap's __del__ takes the scorer's lock, which a call that failed midway never released
    scorer.lock = threading.Lock()


def _meteor(gts: dict[int, list[str]], res: dict[int, list[str]]) -> float | None:
    if java_path() is None:
        _warn_once("no-java", "METEOR skipped: no `java` on PATH (METEOR runs meteor-1.5.jar); reporting the "
                   "other caption metrics")
        return None
    scorer, owned = None, True
    try:
        scorer, owned = _METEOR.get()
        score, _ = scorer.compute_score(gts, res)
        return float(score)
    except Exception as err:  # a broken JVM must not lose the other metrics
        _warn_once("meteor-failed", "METEOR skipped: it failed (%s); reporting the other caption metrics", err)
        if scorer is not None and not owned:
            _METEOR.discard(scorer)   # its protocol state is unknown now: the next call starts a fresh one
        return None
    finally:
        if scorer is not None and owned:
            _close_meteor(scorer)


def tokenize_streams(streams: Sequence[Sequence[str]], tokenizer: str = "auto") -> tuple[list[list[str]], str]:
    """Captions as the TVC evaluator scores them: each stream (its captions in order) through `caption_line`, the
    PTB tokenizer and pycocoevalcap's punctuation filter.

    Returns:
        (per stream, each caption as space-joined tokens; "java" or "python", the tokenizer that ran).
    """
    lines = [[caption_line(c) for c in stream] for stream in streams]
    java = java_path() if tokenizer != "python" else None
    if tokenizer == "java" and java is None:
        raise RuntimeError("CaptionEvalConfig.tokenizer='java' but no `java` on PATH")
    tokens, used = None, "python"
    if java is not None:
        try:
            tokens, used = java_ptb_tokenize(lines, java=java), "java"
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as err:
            if tokenizer == "java":
                raise
            _warn_once("ptb-failed", "caption tokenisation: the PTBTokenizer jar failed (%s); using the pure-Python "
                       "port", err)
    elif tokenizer == "auto":
        _warn_once("ptb-no-java", "caption tokenisation: no `java` on PATH; using the pure-Python port of the "
                   "PTB tokenizer (token-for-token equal to the jar on the tested sentences)")
    if tokens is None:
        tokens = [ptb_tokenize(stream) for stream in lines]
    joined = [[" ".join(t for t in line if t not in PUNCTUATIONS) for line in stream] for stream in tokens]
    return joined, used


def _load_scorers() -> tuple[Any, Any, Any]:
    try:
        from pycocoevalcap.bleu.bleu import Bleu
        from pycocoevalcap.cider.cider import Cider
        from pycocoevalcap.rouge.rouge import Rouge
    except ImportError as err:
        raise ImportError("caption metrics need pycocoevalcap (pip install 'pycocoevalcap>=1.2')") from err
    return Bleu, Cider, Rouge


def _scorer_inputs(hypotheses: Mapping[Any, str], references: Mapping[Any, Sequence[str]],
                   cfg: CaptionEvalConfig) -> tuple[list[Any], dict[int, list[str]], dict[int, list[str]]]:
    """Checks the clips, tokenises both streams and returns (clip keys, gts, res) as pycocoevalcap takes them:
    ``gts[i]`` / ``res[i]`` are clip ``keys[i]``'s tokenised references / hypothesis, ``gts`` in index order."""
    if set(hypotheses) != set(references):
        raise ValueError("hypotheses and references must have the same clip keys")
    if not hypotheses:
        raise ValueError("no captions to evaluate")
    keys = list(hypotheses)
    index = {k: i for i, k in enumerate(keys)}
    for k, refs in references.items():
        if len(refs) == 0:
            raise ValueError(f"clip {k!r} has no reference caption")
    (hyp_tok, ref_tok), used = tokenize_streams(
        [[hypotheses[k] for k in keys], [r for k in references for r in references[k]]], cfg.tokenizer)
    res = {i: [hyp_tok[i]] for i in range(len(keys))}
    gts: dict[int, list[str]] = {}
    pos = 0
    for k, refs in references.items():
        gts[index[k]] = ref_tok[pos:pos + len(refs)]
        pos += len(refs)
    gts = dict(sorted(gts.items()))
    log.info("caption metrics over %d clips: PTB tokenisation by %s", len(keys),
             "the Stanford jar (java)" if used == "java" else "the pure-Python port")
    return keys, gts, res


def caption_metrics(hypotheses: Mapping[Any, str], references: Mapping[Any, Sequence[str]],
                    cfg: CaptionEvalConfig | None = None) -> dict[str, float]:
    """Corpus-level caption metrics.

    Args:
        hypotheses: clip key -> generated caption (raw text). Tokenised as one stream in this order.
        references: clip key -> its reference captions (>= 1 each); the keys must match ``hypotheses``.
            Tokenised as one stream in this order.
    Returns:
        ``{"bleu1".."bleu4", "meteor" (if it ran), "rouge_l", "cider"}`` x100. Which PTB tokenizer ran is logged.
    """
    cfg = cfg or CaptionEvalConfig()
    Bleu, Cider, Rouge = _load_scorers()
    _, gts, res = _scorer_inputs(hypotheses, references, cfg)
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    out = {f"bleu{n + 1}": 100.0 * float(b) for n, b in enumerate(bleu)}
    if cfg.meteor:
        meteor = _meteor(gts, res)
        if meteor is not None:
            out["meteor"] = 100.0 * meteor
    out["rouge_l"] = 100.0 * float(Rouge().compute_score(gts, res)[0])
    out["cider"] = 100.0 * float(Cider().compute_score(gts, res)[0])
    return out


def cider_per_clip(hypotheses: Mapping[Any, str], references: Mapping[Any, Sequence[str]],
                   cfg: CaptionEvalConfig | None = None) -> dict[Any, float]:
    """Each clip's CIDEr-D (x100) from the computation `caption_metrics` reports: the same tokenisation and one
    pycocoevalcap ``Cider`` run over all clips, so the document frequencies are the corpus's and the mean over
    clips is ``caption_metrics(...)["cider"]``. (BLEU is corpus-level and has no per-clip decomposition.)

    Returns:
        clip key -> CIDEr-D x100, in ``references``' order.
    """
    cfg = cfg or CaptionEvalConfig()
    _, Cider, _ = _load_scorers()
    keys, gts, res = _scorer_inputs(hypotheses, references, cfg)
    _, scores = Cider().compute_score(gts, res)
    # pycocoevalcap scores the clips in gts' key order, which is the index order 0..n-1
    by_key = {keys[i]: 100.0 * float(v) for i, v in zip(gts, scores)}
    return {k: by_key[k] for k in references}


def tvc_metrics(predictions: Sequence[CaptionPrediction], ground_truth: Sequence[CaptionAnnotation],
                cfg: CaptionEvalConfig | None = None) -> dict[str, float]:
    """TVC: each GT clip's first predicted caption against all its reference captions, matched by ``clip_id``.

    A GT clip without a prediction is scored with an empty caption; predictions for unknown clips are ignored.
    A prediction that names no ``vid_name`` (the official format) is matched by ``clip_id`` alone.

    Raises:
        FormatError: ``PRED_FILE:LINE: [prediction.vid_name_mismatch] ...`` when a prediction's ``vid_name``
            disagrees with the GT clip's (the message names the GT file and line too).
    """
    return caption_metrics(*_tvc_pairs(predictions, ground_truth), cfg)


def per_clip_tvc(predictions: Sequence[CaptionPrediction], ground_truth: Sequence[CaptionAnnotation],
                 cfg: CaptionEvalConfig | None = None) -> dict[str, dict[str, float]]:
    """The per-clip values behind `tvc_metrics`' ``cider``: ``{"cider": {str(clip_id): CIDEr-D x100}}`` in
    ground-truth order, from the same clips, tokenisation and corpus-level document frequencies (`cider_per_clip`);
    its mean is ``cider``."""
    return {"cider": cider_per_clip(*_tvc_pairs(predictions, ground_truth), cfg)}


def _tvc_pairs(predictions: Sequence[CaptionPrediction],
               ground_truth: Sequence[CaptionAnnotation]) -> tuple[dict[str, str], dict[str, Sequence[str]]]:
    """(clip -> hypothesis in the prediction file's order, then the GT clips it lacks as ""; clip -> references in
    ground-truth order). Raises FormatError on a vid_name mismatch (see `tvc_metrics`)."""
    by_clip = {str(p.clip_id): p for p in predictions}
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
        refs[str(g.clip_id)] = g.refs
    # hypotheses in the prediction file's order (the evaluator's stream), then the GT clips it lacks
    hyps = {c: p.descs[0] for c, p in by_clip.items() if c in refs}
    hyps.update({c: "" for c in refs if c not in hyps})
    extra = len(set(by_clip) - set(refs))
    if missing or extra:
        log.warning("tvc: %d of %d clips have no caption (scored as empty); %d predicted clips are not in the "
                    "ground truth (ignored)", missing, len(ground_truth), extra)
    return hyps, refs
