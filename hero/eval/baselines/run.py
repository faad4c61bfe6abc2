"""Every baseline on every labelled split of a corpus: prediction files in the public formats, scored by the
same scorers as a model's predictions (`hero.metrics.scoring`), so every number reads like a model's.

``run_baselines`` returns ``{baseline: {"<dataset>/<split>/<metric>": value}}`` with the baselines

- ``chance``: no input at all (`hero.eval.baselines.chance`): the train majority answer (QA) or label (VIOLIN),
  the most frequent train caption (TVC), a uniformly random ranking (TVR, retrieval: the mean of
  ``draws`` seeded draws, each written and scored like a prediction file);
- ``uniform``: the expected accuracy of a uniform random guess (QA, VIOLIN), computed exactly;
- ``text-only``: subtitles only (`hero.eval.baselines.text_only`);
- ``ceiling`` (TVR / How2R, text-to-video retrieval): the most any model can score when identical query texts
  get identical rankings (`hero.eval.baselines.ceiling`): a bound read from the split's own labels, not a baseline.

Predictions go to ``out_dir/<dataset>/<baseline>/<split>_predictions.json[l]`` (for random rankings: the first
draw). A split is skipped (logged) when it has no examples, lacks labels (a test release) or has no JSONL
ground-truth file.
"""

from __future__ import annotations

import logging
import tempfile
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hero.config import ConfigError
from hero.corpus.manifest import Manifest
from hero.eval.baselines import ceiling, chance, text_only
from hero.eval.baselines.encoder import SentenceEncoder
from hero.metrics.captioning import CaptionEvalConfig, shared_meteor
from hero.metrics.formats import (
    write_captions, write_qa_answers, write_rankings, write_tvr_submission, write_violin_labels,
)
from hero.metrics.moment_metrics import MomentEvalConfig
from hero.metrics.moment_ranking import MomentRankConfig
from hero.metrics.report import flatten_metrics
from hero.metrics.retrieval import RetrievalEvalConfig
from hero.metrics.scoring import (
    score_captioning, score_moment_retrieval, score_text_to_video, score_video_qa, score_violin,
)

log = logging.getLogger(__name__)

BASELINES = ("chance", "uniform", "text-only", "ceiling")

class _Families(dict):
    """Dataset (annotation file prefix) -> task family, read from the task registry."""

    def __missing__(self, dataset: str) -> str:
        from hero.tasks.registry import task_of_dataset

        return task_of_dataset(dataset).name

    def get(self, dataset: str, default: Any = None) -> Any:
        from hero.tasks.registry import datasets

        return self[dataset] if dataset in datasets() else default


FAMILIES = _Families()
"""Dataset -> task family (the registry's): which baseline applies to a dataset."""

_LABELLED: dict[str, Callable[[Mapping[str, Any]], bool]] = {
    "moment_retrieval": lambda e: e.get("vid_name") is not None and e.get("ts") is not None,
    "video_qa": lambda e: e.get("answer_idx") is not None,
    "violin": lambda e: e.get("label") is not None,
    "captioning": lambda e: bool(e.get("descs")),
    "text_video_retrieval": lambda e: e.get("vid_name") is not None,
}


@dataclass(frozen=True, kw_only=True)
class BaselineConfig:
    splits: tuple[str, ...] = ("val", "test")
    """Splits to score (each one that has labelled examples)."""
    draws: int = 20
    """Random rankings averaged for the chance baseline of TVR and retrieval."""
    seed: int = 0
    qa_with_question: bool = True
    """Text-only QA matches "question answer" (True) or the answer alone against the subtitles."""
    threshold_split: str = "val"
    """VIOLIN: the split whose labelled statements choose the text-only threshold (train when it has none)."""
    top_k: int = 100
    """Moments / videos listed per TVR query (the evaluator judges the first 100)."""

    def __post_init__(self) -> None:
        if not self.splits:
            raise ConfigError("baselines.splits: name at least one split")
        if self.draws < 1:
            raise ConfigError(f"baselines.draws: must be >= 1, got {self.draws}")
        if self.top_k < 1:
            raise ConfigError(f"baselines.top_k: must be >= 1, got {self.top_k}")


@dataclass(frozen=True, kw_only=True)
class ScorerConfigs:
    """How predictions are judged: the evaluate step's settings (None: the scorers' defaults)."""

    moment_eval: MomentEvalConfig | None = None
    retrieval_eval: RetrievalEvalConfig | None = None
    caption_eval: CaptionEvalConfig | None = None
    moment_rank: MomentRankConfig | None = None
    """The span rule of the random TVR candidates (``min_len`` / ``max_len``)."""


def annotation_file(manifest: Manifest, dataset: str, split: str) -> Path:
    return Path(manifest.root) / "annotations" / f"{dataset}_{split}.jsonl"


def prediction_file(out_dir: Path, dataset: str, baseline: str, split: str) -> Path:
    ext = "json" if FAMILIES[dataset] == "moment_retrieval" else "jsonl"
    return out_dir / dataset / baseline / f"{split}_predictions.{ext}"


class _Run:
    """One ``run_baselines`` call: the corpus, the settings, the encoder (built on first use) and the results."""

    def __init__(self, manifest: Manifest, out_dir: Path, cfg: BaselineConfig, scorers: ScorerConfigs,
                 encoder: SentenceEncoder | None) -> None:
        self.manifest, self.out_dir, self.cfg, self.scorers = manifest, Path(out_dir), cfg, scorers
        self._encoder = encoder
        self.thresholds: dict[str, float] = {}
        self.results: dict[str, dict[str, float]] = {b: {} for b in BASELINES}

    @property
    def encoder(self) -> SentenceEncoder:
        if self._encoder is None:  # built on first use: the chance baselines need no model
            from hero.eval.baselines.encoder import MiniLMEncoder

            self._encoder = MiniLMEncoder()
        return self._encoder

    def examples(self, dataset: str, split: str) -> list[dict[str, Any]]:
        return self.manifest.tasks.get(dataset, {}).get(split, [])

    def scorable(self, dataset: str, split: str) -> bool:
        examples = self.examples(dataset, split)
        ann = annotation_file(self.manifest, dataset, split)
        why = ("no examples" if not examples else
               "unlabelled examples (predict-only)" if not all(map(_LABELLED[FAMILIES[dataset]], examples)) else
               f"no ground-truth file {ann}" if not ann.is_file() else None)
        if why:
            log.info("baselines: %s/%s skipped: %s", dataset, split, why)
        return why is None

    def add(self, baseline: str, dataset: str, split: str, metrics: Mapping[str, float]) -> None:
        self.results[baseline].update(flatten_metrics(dataset, split, metrics))

    def score(self, dataset: str, path: Path, split: str, num_videos: int | None = None) -> dict[str, float]:
        ann = annotation_file(self.manifest, dataset, split)
        family = FAMILIES[dataset]
        if family == "moment_retrieval":
            return score_moment_retrieval(path, ann, self.scorers.moment_eval)
        if family == "video_qa":
            return score_video_qa(path, ann)
        if family == "violin":
            return score_violin(path, ann)
        if family == "captioning":
            return score_captioning(path, ann, self.scorers.caption_eval)
        return score_text_to_video(path, ann, self.scorers.retrieval_eval, num_videos)

    def write_and_score(self, baseline: str, dataset: str, split: str, write: Callable[[Path], None],
                        num_videos: int | None = None) -> None:
        path = prediction_file(self.out_dir, dataset, baseline, split)
        path.parent.mkdir(parents=True, exist_ok=True)
        write(path)
        self.add(baseline, dataset, split, self.score(dataset, path, split, num_videos))

    def random_draws(self, dataset: str, split: str, write_draw: Callable[[Path, np.random.Generator], None],
                     num_videos: int | None = None) -> None:
        """The mean metrics of ``draws`` random predictions (draw 0 is kept as the chance prediction file)."""
        path = prediction_file(self.out_dir, dataset, "chance", split)
        path.parent.mkdir(parents=True, exist_ok=True)
        runs: list[dict[str, float]] = []
        with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
            for draw in range(self.cfg.draws):
                rng = np.random.default_rng([self.cfg.seed, draw, zlib.crc32(f"{dataset}/{split}".encode())])
                target = path if draw == 0 else Path(tmp) / path.name
                write_draw(target, rng)
                runs.append(self.score(dataset, target, split, num_videos))
        self.add("chance", dataset, split, {k: float(np.mean([r[k] for r in runs])) for k in runs[0]})

    # ------------------------------------------------------------------ one method per family
    def moment_retrieval(self, dataset: str, split: str) -> None:
        examples, man = self.examples(dataset, split), self.manifest
        videos = man.split_videos(split) or list(man.videos)
        rank = self.scorers.moment_rank or MomentRankConfig(clip_len=man.clip_len)
        clips = {v: man.videos[v].num_clips for v in videos}
        self.random_draws(dataset, split, lambda p, rng: write_tvr_submission(p, chance.random_tvr_submission(
            examples, clips, man.clip_len, rng, min_len=rank.min_len, max_len=rank.max_len, top_k=self.cfg.top_k)))
        sub = text_only.tvr_predictions(examples, man, videos, self.encoder, self.cfg.top_k)
        self.write_and_score("text-only", dataset, split, lambda p: write_tvr_submission(p, sub))
        top = ceiling.ceiling_tvr_submission(examples, videos, self.cfg.top_k)
        self.write_and_score("ceiling", dataset, split, lambda p: write_tvr_submission(p, top))

    def text_video_retrieval(self, dataset: str, split: str) -> None:
        examples, man = self.examples(dataset, split), self.manifest
        videos = man.split_videos(split) or list(man.videos)
        self.random_draws(dataset, split, lambda p, rng: write_rankings(p, chance.random_rankings(examples, videos, rng)),
                          len(videos))
        ranks = text_only.retrieval_predictions(examples, man, videos, self.encoder)
        self.write_and_score("text-only", dataset, split, lambda p: write_rankings(p, ranks), len(videos))
        top = ceiling.ceiling_rankings(examples, videos)
        self.write_and_score("ceiling", dataset, split, lambda p: write_rankings(p, top), len(videos))

    def video_qa(self, dataset: str, split: str) -> None:
        examples = self.examples(dataset, split)
        prior = chance.majority_answer(self.examples(dataset, "train"))
        self.write_and_score("chance", dataset, split, lambda p: write_qa_answers(p, chance.constant_answers(examples, prior)))
        self.add("uniform", dataset, split, {"acc": chance.uniform_qa_accuracy(examples)})
        answers = text_only.qa_predictions(examples, self.manifest, self.encoder, prior, self.cfg.qa_with_question)
        self.write_and_score("text-only", dataset, split, lambda p: write_qa_answers(p, answers))

    def violin(self, dataset: str, split: str) -> None:
        examples = self.examples(dataset, split)
        prior = chance.majority_label(self.examples(dataset, "train"))
        self.write_and_score("chance", dataset, split, lambda p: write_violin_labels(p, chance.constant_labels(examples, prior)))
        self.add("uniform", dataset, split, {"acc": 50.0})
        threshold = self.violin_threshold(dataset)
        scores = text_only.statement_scores(examples, self.manifest, self.encoder)
        labels = text_only.violin_predictions(examples, scores, threshold)
        self.write_and_score("text-only", dataset, split, lambda p: write_violin_labels(p, labels))

    def violin_threshold(self, dataset: str) -> float:
        if dataset not in self.thresholds:
            fit_split = self.cfg.threshold_split
            fit = [e for e in self.examples(dataset, fit_split) if e.get("label") is not None]
            if not fit:
                log.warning("baselines: %s/%s has no labelled statements; the text-only threshold is chosen on train",
                            dataset, fit_split)
                fit_split, fit = "train", [e for e in self.examples(dataset, "train") if e.get("label") is not None]
            scores = text_only.statement_scores(fit, self.manifest, self.encoder)
            self.thresholds[dataset] = text_only.best_threshold(scores, [e["label"] for e in fit])
            log.info("baselines: %s text-only threshold %.4f (chosen on %d %s statements)", dataset,
                     self.thresholds[dataset], len(fit), fit_split)
        return self.thresholds[dataset]

    def captioning(self, dataset: str, split: str) -> None:
        examples, train = self.examples(dataset, split), self.examples(dataset, "train")
        prior = chance.most_frequent_caption(train)
        self.write_and_score("chance", dataset, split, lambda p: write_captions(p, chance.constant_captions(examples, prior)))
        caps = text_only.caption_predictions(train, examples, self.manifest, self.encoder, prior)
        self.write_and_score("text-only", dataset, split, lambda p: write_captions(p, caps))


def run_baselines(manifest: Manifest, out_dir: str | Path, cfg: BaselineConfig | None = None,
                  scorers: ScorerConfigs | None = None, *,
                  encoder: SentenceEncoder | None = None,
                  datasets: Sequence[str] | None = None) -> dict[str, dict[str, float]]:
    """Score every baseline on every labelled split of ``cfg.splits`` for each dataset of the manifest.

    Args:
        encoder: the sentence encoder of the text-only baselines (default: `MiniLMEncoder`, built when first
            needed).
        datasets: restrict to these (default: every dataset of the manifest with a known family).
    Returns:
        ``{baseline: {"<dataset>/<split>/<metric>": value}}`` for ``baseline`` in `BASELINES`.
    """
    cfg = cfg or BaselineConfig()
    run = _Run(manifest, Path(out_dir), cfg, scorers or ScorerConfigs(), encoder)
    with shared_meteor():   # one METEOR process for every caption baseline and split
        for dataset in datasets if datasets is not None else list(manifest.tasks):
            family = FAMILIES.get(dataset)
            if family is None:
                log.info("baselines: %s skipped: no scorer for this dataset", dataset)
                continue
            for split in cfg.splits:
                if run.scorable(dataset, split):
                    t0 = time.perf_counter()
                    getattr(run, family)(dataset, split)
                    log.info("baselines: %s/%s in %.1fs", dataset, split, time.perf_counter() - t0)
    return run.results
