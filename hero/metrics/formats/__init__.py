"""Prediction files in the public formats and the ground-truth annotation readers used to score them."""

from hero.metrics.formats.annotations import (
    QUERY_TYPES, CaptionAnnotation, MomentAnnotation, QaAnnotation, RetrievalAnnotation, ViolinAnnotation,
    read_caption_annotations, read_moment_annotations, read_qa_annotations, read_retrieval_annotations,
    read_violin_annotations,
)
from hero.metrics.formats.files import FormatError
from hero.metrics.formats.lines import (
    CaptionPrediction, QaAnswer, VideoRanking, ViolinLabel, rankings_from_scores, read_captions, read_qa_answers,
    read_rankings, read_violin_labels, write_captions, write_qa_answers, write_rankings, write_violin_labels,
)
from hero.metrics.formats.tvr import TVR_TASKS, QueryPredictions, TvrSubmission, read_tvr_submission, write_tvr_submission

__all__ = [
    "QUERY_TYPES", "TVR_TASKS", "CaptionAnnotation", "CaptionPrediction", "FormatError", "MomentAnnotation",
    "QaAnnotation", "QaAnswer", "QueryPredictions", "RetrievalAnnotation", "TvrSubmission", "VideoRanking",
    "ViolinAnnotation", "ViolinLabel", "rankings_from_scores", "read_caption_annotations",
    "read_captions", "read_moment_annotations", "read_qa_annotations", "read_qa_answers", "read_rankings",
    "read_retrieval_annotations", "read_tvr_submission", "read_violin_annotations", "read_violin_labels",
    "write_captions", "write_qa_answers", "write_rankings", "write_tvr_submission", "write_violin_labels",
]
