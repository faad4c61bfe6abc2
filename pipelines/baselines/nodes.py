"""Baselines node: chance / prior and text-only reference numbers for every task of the corpus, no training.

Writes ``data/08_reporting/baselines.json`` (``{baseline: {"<dataset>/<split>/<metric>": value}}``, the metric
names of ``metrics.json``) and the baselines' prediction files under ``data/08_reporting/baselines/``, logs the
numbers to the pipeline's MLflow run as ``baseline/<baseline>/<dataset>/<split>/<metric>``, and prints the
headline metrics of the evaluated split.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from pipelines import tracking
from pipelines.paths import layer
from pipelines.reporting import BASELINE_COLUMNS, baseline_columns, read_json_file, results_table, write_json_atomic

log = logging.getLogger(__name__)

_SCORER_KEYS = ("moment_eval", "retrieval_eval", "caption_eval", "rank_cfg")
"""Keys of ``evaluate.options.<dataset>`` that say how predictions are judged; the baselines are judged alike."""


_SPLIT_ORDER = {"train": 0, "val": 1, "test": 2}


def baselines_path() -> Path:
    return layer("08_reporting") / "baselines.json"


def scorer_configs(evaluate: dict[str, Any], finetune: dict[str, Any] | None = None):
    """The evaluate step's scorer settings (``evaluate.options.<dataset>``), for every dataset. Without a
    ``rank_cfg`` there, the random moments follow the TVR finetuning's span rule (``min_span`` / ``max_span`` of
    ``finetune.tasks.tvr.finetune``, else ``finetune.run.finetune``), as the model's moments do."""
    from hero.config import from_dict, merge
    from hero.metrics.captioning import CaptionEvalConfig
    from hero.metrics.moment_metrics import MomentEvalConfig
    from hero.metrics.moment_ranking import MomentRankConfig
    from hero.metrics.retrieval import RetrievalEvalConfig
    from hero.eval.baselines import ScorerConfigs
    from hero.tasks.moment_retrieval import MomentRetrievalConfig

    classes = {"moment_eval": MomentEvalConfig, "retrieval_eval": RetrievalEvalConfig,
               "caption_eval": CaptionEvalConfig, "rank_cfg": MomentRankConfig}
    found: dict[str, Any] = {}
    for options in (evaluate.get("options") or {}).values():
        for key in _SCORER_KEYS:
            value = (options or {}).get(key)
            if value is not None:
                found[key] = value if not isinstance(value, dict) else from_dict(classes[key], value)
    if "rank_cfg" not in found:   # the TVR job's config, as `finetune_run_config` merges it
        finetune = finetune or {}
        tvr = merge(finetune.get("run") or {}, (finetune.get("tasks") or {}).get("tvr") or {}).get("finetune") or {}
        rule = {k: v for k, v in tvr.items() if k in ("min_span", "max_span")}
        if rule:
            found["rank_cfg"] = MomentRetrievalConfig(**rule).span_rule(MomentRankConfig.clip_len)
    return ScorerConfigs(moment_eval=found.get("moment_eval"), retrieval_eval=found.get("retrieval_eval"),
                         caption_eval=found.get("caption_eval"), moment_rank=found.get("rank_cfg"))


def compute_baselines(manifest_info: dict[str, Any], baselines: dict[str, Any],
                      evaluate: dict[str, Any], finetune: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every baseline on ``evaluate.split`` and ``baselines.splits`` (`hero.eval.baselines.run_baselines`).

    Returns:
        ``{"path": baselines.json, "split": the evaluated split, "seconds": wall time}``.
    """
    from hero.config import from_dict
    from pipelines.datasets import open_manifest
    from hero.eval.baselines import BaselineConfig, run_baselines

    t0 = time.perf_counter()
    split = evaluate.get("split", "val")
    params = dict(baselines or {})
    params["splits"] = list(dict.fromkeys([split, *params.get("splits", [])]))
    cfg = from_dict(BaselineConfig, params)
    manifest = open_manifest(manifest_info)
    results = run_baselines(manifest, layer("08_reporting") / "baselines", cfg, scorer_configs(evaluate, finetune))
    path = write_json_atomic(baselines_path(), results)
    tracking.current().parent.log_metrics(
        {f"baseline/{name}/{key}": value for name, flat in results.items() for key, value in flat.items()})
    seconds = time.perf_counter() - t0
    print(f"\nBaselines ({split}; {path}; {seconds:.1f}s):\n{baseline_table(results, split)}\n")
    return {"path": str(path), "split": split, "seconds": round(seconds, 2)}


DOC_COLUMNS = (*BASELINE_COLUMNS, "ceiling")
"""The baselines the printed table and docs/results.md show: the results table's, and the ranking tasks' ceiling
(`hero.eval.baselines.ceiling`; blank for the other tasks)."""

DOC_EXTRA = {"tvr": ("vr_r1", "vr_v_r1")}
"""Metrics docs/results.md lists besides the headlines: video retrieval, over all queries and the visual-only ones."""


def _headline_rows(results: dict[str, dict[str, float]], split: str,
                   extra: dict[str, tuple[str, ...]] | None = None) -> list[dict[str, Any]]:
    """One row per headline metric (and ``extra`` metric) of each task the baselines scored on ``split``, with its
    baseline columns."""
    from hero.tasks import datasets, headlines

    tasks = sorted({key.split("/")[0] for flat in results.values() for key in flat})
    rows = [{"task": t, "metric": m} for t in tasks if t in datasets()
            for m in (*headlines(t), *(extra or {}).get(t, ()))
            if any(f"{t}/{split}/{m}" in flat for flat in results.values())]
    baseline_columns(rows, split, results, DOC_COLUMNS)
    return rows


def baseline_table(results: dict[str, dict[str, float]], split: str) -> str:
    """The headline metrics of every task with a baseline, text-only, chance and ceiling side by side."""
    return results_table(_headline_rows(results, split), ["task", "metric", *DOC_COLUMNS])


DESCRIPTION = """\
What a prediction reaches that looks at no input (chance) or at the subtitles only (text-only): the floor a model's
number is read against. Computed by `kedro run --pipelines=baselines` (also part of `kedro run`; `dvc repro
baselines`), with no training and no video. Their predictions are written in the public formats and scored by the
evaluate step's scorers, so each number is the same quantity as a model's. All of them:
`data/08_reporting/baselines.json`.

- **chance** uses no input. TVQA / How2QA: the answer index most frequent in train, for every question (`uniform` in
  baselines.json: a uniform guess, 100 × mean(1 / number of answers)). VIOLIN: the train majority label. TVC: the
  caption most frequent in train, for every moment. TVR: a random ranking of the candidates the moment head ranks,
  (video, span) pairs with start clip m and end clip n, `min_len <= n - m < max_len` (2 and 16), over every video
  for VCMR, on the query's video for SVMR, and a random order of the videos for VR. Retrieval: a random order of the
  videos. Random rankings are the mean of `baselines.draws` (20) seeded draws.
- **text-only** matches text against the subtitles with the MiniLM-L6 sentence encoder the project ships
  (mean-pooled embeddings, cosine similarity; nothing trained). TVR: each subtitle is a candidate moment, its span
  widened to the clip grid (spans that widen alike count once); VCMR ranks every subtitle of the split's videos (the
  evaluation corpus) by similarity to the query, SVMR those of the query's video (one without subtitles: its whole
  length), VR the videos by their best subtitle. Retrieval: the videos by their best subtitle. TVQA / How2QA:
  "question answer" against the subtitles overlapping the question's `ts` window (none there: the video's; none at
  all: the train majority); the answer with the most similar subtitle wins. VIOLIN: the statement's best similarity
  to the subtitles of its window, entailed above a threshold chosen for accuracy on the val statements
  (`baselines.threshold_split`; the val number is therefore fitted on val, the test number is not). TVC: the first
  caption of the training moment whose subtitles are the most similar to the moment's subtitles (a moment without
  subtitles: the chance caption).
- **ceiling** (TVR, retrieval) is not a baseline but a bound, read from the split's own labels: the most any model
  can score when queries with identical text get identical rankings. Every query of a split ranks the same
  candidates (the split's videos), so a model's video ranking depends on the query's text alone: of G queries
  sharing one text and answered by different videos, at most one hits at rank 1. The ceiling ranks, per distinct
  text, the videos answering most of its queries first, and is scored like a prediction; it is exact for video
  retrieval (VR, retrieval R@k), and for VCMR / SVMR wherever a text does not repeat inside one video. The
  synthetic corpora describe visual events by templates ("Bob picks up the apple."), and the same event happens in
  several videos, so their visual-only queries repeat and their VR ceiling sits far below 100; free-form
  annotations (the public releases) rarely repeat.

The table holds the last baselines run's corpus (by `dvc repro`: the pipeline's, by default the synthetic TV corpus
of `make run`); `vr_v_r1` is VR R@1 over the visual-only queries (type v).
"""
"""The baselines, as docs/results.md states them (under the numbers of the last baselines run)."""


def baselines_markdown(results: dict[str, dict[str, float]] | None = None) -> str:
    """The "Reference baselines" section of docs/results.md: what each baseline does and its headline numbers on
    every split it was scored on ("" when the baselines have not run)."""
    results = results if results is not None else read_json_file(baselines_path())
    if not results:
        return ""
    found = {key.split("/")[1] for flat in results.values() for key in flat}
    splits = sorted(found, key=lambda split: (_SPLIT_ORDER.get(split, len(_SPLIT_ORDER)), split))
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for split in splits:
        for row in _headline_rows(results, split, DOC_EXTRA):
            merged = rows.setdefault((row["task"], row["metric"]), {"task": row["task"], "metric": row["metric"]})
            merged.update({f"{name} ({split})": row[name] for name in DOC_COLUMNS})
    columns = ["task", "metric", *[f"{name} ({split})" for split in splits for name in DOC_COLUMNS]]
    return ("\n## Reference baselines\n\n" + DESCRIPTION + "\n" + results_table(list(rows.values()), columns) + "\n")


def ablation_rows(columns: list[str], split: str) -> list[dict[str, Any]]:
    """Rows ``chance`` and ``text-only`` for the ablation table (columns ``<task>/<metric>``), from baselines.json
    ([] when the baselines have not run)."""
    results = read_json_file(baselines_path()) or {}
    rows = []
    for name in BASELINE_COLUMNS[::-1]:
        if name in results:
            values = {c: results[name].get(f"{c.split('/')[0]}/{split}/{c.split('/', 1)[1]}", "") for c in columns}
            rows.append({"variant": name, **values, "setting": "reference baseline, no training (below)"})
    return rows
