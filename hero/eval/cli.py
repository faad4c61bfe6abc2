"""``python -m hero.eval``: score a prediction file against its annotations, print (and optionally record) metrics.

    python -m hero.eval tvr data/07_model_output/tvr/val_predictions.json annotations/tvr_val.jsonl \\
        --split val --metrics-out data/08_reporting/metrics.json

Families: ``tvr`` (also How2R / DiDeMo: TVR submission JSON), ``tvqa`` (answer lines), ``violin`` (label lines),
``tvc`` (caption lines), ``retrieval`` (ranking lines). ``--task`` names the metrics' task (default: the family).
Malformed input exits with status 2 and a ``file:line: rule`` message, no stack trace.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence

from hero.metrics.captioning import CaptionEvalConfig
from hero.metrics.formats.files import FormatError
from hero.metrics.moment_metrics import MomentEvalConfig
from hero.metrics.report import flatten_metrics, write_metrics_json
from hero.metrics.retrieval import RetrievalEvalConfig
from hero.metrics.scoring import (
    score_captioning, score_moment_retrieval, score_text_to_video, score_video_qa, score_violin,
)

log = logging.getLogger(__name__)


def _scorer(args: argparse.Namespace) -> Callable[[str, str], dict[str, float]]:
    if args.family == "tvr":
        cfg = MomentEvalConfig(multi_gt_min_spans=None if args.no_multi_gt else 4)
        return lambda p, a: score_moment_retrieval(p, a, cfg)
    if args.family == "tvqa":
        return score_video_qa
    if args.family == "violin":
        return score_violin
    if args.family == "tvc":
        return lambda p, a: score_captioning(p, a, CaptionEvalConfig(meteor=not args.no_meteor))
    return lambda p, a: score_text_to_video(p, a, RetrievalEvalConfig(tie_rule=args.tie_rule))


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv``, score, write the flat metrics JSON to stdout; returns the exit status."""
    p = argparse.ArgumentParser(prog="python -m hero.eval", description=__doc__.splitlines()[0])
    p.add_argument("family", choices=["tvr", "tvqa", "violin", "tvc", "retrieval"])
    p.add_argument("predictions")
    p.add_argument("annotations")
    p.add_argument("--task", help="task name in the metric keys (default: the family)")
    p.add_argument("--split", default="val")
    p.add_argument("--metrics-out", help="merge the metrics into this metrics.json (atomic write)")
    p.add_argument("--tie-rule", default="pessimistic", choices=["pessimistic", "optimistic", "average"])
    p.add_argument("--no-meteor", action="store_true", help="skip METEOR (saves the JVM start)")
    p.add_argument("--no-multi-gt", action="store_true", help="turn off the DiDeMo >= 2-of-4 GT rule")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        metrics = _scorer(args)(args.predictions, args.annotations)
        flat = flatten_metrics(args.task or args.family, args.split, metrics)
        if args.metrics_out:
            write_metrics_json(args.metrics_out, flat)
    except (FormatError, FileNotFoundError, ValueError) as err:
        log.error("%s", err)
        return 2
    sys.stdout.write(json.dumps(flat, indent=2) + "\n")
    return 0
