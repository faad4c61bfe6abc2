"""Metrics: the downstream metrics, the public prediction formats and the pure inference rankings.

Pure functions over arrays, tensors and files (no model): the tasks rank with them, ``hero.eval`` scores with them.

- ``moment_metrics``: VCMR / SVMR / VR R@k at tIoU, TVR evaluator definitions, by query type, DiDeMo multi-GT.
- ``moment_ranking``: corpus-level span ranking (HERO ``validate_full_vcmr``), temporal NMS, chunked.
- ``retrieval``: text-to-video R@k, median / mean rank with an explicit tie rule.
- ``qa``: video QA and VIOLIN accuracy, QA temporal localisation.
- ``captioning``: BLEU / METEOR / ROUGE-L / CIDEr-D via pycocoevalcap (lazy import).
- ``formats``: read/write of the prediction files and the annotation readers; ``scoring``: file -> metrics.
- ``report``: the flat ``task/split/metric`` dict; ``submission``: a TVR submission from moment rankings.
- ``intervals``: the paired bootstrap over examples and seeds; ``results``: the results table with intervals and
  verdicts (pure numpy, over the per-example values the ``per_example_*`` scorers give).
"""

from hero.metrics.captioning import CaptionEvalConfig, caption_metrics, tokenize_caption, tvc_metrics
from hero.metrics.formats import FormatError
from hero.metrics.moment_metrics import (
    MomentEvalConfig, evaluate_moment_task, evaluate_tvr_submission, metric_name, temporal_iou,
)
from hero.metrics.moment_ranking import (
    MomentRankConfig, MomentRanking, RankedVideos, rank_svmr, rank_vcmr, rank_videos, temporal_nms, topk_stable,
)
from hero.metrics.qa import accuracy_from_logits, binary_accuracy_from_logits, qa_metrics, violin_metrics
from hero.metrics.report import flatten_metrics, write_metrics_json
from hero.metrics.retrieval import RetrievalEvalConfig, metrics_from_counts, ranking_metrics, retrieval_metrics
from hero.metrics.scoring import (
    score_captioning, score_moment_retrieval, score_text_to_video, score_video_qa, score_violin,
)
from hero.metrics.submission import tvr_submission

__all__ = [
    "CaptionEvalConfig", "FormatError", "MomentEvalConfig", "MomentRankConfig", "MomentRanking", "RankedVideos",
    "RetrievalEvalConfig", "accuracy_from_logits", "binary_accuracy_from_logits", "caption_metrics",
    "evaluate_moment_task", "evaluate_tvr_submission", "flatten_metrics", "metric_name", "metrics_from_counts",
    "qa_metrics", "rank_svmr", "rank_vcmr", "rank_videos", "ranking_metrics", "retrieval_metrics",
    "score_captioning", "score_moment_retrieval", "score_text_to_video", "score_video_qa", "score_violin",
    "temporal_iou", "temporal_nms", "tokenize_caption", "topk_stable", "tvc_metrics", "violin_metrics",
    "tvr_submission", "write_metrics_json",
]
