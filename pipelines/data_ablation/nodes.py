"""The data ablations: does pretraining on diverse video help downstream, and which input channels matter.

- The domain ablation (`run_data_ablation`): pretrain on a mixture of named corpora (TV only, instructional only,
  both), then finetune and evaluate each task on EACH corpus's own annotations.
- The channel ablation (`run_channel_ablation`): finetune a retrieval and a QA task from the main pretrained
  checkpoint seeing video only, subtitles only or both, and predict with the same channels.
- `data_ablation_table`: both tables for docs/results_data.md, rows linked to their MLflow runs.

One variant per `kedro run` (``params:data_ablation_variant`` / ``params:channel_ablation_variant``), as the paper
ablations do (pipelines/ablation), so `dvc repro` runs each variant as its own stage.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hero.config import merge
from hero.data.channels import CHANNELS
from pipelines import tracking
from pipelines.ablation.nodes import EXAMPLES, MLFLOW_UI, not_run_line, variant_examples
from pipelines.baselines.nodes import ablation_rows
from pipelines.corpus.nodes import build_manifest, prepare_corpus
from pipelines.datasets import (
    FeatureStoreDataset,
    ManifestDataset,
    TrainingJob,
    run_job,
    side_by_side,
)
from hero.tasks import datasets as known_datasets, headlines
from pipelines.evaluate.nodes import evaluate_with_examples
from pipelines.features.nodes import extract_features
from pipelines.finetune.nodes import job_launch
from pipelines.paths import data_root, data_root_at, layer, reports
from pipelines.pretrain.nodes import corpus_run_config, job_title
from pipelines.reporting import read_json_file, results_table, write_json_atomic

log = logging.getLogger(__name__)

CORPORA_DIR = "corpora"
"""``data/corpora/``: the corpora the data ablation builds itself, each in its own 01_raw … 03_primary layers there
(one DVC out), never in the main corpus and features stages' folders."""


def build_corpora(data_ablation: dict[str, Any], corpus: dict[str, Any], features: dict[str, Any],
                  manifest_info: dict[str, Any], features_info: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each corpus of ``data_ablation.corpora``, ingested and with its features: ``{name: {"manifest_info",
    "features_info"}}``.

    A corpus is ``main`` (the main pipeline's corpus: the corpus and features stages' outputs, so the TV domain is
    the very corpus everything else trains on) or a mapping merged over ``params:corpus`` (e.g. ``{synthetic:
    {domain: instructional}}``: the same size, seed and reader), built by the corpus and features nodes under
    ``data/corpora/``. They are content-addressed, so a corpus built before costs a look-up.

    Raises:
        TypeError: a spec that is neither, naming ``data_ablation.corpora.<name>``.
        ValueError: corpora whose features differ in dimension (one model reads them all).
    """
    out: dict[str, dict[str, Any]] = {}
    root = data_root() / CORPORA_DIR
    for name, spec in data_ablation["corpora"].items():
        if spec == "main":
            out[name] = {"manifest_info": manifest_info, "features_info": features_info}
            continue
        if not isinstance(spec, Mapping):
            raise TypeError(f"data_ablation.corpora.{name}: 'main' or a mapping of params:corpus values, got {spec!r}")
        cfg = merge(corpus, spec)
        source = cfg.get("synthetic") if cfg["path"] == "synthetic" else cfg["path"]
        log.info("data ablation: corpus %s (%s) under %s", name, source, root)
        with data_root_at(root):
            out[name] = build_corpus(name, cfg, features)
    dims = {name: int(c["features_info"]["dim"]) for name, c in out.items()}
    if len(set(dims.values())) > 1:
        raise ValueError(f"data_ablation.corpora: feature dimensions differ ({dims}); one model reads every corpus, "
                         "so extract them with the same params:features")
    tracking.current().parent.set_tags({f"data_ablation.corpus.{n}": c["manifest_info"]["key"] for n, c in out.items()})
    return out


def build_corpus(name: str, corpus: dict[str, Any], features: dict[str, Any]) -> dict[str, Any]:
    """One corpus through the corpus and features nodes and their datasets, in the data layers of the current data
    root (`pipelines.paths.data_root_at`); records named for the corpus, so corpora built at once do not mix."""
    manifests = ManifestDataset(filepath=str(layer("02_intermediate") / f"manifest_info.{name}.json"))
    manifests.save(build_manifest(prepare_corpus(corpus), corpus))
    m_info = manifests.load()
    stores = FeatureStoreDataset(filepath=str(layer("03_primary") / f"features_info.{name}.json"),
                                 folder=str(layer("03_primary") / "features"))
    stores.save(extract_features(m_info, features))
    return {"manifest_info": m_info, "features_info": stores.load()}


def mixture_run_config(run: dict[str, Any], corpora: dict[str, dict[str, Any]],
                       weights: Mapping[str, float]) -> dict[str, Any]:
    """``run`` pretraining on ``data.corpora``: each corpus's manifest and feature store with its weight."""
    mix = {name: {"path": c["manifest_info"]["path"], "features": c["features_info"]["path"],
                  "weight": float(weights[name])} for name, c in corpora.items()}
    return merge(run, {"data": {"corpora": mix}})  # the trainer reads the feature dim from the stores


def run_data_ablation(variant_name: str, data_ablation: dict[str, Any], pretrain: dict[str, Any],
                      finetune: dict[str, Any], evaluate: dict[str, Any], launch: dict[str, Any],
                      corpora: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Run the variant ``variant_name`` (``params:data_ablation_variant``) of ``data_ablation.variants``.

    A variant is a weight per corpus (``{tv: 1, howto: 0}``; 0 = not read). It pretrains with ``params:pretrain.run``
    (plus ``data_ablation.pretrain_train``) on that mixture — the job logs ``pretrain/train/<corpus>/loss`` into this
    run — then finetunes every task of ``data_ablation.tasks`` on every corpus, side by side, each a child run.

    Returns:
        the row written to ``reports/data_ablations/<variant>.json``: ``<corpus>/<task>/<metric>`` for the
        headline metrics, the weights and the MLflow run.
    """
    name = variant_name
    variants = data_ablation["variants"]
    if name not in variants:
        raise ValueError(f"data_ablation_variant: {name!r} is not one of {sorted(variants)}")
    weights = dict(variants[name])
    unknown = sorted(set(weights) - set(corpora))
    if unknown or not weights:
        raise ValueError(f"data_ablation.variants.{name}: weights must name corpora of data_ablation.corpora "
                         f"({sorted(corpora)}); unknown: {unknown or 'none given'}")
    check_tasks(data_ablation["tasks"], "data_ablation.tasks")
    tracker = tracking.current()
    tracker.parent.set_tags({"data_ablation": name})
    run = merge(pretrain["run"], {"train": data_ablation.get("pretrain_train") or {}})
    keys = {n: [c["manifest_info"]["key"], c["features_info"]["key"]] for n, c in corpora.items()}
    cfg = mixture_run_config(run, {n: corpora[n] for n in weights}, weights)
    data = tuple(r for n in weights for r in (corpora[n]["manifest_info"], corpora[n]["features_info"]))
    pre_info = run_job(TrainingJob(name=f"data_ablation/{name}/pretrain", title=f"{name}: {job_title('pretrain', cfg)}",
                                   config=cfg, inputs={"corpora": {n: keys[n] for n in weights}}, launch=launch,
                                   tags={"task": "pretrain", "data_ablation": name}, data=data), layer("06_models"))
    jobs = {f"{c}/{t}": (c, t) for c in corpora for t in data_ablation["tasks"]}
    parallel = max(1, min(int(finetune.get("parallel_jobs", 1)), len(jobs)))
    task_launch = job_launch(launch, parallel)

    def one(corpus: str, dataset: str) -> dict[str, Any]:
        return finetune_and_evaluate(
            f"data_ablation/{name}/{corpus}/{dataset}", dataset, corpora[corpus], pre_info, finetune, evaluate,
            task_launch, tags={"task": dataset, "eval_corpus": corpus, "data_ablation": name},
            out_root=layer("06_models") / "data_ablation" / name / "predictions" / corpus)

    results = side_by_side({job: functools.partial(one, *ct) for job, ct in jobs.items()}, parallel)
    split = evaluate.get("split", "val")
    row: dict[str, Any] = {"variant": name, "split": split, "weights": weights,
                           "mlflow_run_id": tracker.parent.run_id, "mlflow_experiment_id": tracker.experiment_id}
    for job, (_, dataset) in jobs.items():
        for metric in headlines(dataset):
            row[f"{job}/{metric}"] = results[job]["metrics"].get(f"{dataset}/{split}/{metric}")
    write_json_atomic(layer("06_models") / "data_ablation" / name / EXAMPLES,
                      {"split": split, "seeds": 1, "tasks": {job: [r["examples"]] for job, r in results.items()}})
    write_json_atomic(reports("data_ablations", f"{name}.json"), row)
    return row


def run_channel_ablation(variant_name: str, channel_ablation: dict[str, Any], finetune: dict[str, Any],
                         evaluate: dict[str, Any], launch: dict[str, Any], manifest_info: dict[str, Any],
                         features_info: dict[str, Any], pretrain_info: dict[str, Any]) -> dict[str, Any]:
    """Finetune each task of ``channel_ablation.tasks`` from the main pretraining run seeing only the channels
    ``variant_name`` (``params:channel_ablation_variant``: video, subtitles or both), and evaluate with them.

    Returns:
        the row written to ``reports/channel_ablations/<variant>.json``: ``<task>/<metric>`` and the run.
    """
    name = variant_name
    if name not in channel_ablation["variants"] or name not in CHANNELS:
        raise ValueError(f"channel_ablation_variant: {name!r} is not one of {list(channel_ablation['variants'])} "
                         f"(each one of {list(CHANNELS)})")
    check_tasks(channel_ablation["tasks"], "channel_ablation.tasks")
    tracker = tracking.current()
    tracker.parent.set_tags({"channel_ablation": name})
    corpus = {"manifest_info": manifest_info, "features_info": features_info}
    tasks = list(channel_ablation["tasks"])
    parallel = max(1, min(int(finetune.get("parallel_jobs", 1)), len(tasks)))
    task_launch = job_launch(launch, parallel)
    ft = merge(finetune, {"run": {"data": {"channels": name}}})

    def one(dataset: str) -> dict[str, Any]:
        return finetune_and_evaluate(
            f"channel_ablation/{name}/{dataset}", dataset, corpus, pretrain_info, ft, evaluate, task_launch,
            tags={"task": dataset, "channel_ablation": name},
            out_root=layer("06_models") / "channel_ablation" / name / "predictions")

    results = side_by_side({t: functools.partial(one, t) for t in tasks}, parallel)
    split = evaluate.get("split", "val")
    row: dict[str, Any] = {"variant": name, "split": split, "mlflow_run_id": tracker.parent.run_id,
                           "mlflow_experiment_id": tracker.experiment_id}
    for dataset in tasks:
        for metric in headlines(dataset):
            row[f"{dataset}/{metric}"] = results[dataset]["metrics"].get(f"{dataset}/{split}/{metric}")
    write_json_atomic(layer("06_models") / "channel_ablation" / name / EXAMPLES,
                      {"split": split, "seeds": 1, "tasks": {t: [r["examples"]] for t, r in results.items()}})
    write_json_atomic(reports("channel_ablations", f"{name}.json"), row)
    return row


def check_tasks(tasks: list[str], key: str) -> None:
    """Every task is a dataset some registered task reads (so it has headline metrics), before any job starts."""
    unknown = [t for t in tasks if t not in known_datasets()]
    if unknown or not tasks:
        raise ValueError(f"{key}: tasks must be some of {sorted(known_datasets())}; got {list(tasks)}")


def finetune_and_evaluate(job: str, dataset: str, corpus: dict[str, Any], pre_info: dict[str, Any],
                          finetune: dict[str, Any], evaluate: dict[str, Any], launch: dict[str, Any], *,
                          tags: dict[str, str], out_root: Path) -> dict[str, Any]:
    """Finetune ``dataset`` on ``corpus`` from the pretraining run ``pre_info`` (an MLflow child run named ``job``),
    then score its predictions of ``evaluate.split`` with the input channels it was trained with (``data.channels``).

    Returns:
        ``{"metrics": {"<dataset>/<split>/<metric>": value}, "examples": {metric: {example id: value}}}``.
    """
    m_info, f_info = corpus["manifest_info"], corpus["features_info"]
    run = merge(finetune["run"], finetune.get("tasks", {}).get(dataset) or {})
    cfg = merge(corpus_run_config(run, m_info, f_info), {"task": dataset, "train": {"init_from": pre_info["run_dir"]}})
    keys = {"manifest": m_info["key"], "features": f_info["key"], "pretrain": pre_info["key"]}
    info = run_job(TrainingJob(name=job, title=job, config=cfg, inputs=keys, launch=launch, tags=tags,
                               data=(m_info, f_info)), layer("06_models"))
    channels = cfg["data"].get("channels", "both")
    ev = merge(evaluate, {"options": {dataset: {"channels": channels}}})  # predict_split keyword arguments
    out = evaluate_with_examples({"run": info}, ev, m_info, f_info, dataset=dataset, out_root=out_root)
    return {"metrics": out["metrics"]["run"], "examples": out["examples"]["run"]}


def domain_baselines(corpora: dict[str, dict[str, Any]], data_ablation: dict[str, Any], baselines: dict[str, Any],
                     evaluate: dict[str, Any], finetune: dict[str, Any]) -> dict[str, str]:
    """The reference baselines (`hero.eval.baselines.run_baselines`: chance, text-only) of every corpus of the
    domain ablation, for its tasks on ``evaluate.split``, each judged as the evaluate step judges a model:
    ``data/08_reporting/data_ablation_baselines/<corpus>.json`` and its prediction files in the folder of that name.
    No training; seconds per corpus.

    Returns:
        ``{corpus: path of its baselines.json}`` (relative to the project).
    """
    from hero.config import from_dict
    from hero.eval.baselines import BaselineConfig, run_baselines
    from pipelines.baselines.nodes import scorer_configs
    from pipelines.datasets import open_manifest
    from pipelines.paths import relative

    split = evaluate.get("split", "val")
    cfg = from_dict(BaselineConfig, {**(baselines or {}), "splits": [split]})
    root = layer("08_reporting") / "data_ablation_baselines"
    out = {}
    for name, corpus in corpora.items():
        results = run_baselines(open_manifest(corpus["manifest_info"]), root / name, cfg,
                                scorer_configs(evaluate, finetune), datasets=list(data_ablation["tasks"]))
        out[name] = str(relative(write_json_atomic(root / f"{name}.json", results)))
        log.info("data ablation: the %s corpus's baselines on %s -> %s", name, split, out[name])
    return out


def data_ablation_table(data_ablation: dict[str, Any], channel_ablation: dict[str, Any],
                        baselines: Mapping[str, str] | None = None) -> str:
    """docs/results_data.md: the pretraining-data table (rows: variants, then each domain's reference baselines;
    columns: ``<eval corpus>/<task>/<metric>``), the paired comparisons of each mixture with each single-domain
    variant and a sentence computed from their verdicts, then the channel table and its comparisons. Variants
    without a result file yet are left out.

    Args:
        baselines: `domain_baselines`' output, ``{corpus: its baselines.json}`` (None: no reference rows).
    """
    from pipelines.paths import resolve

    results_dir = reports()
    columns = [f"{c}/{t}/{m}" for c in data_ablation["corpora"] for t in data_ablation["tasks"] for m in headlines(t)]
    rows, found = [], {}
    for name, weights in data_ablation["variants"].items():
        r = read_json_file(results_dir / "data_ablations" / f"{name}.json")
        if r is not None:
            found[name] = r
            mix = ", ".join(f"{k} {v:g}" for k, v in weights.items())
            rows.append({"pretraining data": run_link(name, r), **{c: r.get(c, "") for c in columns}, "weights": mix})
    absent = [n for n in data_ablation["variants"] if n not in found]
    split = next((r["split"] for r in found.values() if "split" in r), "val")   # files from before: val
    numbers = {c: read_json_file(resolve(path)) or {} for c, path in (baselines or {}).items()}
    for ref in ("chance", "text-only"):
        if any(ref in n for n in numbers.values()):
            cells = {col: numbers.get(col.split("/")[0], {}).get(ref, {}).get(f"{col.split('/', 1)[1].split('/')[0]}/"
                                                                               f"{split}/{col.rsplit('/', 1)[1]}", "")
                     for col in columns}
            rows.append({"pretraining data": ref, **cells, "weights": "reference baseline, no training"})
    ch_columns = [f"{t}/{m}" for t in channel_ablation["tasks"] for m in headlines(t)]
    ch_rows, ch_split, ch_absent = [], "val", []
    for name in channel_ablation["variants"]:
        r = read_json_file(results_dir / "channel_ablations" / f"{name}.json")
        if r is None:
            ch_absent.append(name)
        else:
            ch_split = r.get("split", ch_split)   # rows from before the split was recorded: val
            ch_rows.append({"channels": run_link(name, r), **{c: r.get(c, "") for c in ch_columns}})
    # the main corpus's reference baselines on the same split (when `kedro run --pipelines=baselines` has run)
    ch_rows += [{"channels": b["variant"], **{c: b[c] for c in ch_columns}} for b in ablation_rows(ch_columns, ch_split)]
    mixes = [n for n in found if sum(1 for w in data_ablation["variants"][n].values() if w > 0) > 1]
    singles = [n for n in found if n not in mixes]
    domain_pairs = [(m, s) for m in mixes for s in singles]
    summaries, missing = paired_summaries("data_ablation", domain_pairs, split)
    verdict = mixing_verdict(data_ablation, domain_pairs, summaries)
    channel_pairs = [(a, b) for a, b in (("both", "subtitles"), ("both", "video"))
                     if {a, b} <= set(channel_ablation["variants"])]
    ch_summaries, ch_missing = paired_summaries("channel_ablation", channel_pairs, ch_split)
    return ("# Data ablations\n\n" + split.capitalize() + " split of each domain, one finetuning seed, the budget of "
            "params:pretrain and params:finetune (conf/base: the demo budget). Regenerated by `dvc repro "
            "data_ablation_table`; the links open each variant's run in `mlflow ui` (default address). Differences "
            "are paired over the same examples, with 95% intervals (bootstrap over the examples: one seed says nothing "
            "of seed-to-seed spread) and a verdict: \"gain\" / \"loss\" only when the interval excludes 0 "
            "(docs/results.md, \"Intervals\").\n\n"
            "## Pretraining data\n\nEach row pretrains on the corpora with the weights shown (0: not read), then "
            "finetunes and evaluates every task on each domain's own annotations (columns: domain/task/metric); the "
            "last rows are each domain's reference baselines (`chance`, `text-only`: no training; docs/results.md, "
            "\"Reference baselines\").\n\n"
            + results_table(rows, ["pretraining data", *columns, "weights"]) + "\n"
            + not_run_line(absent, "kedro run --pipelines=data_ablation --params=data_ablation_variant=<name>") + "\n"
            + comparisons_section(domain_pairs, summaries, missing, "Each mixture against each single-domain "
                                  "pretraining (rows: domain/task)") + (verdict + "\n\n" if verdict else "")
            + "## Input channels\n\nFinetuned from the main pretraining run on the main corpus, trained and evaluated "
            "on the same channels: video only (no subtitles), subtitles only (zeroed frame features), or both; "
            "then the main corpus's reference baselines (`chance`, `text-only`: no training; docs/results.md, "
            "\"Reference baselines\").\n\n"
            + results_table(ch_rows, ["channels", *ch_columns]) + "\n"
            + not_run_line(ch_absent, "kedro run --pipelines=channel_ablation --params=channel_ablation_variant=<name>")
            + "\n" + comparisons_section(channel_pairs, ch_summaries, ch_missing, "What each channel adds"))


def paired_summaries(folder: str, pairs: list[tuple[str, str]], split: str) -> tuple[list, list[str]]:
    """The paired differences of ``pairs`` of variants, per task and headline metric both scored, from their
    per-example values (``data/06_models/<folder>/<variant>/examples.json``), and the variants that have none on
    ``split`` (not run, or run before the values were kept)."""
    from hero.metrics.results import metric_rows
    from hero.metrics.results import summarize as summarize_rows

    have, missing = variant_examples(folder, list(dict.fromkeys(v for pair in pairs for v in pair)), split)
    rows = []
    for prefix in dict.fromkeys(p for tasks in have.values() for p in tasks):
        arms = {v: tasks[prefix] for v, tasks in have.items() if prefix in tasks}
        metrics = [m for m in headlines(prefix.rsplit("/", 1)[-1]) if all(m in s for seeds in arms.values() for s in seeds)]
        if len(arms) > 1 and metrics:
            rows += metric_rows(prefix, arms, metrics)
    pairs = [(a, b) for a, b in pairs if a in have and b in have]
    return (summarize_rows(rows, pairs) if rows and pairs else []), missing


def comparisons_section(pairs: list[tuple[str, str]], summaries: list, missing: list[str], title: str) -> str:
    """``title``, then the table of ``pairs``' differences (`hero.metrics.results.render_comparisons`), or a line
    naming the variants without per-example values."""
    from hero.metrics.results import render_comparisons

    if not pairs:
        return ""
    table = render_comparisons(summaries, [p for p in pairs if not set(p) & set(missing)])
    note = (f"No per-example values for {', '.join(missing)} on this split (not run, or run before they were kept: "
            "rerun the variant).\n\n" if missing else "")
    return f"{title}:\n\n" + (table + "\n" if table else "") + note


def run_link(name: str, row: Mapping[str, Any]) -> str:
    """``name`` linked to its MLflow run in `mlflow ui`, or plain when the row has no run."""
    run, exp = row.get("mlflow_run_id"), row.get("mlflow_experiment_id")
    return f"[{name}]({MLFLOW_UI}/#/experiments/{exp}/runs/{run})" if run and exp else name


def mixing_verdict(data_ablation: dict[str, Any], pairs: list[tuple[str, str]], summaries: list) -> str:
    """One sentence per mixture and eval domain: the verdicts of its paired comparisons with the single-domain
    variants (``pairs``, (mixture, single)) over that domain's headline metrics, and whether it helped: a gain over
    every single-domain variant on most of them. Empty without comparisons."""
    from hero.metrics.results import GAIN, LOSS

    parts = []
    for mix in dict.fromkeys(m for m, _ in pairs):
        singles = [s for m, s in pairs if m == mix]
        for corpus in data_ablation["corpora"]:
            rows = [s for s in summaries if s.task.split("/")[0] == corpus]
            if not rows:
                continue
            won = [f"{r.task.split('/', 1)[1]}/{r.metric}" for r in rows if all(r.verdict(mix, s) == GAIN for s in singles)]
            lost = [f"{r.task.split('/', 1)[1]}/{r.metric}" for r in rows if any(r.verdict(mix, s) == LOSS for s in singles)]
            helped = "helped" if 2 * len(won) > len(rows) else "did not help"
            parts.append(f"on {corpus}, mixing ({mix}) {helped}: a gain over every single-domain pretraining on "
                         f"{len(won)} of {len(rows)} headline metrics" + (f" ({', '.join(won)})" if won else "")
                         + (f", a loss against one on {len(lost)} ({', '.join(lost)})" if lost else ""))
    return ("Computed from the verdicts above: " + "; ".join(parts) + ".") if parts else ""
