"""The paper's ablations as experiments: one variant per run (encoder kind, pretraining objectives, with or
without pretraining), each pretrained, finetuned and evaluated on a few downstream tasks."""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hero.config import merge
from pipelines import tracking
from pipelines.datasets import TrainingJob, run_job, side_by_side
from hero.tasks import headlines
from pipelines.evaluate.nodes import evaluate_with_examples
from pipelines.finetune.nodes import job_launch, seeded_name, with_seed
from pipelines.paths import layer, reports
from pipelines.pretrain.nodes import corpus_run_config, job_title
from pipelines.reporting import read_json_file, results_table, write_json_atomic

log = logging.getLogger(__name__)

MLFLOW_UI = "http://127.0.0.1:5000"


def run_ablation(variant_name: str, ablation: dict[str, Any], pretrain: dict[str, Any], finetune: dict[str, Any],
                 evaluate: dict[str, Any], launch: dict[str, Any], features: dict[str, Any],
                 manifest_info: dict[str, Any], features_info: dict[str, Any]) -> dict[str, Any]:
    """Run the variant ``variant_name`` (``params:ablation_variant``) of ``ablation.variants``.

    A variant sets ``encoder`` (hierarchical | flat), ``tasks`` (the pretraining mix) or ``pretrain: false``
    (finetune from the text-initialised model only), and may set ``model`` (more hero.model fields, e.g.
    ``{regions: true}``), ``features`` (overrides of ``params:features.extract``: the variant then reads its own
    feature store, extracted into its folder, e.g. ``{regions: {top_motion: 4}}``) and ``extra_tasks``: downstream
    datasets it also finetunes and evaluates (e.g. ``[tvc]`` for the decoder-pretraining pair). The result goes to
    ``reports/ablations/<variant>.json``: the headline metric of each task in ``ablation.tasks`` and its extras,
    and the metrics ``ablation.metrics`` adds; the per-example values of those metrics (the input of the table's
    paired intervals, ``ablation.pairs``) to ``data/06_models/ablation/<variant>/examples.json``.
    """
    name = variant_name
    if name not in ablation["variants"]:
        raise ValueError(f"ablation_variant: {name!r} is not one of {sorted(ablation['variants'])}")
    variant = ablation["variants"][name]
    model = {"encoder": variant.get("encoder", "hierarchical"), **(variant.get("model") or {})}
    tracker = tracking.current()
    tracker.parent.set_tags({"ablation": name})
    models = layer("06_models") / "ablation" / name
    if variant.get("features"):
        features_info = variant_features(name, merge(features, {"extract": variant["features"]}), manifest_info,
                                         models)
    keys = {"manifest": manifest_info["key"], "features": features_info["key"]}
    data = (manifest_info, features_info)
    pre_info = None
    if variant.get("pretrain", True):
        run = merge(pretrain["run"], {"model": model, "train": ablation.get("pretrain_train", {})})
        if "tasks" in variant:  # the variant's mix replaces the default one (a merge would keep its other tasks)
            run = {**run, "pretrain": {**run.get("pretrain", {}), "tasks": dict(variant["tasks"])}}
        cfg = corpus_run_config(run, manifest_info, features_info)
        pre_info = run_job(TrainingJob(name="pretrain", title=f"{name}: {job_title('pretrain', cfg)}", config=cfg,
                                       inputs=keys, launch=launch, tags={"task": "pretrain", "ablation": name},
                                       data=data), models)
    split = evaluate.get("split", "val")
    row: dict[str, Any] = {"variant": name, "split": split, "mlflow_run_id": tracker.parent.run_id,
                           "mlflow_experiment_id": tracker.experiment_id}
    datasets = variant_tasks(ablation, name)
    seeds = int(ablation.get("seeds", 1))
    if seeds < 1:
        raise ValueError(f"ablation.seeds: must be >= 1, got {seeds}")
    jobs = [(dataset, k) for dataset in datasets for k in range(seeds)]
    parallel = max(1, min(int(finetune.get("parallel_jobs", 1)), len(jobs)))
    task_launch = job_launch(launch, parallel)

    def one(dataset: str, k: int) -> dict[str, Any]:
        run = merge(merge(finetune["run"], finetune.get("tasks", {}).get(dataset) or {}), {"model": model})
        # an ablation measures what each variant's pretraining learned: every part comes from its checkpoint (the
        # main recipe's train.init_fresh would discard e.g. the temporal level that FOM trains; a flat encoder has none)
        job_name, run = with_seed(dataset, merge(run, {"train": {"init_fresh": []}}), k)
        cfg = merge(corpus_run_config(run, manifest_info, features_info),
                    {"task": dataset, "train": {"init_from": pre_info["run_dir"] if pre_info else None}})
        job = TrainingJob(name=job_name, title=f"{name}: {job_name}", config=cfg, launch=task_launch, data=data,
                          inputs={**keys, "pretrain": pre_info and pre_info["key"]},
                          tags={"task": dataset, "ablation": name, "seed_index": str(k)})
        info = run_job(job, models)
        out = evaluate_with_examples({job_name: info}, evaluate, manifest_info, features_info, dataset=dataset,
                                     out_root=models / "predictions", keep=extra_metrics(ablation, dataset))
        return {"metrics": out["metrics"][job_name], "examples": out["examples"][job_name]}

    results = side_by_side({seeded_name(dataset, k): functools.partial(one, dataset, k) for dataset, k in jobs},
                           parallel)
    per_seed: dict[str, list[dict[str, Any]]] = {}
    for (dataset, _), result in zip(jobs, results.values()):   # side_by_side keeps the given order
        per_seed.setdefault(dataset, []).append(result)
    for dataset, seeded in per_seed.items():
        for metric in [*headlines(dataset), *extra_metrics(ablation, dataset)]:
            values = [r["metrics"].get(f"{dataset}/{split}/{metric}") for r in seeded]
            row[f"{dataset}/{metric}"] = None if None in values else sum(values) / len(values)   # mean over seeds
    row["seeds"] = seeds
    examples = {"split": split, "seeds": seeds,
                "tasks": {dataset: [r["examples"] for r in seeded] for dataset, seeded in per_seed.items()}}
    write_json_atomic(models / EXAMPLES, examples)
    write_json_atomic(reports("ablations", f"{name}.json"), row)
    return row


EXAMPLES = "examples.json"
"""A variant's per-example values, ``{"split", "seeds", "tasks": {dataset: [one {metric: {example id: value}} per
finetuning seed]}}``, in its folder (the data ablation's too, keyed ``<corpus>/<dataset>`` in the domain ablation)."""


def variant_examples(folder: str, names: Sequence[str], split: str) -> tuple[dict[str, dict[str, list]], list[str]]:
    """Each variant's per-example values on ``split`` (``data/06_models/<folder>/<variant>/examples.json``:
    ``{variant: {dataset: [one {metric: {id: value}} per seed]}}``) and the variants without them there (not run,
    run on another split, or run before the values were kept)."""
    found = {v: read_json_file(layer("06_models") / folder / v / EXAMPLES) for v in names}
    missing = [v for v in names if not found[v] or found[v].get("split") != split]
    return {v: {d: _per_seed(ex) for d, ex in found[v]["tasks"].items()} for v in names if v not in missing}, missing


def variant_features(name: str, features: dict[str, Any], manifest_info: dict[str, Any],
                     models: Path) -> dict[str, Any]:
    """The feature store of a variant with its own ``features`` settings: the manifest's videos extracted into
    ``<models>/features`` (content-addressed: a run that finds them there extracts nothing)."""
    from pipelines.datasets import FeatureStoreDataset
    from pipelines.features.nodes import extract_features

    log.info("ablation %s: its own features (%s) under %s", name, features.get("extract"), models / "features")
    stores = FeatureStoreDataset(filepath=str(models / "features_info.json"), folder=str(models / "features"))
    stores.save(extract_features(manifest_info, features))
    return stores.load()


def extra_metrics(ablation: dict[str, Any], dataset: str) -> list[str]:
    """The metrics ``ablation.metrics`` adds to ``dataset``'s headlines (e.g. ``{tvr: [vr_v_r1]}``), in order."""
    return [m for m in (ablation.get("metrics") or {}).get(dataset) or [] if m not in headlines(dataset)]


def variant_tasks(ablation: dict[str, Any], name: str) -> list[str]:
    """The datasets variant ``name`` finetunes: ``ablation.tasks``, then its own ``extra_tasks`` (once each)."""
    extra = ablation["variants"][name].get("extra_tasks") or []
    return list(dict.fromkeys([*ablation["tasks"], *extra]))


def table_tasks(ablation: dict[str, Any]) -> list[str]:
    """The table's datasets: ``ablation.tasks``, then every variant's extras in variant order (a variant without
    one leaves its cells empty)."""
    extra = [t for variant in ablation["variants"].values() for t in variant.get("extra_tasks") or []]
    return list(dict.fromkeys([*ablation["tasks"], *extra]))


def ablation_table(ablation: dict[str, Any], evaluate: dict[str, Any] | None = None) -> str:
    """The markdown table of every variant's results (rows link to their MLflow runs), then the reference baselines
    (rows ``chance`` and ``text-only`` and their section, when `kedro run --pipelines=baselines` has run), for
    docs/results.md."""
    from pipelines.baselines.nodes import ablation_rows, baselines_markdown

    split = (evaluate or {}).get("split", "val")
    columns = table_columns(ablation)
    rows, absent = [], []
    for name in ablation["variants"]:
        r = read_json_file(reports("ablations", f"{name}.json"))
        if r is None:
            absent.append(name)
            continue
        run, exp = r.get("mlflow_run_id"), r.get("mlflow_experiment_id")
        link = f"[{name}]({MLFLOW_UI}/#/experiments/{exp}/runs/{run})" if run and exp else name
        setting = describe(ablation["variants"][name])
        if r.get("split", split) != split:  # a row scored on another split than the table's (older runs: val)
            setting += f" ({r.get('split')} split)"
        rows.append({"variant": link, **{c: r.get(c, "") for c in columns}, "setting": setting})
    cols = ["variant", *columns, "setting"]
    rows += ablation_rows(columns, split)
    header = (f"Per task and metric ({split} split, synthetic corpus, the demo budget). Regenerated by `dvc repro` "
              "(stage ablation_table); the links open each variant's run in `mlflow ui` (default address).\n\n")
    from hero.metrics.results import intervals_section

    return ("# Ablations\n\n" + header + results_table(rows, cols) + "\n"
            + not_run_line(absent, "kedro run --pipelines=ablation --params=ablation_variant=<name>")
            + pairs_section(ablation, split) + baselines_markdown() + "\n" + intervals_section())


def not_run_line(names: list[str], command: str) -> str:
    """A line naming the variants a table leaves out for want of a result, and the command that runs one ("" when
    none is missing)."""
    if not names:
        return ""
    return f"\nNot in the table, no result yet: {', '.join(names)} (`{command}`).\n\n"


def table_columns(ablation: dict[str, Any]) -> list[str]:
    """``<dataset>/<metric>`` for each table dataset: its headlines, then the metrics ``ablation.metrics`` adds."""
    return [f"{t}/{m}" for t in table_tasks(ablation) for m in [*headlines(t), *extra_metrics(ablation, t)]]


def pairs_section(ablation: dict[str, Any], split: str) -> str:
    """Each pair ``[a, b]`` of ``ablation.pairs``: a − b per dataset and metric both variants scored, paired over
    the same examples, with 95% intervals, a verdict and the reference baselines (`hero.metrics.results`); a pair
    whose variants have not both run on ``split`` is named as such."""
    from hero.metrics.results import metric_rows, results_markdown
    from pipelines.reporting import BASELINE_COLUMNS
    from pipelines.baselines.nodes import baselines_path

    pairs = ablation.get("pairs") or []
    for i, pair in enumerate(pairs):
        if not (isinstance(pair, list | tuple) and len(pair) == 2 and set(pair) <= set(ablation["variants"])):
            raise ValueError(f"ablation.pairs[{i}]: two variants of ablation.variants, got {pair!r}")
    if not pairs:
        return ""
    baselines = read_json_file(baselines_path()) or {}
    seeds = int(ablation.get("seeds", 1))
    over = "examples" if seeds == 1 else f"examples and the {seeds} finetuning seeds"
    out = ["## Paired comparisons\n",
           f"Each pair of variants on the same {split} examples (`ablation.seeds`: {seeds}; the interval is over "
           f"{over}).\n"]
    for pair in pairs:
        a, b = pair
        found, missing = variant_examples("ablation", (a, b), split)
        out.append(f"### {a} vs {b}: {describe_difference(ablation, a, b)}\n")
        if missing:
            out.append(f"Not run on the {split} split yet: {', '.join(missing)}.\n")
            continue
        rows = []
        for dataset in found[a]:
            if dataset not in found[b]:
                continue
            ex_a, ex_b = found[a][dataset], found[b][dataset]
            metrics = [m for m in [*headlines(dataset), *extra_metrics(ablation, dataset)]
                       if all(m in ex for ex in [*ex_a, *ex_b])]
            references = {m: {r: baselines.get(r, {}).get(f"{dataset}/{split}/{m}") for r in BASELINE_COLUMNS}
                          for m in metrics}
            rows += metric_rows(dataset, {a: ex_a, b: ex_b}, metrics, references)
        out.append(results_markdown(rows, [(a, b)]) if rows else "No dataset in common.\n")
    return "\n".join(out) + "\n"


def _per_seed(task_examples: Any) -> list[dict[str, Any]]:
    """One dataset's per-example values as a list per seed (files written before seeds: one mapping)."""
    return task_examples if isinstance(task_examples, list) else [task_examples]


def describe_difference(ablation: dict[str, Any], a: str, b: str) -> str:
    """What variant ``a`` sets differently from ``b`` (its keys whose values differ), for a pair's heading."""
    va, vb = ablation["variants"][a], ablation["variants"][b]
    diff = {k: v for k, v in va.items() if vb.get(k) != v and k != "extra_tasks"}
    return "; ".join(f"{k} {v}" for k, v in diff.items()) or "same settings"


def describe(variant: dict[str, Any]) -> str:
    if not variant.get("pretrain", True):
        return "no video-language pretraining"
    mix = ", ".join(f"{k} {v:g}" for k, v in variant.get("tasks", {}).items()) or "default mix"
    extra = f"; also {', '.join(variant['extra_tasks'])}" if variant.get("extra_tasks") else ""
    more = "".join(f"; {key} {variant[key]}" for key in ("model", "features") if variant.get(key))
    return f"{variant.get('encoder', 'hierarchical')}; {mix}{more}{extra}"
