"""Scorers that read a prediction file and its ground-truth annotation file and return metrics.

One function per task family; each reads the prediction file in its public format (``hero.metrics.formats``) and
``annotations/<task>_<split>.jsonl`` in the format of docs/formats.md, so the numbers agree with the official
evaluators. Malformed input raises ``FormatError`` naming the file and line.

Each ``per_example_*`` reads the same files and returns, for the scorer's metrics that are means over examples,
``metric -> {str(example id): value}`` in the annotation file's order (the ids are the annotations' as ``str``):
the value of that metric on that example alone, in the scorer's units, from the scorer's own code, so the mean of
each inner dict is what the scorer reports. Confidence intervals resample these (`hero.metrics.intervals`).
"""

from __future__ import annotations

from hero.metrics.captioning import CaptionEvalConfig, per_clip_tvc, tvc_metrics
from hero.metrics.formats import (
    read_caption_annotations, read_captions, read_moment_annotations, read_qa_annotations, read_qa_answers,
    read_rankings, read_retrieval_annotations, read_tvr_submission, read_violin_annotations, read_violin_labels,
)
from hero.metrics.formats.files import PathLike
from hero.metrics.moment_metrics import MomentEvalConfig, evaluate_tvr_submission, per_query_tvr_submission
from hero.metrics.qa import per_question_qa, per_statement_violin, qa_metrics, violin_metrics
from hero.metrics.retrieval import RetrievalEvalConfig, per_query_ranking, ranking_metrics

PerExample = dict[str, dict[str, float]]
"""metric -> example id (``str``) -> that example's value; each inner dict's mean is the metric."""


def score_moment_retrieval(submission: PathLike, annotations: PathLike,
                           cfg: MomentEvalConfig | None = None) -> dict[str, float]:
    """TVR submission JSON vs tvr/how2r/didemo lines -> ``vcmr_r1_iou0.7``, ``svmr_…``, ``vr_r1``, by type."""
    return evaluate_tvr_submission(read_tvr_submission(submission), read_moment_annotations(annotations), cfg)


def score_video_qa(answers: PathLike, annotations: PathLike) -> dict[str, float]:
    """``{"qid", "answer_idx", "ts"?}`` lines vs tvqa lines -> ``acc`` (+ ``loc_*`` when spans are predicted)."""
    return qa_metrics(read_qa_answers(answers), read_qa_annotations(annotations))


def score_violin(labels: PathLike, annotations: PathLike) -> dict[str, float]:
    """``{"desc_id", "label"}`` lines vs violin lines -> ``acc``."""
    return violin_metrics(read_violin_labels(labels), read_violin_annotations(annotations))


def score_captioning(captions: PathLike, annotations: PathLike,
                     cfg: CaptionEvalConfig | None = None) -> dict[str, float]:
    """TVC caption lines vs tvc lines -> ``bleu1..4``, ``meteor`` (with Java), ``rouge_l``, ``cider``."""
    return tvc_metrics(read_captions(captions), read_caption_annotations(annotations), cfg)


def score_text_to_video(rankings: PathLike, annotations: PathLike, cfg: RetrievalEvalConfig | None = None,
                        num_videos: int | None = None) -> dict[str, float]:
    """Ranking lines vs retrieval lines -> ``r1``, ``r5``, ``r10``, ``median_rank``, ``mean_rank``."""
    return ranking_metrics(read_rankings(rankings), read_retrieval_annotations(annotations), cfg, num_videos)


def per_example_moment_retrieval(submission: PathLike, annotations: PathLike,
                                 cfg: MomentEvalConfig | None = None) -> PerExample:
    """Per query, 100.0 (hit) / 0.0 for every key of `score_moment_retrieval` (the by-type keys over that type's
    queries only), judged by the same rules (`hero.metrics.moment_metrics`)."""
    return per_query_tvr_submission(read_tvr_submission(submission), read_moment_annotations(annotations), cfg)


def per_example_video_qa(answers: PathLike, annotations: PathLike) -> PerExample:
    """``{"acc": {qid: 100.0 | 0.0}}``: whether each question was answered right."""
    return per_question_qa(read_qa_answers(answers), read_qa_annotations(annotations))


def per_example_violin(labels: PathLike, annotations: PathLike) -> PerExample:
    """``{"acc": {desc_id: 100.0 | 0.0}}``: whether each statement's label is right."""
    return per_statement_violin(read_violin_labels(labels), read_violin_annotations(annotations))


def per_example_captioning(captions: PathLike, annotations: PathLike,
                           cfg: CaptionEvalConfig | None = None) -> PerExample:
    """``{"cider": {clip_id: CIDEr-D x100}}`` with the corpus-level document frequencies `score_captioning` uses."""
    return per_clip_tvc(read_captions(captions), read_caption_annotations(annotations), cfg)


def per_example_text_to_video(rankings: PathLike, annotations: PathLike, cfg: RetrievalEvalConfig | None = None,
                              num_videos: int | None = None) -> PerExample:
    """``{"r1": {desc_id: value}, "r5": ..., ...}``: each query's R@k under the scorer's tie rule (100.0 / 0.0,
    or the tie-break probability x100 under ``average``)."""
    return per_query_ranking(read_rankings(rankings), read_retrieval_annotations(annotations), cfg, num_videos)
