"""Evaluate nodes: predictions in the public formats, official-definition metrics, the results table."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

import torch

from hero.metrics.captioning import shared_meteor
from hero.tasks import headlines
from pipelines import tracking
from pipelines.datasets import open_manifest, open_store
from pipelines.paths import layer, resolve
from pipelines.reporting import plot_retrieved_moments, results_table

log = logging.getLogger(__name__)


def evaluate_task(finetune_info: dict[str, Any], evaluate: dict[str, Any], manifest_info: dict[str, Any],
                  features_info: dict[str, Any], *, dataset: str, out_root: Path | None = None) -> dict[str, Any]:
    """Predict ``evaluate.split`` with each finetuned model, write the predictions and score them; the metrics,
    the prediction file and the pictures go to each job's MLflow run.

    Returns:
        ``{job: {"<dataset>/<split>/<metric>": value, …}}`` (a job: ``pretrained``, ``scratch``, or with more than
        one seed ``pretrained@seed1`` …); predictions go to ``data/07_model_output/<dataset>/<job>/``.
    """
    return evaluate_with_examples(finetune_info, evaluate, manifest_info, features_info, dataset=dataset,
                                  out_root=out_root)["metrics"]


def evaluate_with_examples(finetune_info: dict[str, Any], evaluate: dict[str, Any], manifest_info: dict[str, Any],
                           features_info: dict[str, Any], *, dataset: str, out_root: Path | None = None,
                           keep: Sequence[str] = (), references: bool = False) -> dict[str, Any]:
    """`evaluate_task`'s metrics (``metrics``) and each job's per-example values of the task's headline metrics and
    of ``keep`` (``examples``: ``{job: {metric: {example id: value}}}``, the input of the results table's
    intervals). With ``references``, ``examples`` also holds the reference baselines of `REFERENCE_ARMS` under
    their names (`reference_examples`), for the table's comparisons of each arm with them."""
    torch.set_num_threads(max(1, torch.get_num_threads()))
    manifest, store = open_manifest(manifest_info), open_store(features_info)
    out: dict[str, Any] = {}
    examples: dict[str, Any] = {}
    with shared_meteor():   # captioning: one METEOR process scores every job
        for job, info in finetune_info.items():
            out_dir = (out_root or layer("07_model_output")) / dataset / job
            metrics, files, per_example = evaluate_run(info["run_dir"], dataset, manifest, store, evaluate, out_dir,
                                                         job, keep)
            run = tracking.current().run(info.get("mlflow_run_id"))
            run.log_metrics(metrics)
            for folder, path in files.items():
                run.log_artifact(path, folder)
            out[job] = metrics
            examples[job] = per_example
            log.info("%s (%s): %s", dataset, job, ", ".join(f"{k}={v:.2f}" for k, v in metrics.items()))
    if references and examples:
        examples.update(reference_examples(dataset, manifest, evaluate, next(iter(examples.values()))))
    return {"metrics": out, "examples": examples}


REFERENCE_ARMS = ("text-only",)
"""Reference baselines the results table compares each arm with, example by example (their per-example values are
read back from the prediction files the baselines step wrote)."""


def reference_examples(dataset: str, manifest, evaluate: dict[str, Any],
                       like: dict[str, dict[str, float]]) -> dict[str, dict[str, dict[str, float]]]:
    """The per-example values of each baseline of `REFERENCE_ARMS` on ``evaluate.split``, scored from its prediction
    file (``data/08_reporting/baselines/<dataset>/<baseline>/``) with the evaluate step's options, for the metrics
    of ``like`` (a model job's per-example values). A baseline is left out, with a log line saying why, when its file
    is missing, its examples differ from ``like``'s, or its mean is not the number in baselines.json (a file left
    by a baselines run of another corpus or other options)."""
    from hero.eval.baselines.run import prediction_file
    from hero.eval.predict import predict_options
    from hero.tasks import Written, task_of_dataset
    from hero.tasks.predict import annotation_path
    from pipelines.baselines.nodes import baselines_path
    from pipelines.reporting import read_json_file

    split = evaluate.get("split", "val")
    options = predict_options(evaluate.get("options", {}).get(dataset, {}), dataset)
    annotations = annotation_path(manifest, dataset, split)
    numbers = read_json_file(baselines_path()) or {}
    videos = manifest.split_videos(split) or list(manifest.videos)
    written = Written(len(manifest.tasks.get(dataset, {}).get(split, [])), len(videos))
    out: dict[str, dict[str, dict[str, float]]] = {}
    for name in REFERENCE_ARMS:
        path = prediction_file(baselines_path().parent / "baselines", dataset, name, split)
        if not path.is_file() or not annotations.is_file():
            log.info("%s %s: no %s comparison (%s missing)", dataset, split, name,
                     path if not path.is_file() else annotations)
            continue
        values = task_of_dataset(dataset).per_example(path, annotations, options, written)
        values = {m: values[m] for m in like if m in values}
        why = _unlike(values, like, {m: numbers.get(name, {}).get(f"{dataset}/{split}/{m}") for m in values})
        if why:
            log.warning("%s %s: no %s comparison: %s (%s)", dataset, split, name, why, path)
            continue
        out[name] = values
    return out


def _unlike(values: dict[str, dict[str, float]], like: dict[str, dict[str, float]],
            numbers: dict[str, float | None]) -> str | None:
    """Why a baseline's per-example ``values`` cannot stand beside a model's (``like``): other examples, or a mean
    that is not the baseline's recorded number; None when they can."""
    for m, v in values.items():
        if set(v) != set(like[m]):
            return f"{m}: its examples differ from the models'"
        mean, number = sum(v.values()) / max(len(v), 1), numbers[m]
        if number is None or abs(mean - number) > 1e-6 * max(1.0, abs(number)):
            return f"{m}: the file's mean {mean:.4f} is not baselines.json's {number} (another corpus's or options' run)"
    return None


def evaluate_run(run_dir: str, dataset: str, manifest, store, evaluate: dict[str, Any], out_dir: Path,
                 init: str, keep: Sequence[str] = ()) -> tuple[dict[str, float], dict[str, Path], dict[str, dict[str, float]]]:
    """One finetuned run's metrics on ``evaluate.split``, its files by kind (predictions; for moment retrieval a
    picture of the top moments of a few queries and the HTML search page) and the per-example values of its
    task's headline metrics and of the metrics in ``keep`` (`DownstreamTask.per_example`; e.g. TVR's ``vr_v_r1``,
    VR R@1 over the visual-only queries, keyed by their query ids)."""
    from hero.eval.predict import predict_options, predict_split, retrieval_examples
    from hero.presets import preset_tokenizer
    from hero.tasks import Written, task_of_dataset
    from hero.train.finetune import load_task_checkpoint

    split = evaluate.get("split", "val")
    model, preset, step = load_task_checkpoint(resolve(run_dir))
    tokenizer = preset_tokenizer(preset)
    options = predict_options(evaluate.get("options", {}).get(dataset, {}), dataset)
    res = predict_split(model, dataset, manifest, store, tokenizer, split, out_dir, options=options)
    task = task_of_dataset(dataset)
    per_example = task.per_example(Path(res["predictions"]), Path(res["annotations"]), options,
                                   Written(res["count"], res["num_videos"]))
    missing = [m for m in keep if m not in per_example]
    if missing:  # e.g. a by-type metric on a split without queries of that type
        log.warning("%s %s: no per-example values for %s (has %s)", dataset, split, missing, sorted(per_example))
    per_example = {m: per_example[m] for m in dict.fromkeys([*task.headlines, *keep]) if m in per_example}
    files = {"predictions": res["predictions"]}
    if model.name == "moment_retrieval":  # a picture of what the model retrieves for a few queries
        examples = retrieval_examples(res["predictions"], manifest, dataset, split, num_queries=6, top_k=5)
        files["plots"] = plot_retrieved_moments(examples, out_dir / f"{split}_retrieved_moments.png",
                                                title=f"{dataset} {split}: top moments ({init})")
        files["reports"] = search_report(model, manifest, store, tokenizer, dataset, split, out_dir, init)
    # the checkpoint scored (model selection's, chosen on val): listed under the results table
    metrics = {**res["metrics"], f"{dataset}/{split}/selected_step": float(step),
               **{f"{dataset}/{split}/variant/{k}": v for k, v in model.inference_variant().items()}}
    return metrics, {k: v for k, v in files.items() if v}, per_example


def search_report(model, manifest, store, tokenizer, dataset: str, split: str, out_dir: Path, init: str) -> Path | None:
    """The HTML search page (query, ranked moments, highlighted spans, thumbnails) for the split's first query."""
    from hero.eval.search import MomentSearcher
    from hero.eval.search_report import write_search_report

    examples = manifest.tasks.get(dataset, {}).get(split, [])
    if not examples:
        return None
    query = examples[0]["desc"]
    searcher = MomentSearcher.from_model(model, manifest, store, tokenizer, videos=manifest.split_videos(split) or None)
    page = write_search_report(out_dir / f"{split}_search.html", query, searcher.search(query, top_k=10), manifest,
                               store, title=f"{dataset} {split}: moment search ({init})")
    return without_project_root(page)


def without_project_root(path: Path) -> Path:
    """``path`` (a text file) rewritten with the project folder's path taken out of the paths it shows (the page
    names the corpus it searched): an output DVC tracks holds the same bytes in any clone."""
    from hero.storage.atomic import write_text_atomic
    from pipelines.settings import project_root

    text = path.read_text(encoding="utf-8")
    prefix = project_root().as_posix().rstrip("/") + "/"
    if prefix in text:
        write_text_atomic(path, text.replace(prefix, ""))
    return path


def arm_of(job: str) -> str:
    """The arm a finetuning job belongs to: ``pretrained@seed1`` -> ``pretrained``."""
    return job.split("@", 1)[0]


def summarize(evaluate: dict[str, Any], **task_outputs: dict[str, Any]) -> dict[str, Any]:
    """The results table (pretrained vs scratch with intervals, the reference baselines beside them) and the
    metrics, in four outputs.

    Args:
        task_outputs: ``<dataset>_metrics`` (`evaluate_task`'s ``{job: metrics}``) and, when the evaluate step
            computed them, ``<dataset>_examples`` (``{job: {metric: {id: value}}}``).

    Returns:
        ``results_table`` (markdown: data/08_reporting/results.md, also an MLflow artifact): per task and headline
        metric, each arm's mean over seeds with its 95% interval, chance and text-only, the paired difference
        pretrained − scratch with its interval and a verdict (a gain only when the interval excludes 0);
        ``metrics``: every metric, ``{"<dataset>/<split>/<metric>": value}`` for the pretrained models and
        ``<job>/…`` for the others (data/08_reporting/metrics.json); ``headline_metrics``: the headline metrics per
        task and job, the small file DVC and git track (reports/metrics.json); ``headline``: per task, the
        pretrained model's headline metric (mean over seeds), its interval and the difference to scratch, for the
        pipeline's MLflow run, and the pretrained model's difference to the text-only baseline with its interval
        (``<task>/<metric>_vs_text_only``, ``…_low``, ``…_high``).

    Below the table, each arm against the text-only baseline (per headline, the paired difference with its interval
    and verdict), where ``<dataset>_examples`` holds the baseline's per-example values (`reference_examples`).
    """
    from hero.metrics.results import MetricResults, metric_rows, render_comparisons, render_markdown
    from hero.metrics.results import summarize as summarize_rows
    from hero.tasks import headlines
    from pipelines.baselines.nodes import baselines_path
    from pipelines.reporting import BASELINE_COLUMNS, read_json_file

    split = evaluate.get("split", "val")
    baselines = read_json_file(baselines_path()) or {}
    flat: dict[str, float] = {}
    headline_values: dict[str, dict[str, dict[str, float]]] = {}
    rows: list[MetricResults] = []
    vs_rows: list[MetricResults] = []    # the same metrics with the reference baselines as arms
    for key in sorted(task_outputs):
        if not key.endswith("_metrics"):
            continue
        dataset, per_job = key.removesuffix("_metrics"), task_outputs[key]
        for job, metrics in per_job.items():
            for k, v in metrics.items():
                flat[k if job == "pretrained" else f"{job}/{k}"] = float(v)
        names = headlines(dataset)
        for metric in names:
            found = {job: float(m[f"{dataset}/{split}/{metric}"]) for job, m in per_job.items()
                     if f"{dataset}/{split}/{metric}" in m}
            if found:
                headline_values.setdefault(dataset, {})[metric] = found
        examples = task_outputs.get(f"{dataset}_examples") or {}
        arms: dict[str, list] = {}
        refs: dict[str, list] = {}
        for job, per_example in examples.items():
            (refs if job in REFERENCE_ARMS else arms).setdefault(arm_of(job), []).append(per_example)
        references = {m: {b: baselines.get(b, {}).get(f"{dataset}/{split}/{m}") for b in BASELINE_COLUMNS}
                      for m in names}
        if arms:
            rows += metric_rows(dataset, arms, names, references)
            shared = [m for m in names if all(m in r[0] for r in refs.values())]
            if refs and shared:   # each arm against the references: the baseline is an arm with one "seed"
                vs_rows += metric_rows(dataset, {**arms, **refs}, shared)
    summaries = summarize_rows(rows)
    table = render_markdown(summaries)
    vs_pairs = [(arm, ref) for ref in REFERENCE_ARMS for arm in ("pretrained", "scratch")]
    vs_summaries = summarize_rows(vs_rows, vs_pairs)
    vs_table = render_comparisons(vs_summaries, vs_pairs)
    if vs_table:
        table += ("\nEach arm against the text-only baseline, paired over the same examples (the baseline is one "
                  "prediction: seeds per arm read pretrained/scratch/text-only): \"gain\" / \"loss\" when the "
                  "interval lies above / below 0.\n\n" + vs_table)
    steps: dict[str, dict[str, int]] = {}     # the checkpoint each job was scored on, and what selection kept with it
    kept: dict[str, dict[str, str]] = {}
    for key, per_job in sorted(task_outputs.items()):
        if not key.endswith("_metrics"):
            continue
        for job, m in per_job.items():
            for k, v in m.items():
                if k.endswith("/selected_step"):
                    steps.setdefault(key.removesuffix("_metrics"), {})[job] = int(v)
            variant = ", ".join(f"{k.rsplit('/', 1)[1]} {v:g}" for k, v in m.items() if "/variant/" in k)
            if variant:
                kept.setdefault(key.removesuffix("_metrics"), {})[job] = f" ({variant})"
    if steps:
        table += ("\nScored checkpoints (the step model selection kept on val, or the last one): "
                  + "; ".join(f"{d} " + ", ".join(f"{job} {n}{kept.get(d, {}).get(job, '')}" for job, n in by_job.items())
                              for d, by_job in steps.items()) + ".\n")
    parent: dict[str, dict[str, float]] = {}
    for s in summaries:  # one headline per task on the parent run: its first (HERO's number)
        if any(k.startswith(f"{s.task}/") for k in parent) or "pretrained" not in s.arms:
            continue
        iv, diff = s.arms["pretrained"], s.differences.get(("pretrained", "scratch"))
        name = tracking.metric_name(f"{s.task}/{s.metric}")
        parent[name] = {"value": iv.estimate, "step": 0}
        parent[f"{name}_low"], parent[f"{name}_high"] = {"value": iv.low, "step": 0}, {"value": iv.high, "step": 0}
        if diff is not None:
            parent[f"{name}_gain"] = {"value": diff.estimate, "step": 0}
    for s in vs_summaries:   # the pretrained model against the text-only baseline, with its interval
        vs = s.differences.get(("pretrained", "text-only"))
        if vs is None or any(k.startswith(f"{s.task}/") and k.endswith("_vs_text_only") for k in parent):
            continue
        name = tracking.metric_name(f"{s.task}/{s.metric}_vs_text_only")
        parent[name] = {"value": vs.estimate, "step": 0}
        parent[f"{name}_low"], parent[f"{name}_high"] = {"value": vs.low, "step": 0}, {"value": vs.high, "step": 0}
    for dataset, by_job in steps.items():   # the selected checkpoints, on the parent run too
        for job, n in by_job.items():
            parent[tracking.metric_name(f"{dataset}/selected_step/{job}")] = {"value": float(n), "step": 0}
    print(f"\nDownstream results ({split}):\n{table}\n"  # the run's answer, on the console whatever the log level
          "MLflow: make ui (one run per pipeline run, named for it; a child run per training job)")
    return {"results_table": table, "metrics": flat, "headline_metrics": headline_values, "headline": parent}
