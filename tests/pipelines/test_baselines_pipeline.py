"""`kedro run --pipelines=baselines --env test` in a copy of the project: the corpus, then the chance and text-only
baselines of every task, no features and no training; then the results table and docs/results.md list them."""

import json
import sqlite3
import subprocess
import sys

HEADLINES = {"tvr": ("vcmr_r1_iou0.7", "svmr_r1_iou0.5"), "tvqa": ("acc",), "violin": ("acc",), "tvc": ("cider",),
             "retrieval": ("r1",)}


def _row(table: str, task: str, metric: str) -> dict[str, str]:
    lines = [ln.strip("|").split("|") for ln in table.splitlines() if ln.startswith("|")]
    header = [c.strip() for c in lines[0]]
    for cells in lines[2:]:
        row = dict(zip(header, (c.strip() for c in cells)))
        if row.get("task", row.get("variant")) == task and row.get("metric", metric) == metric:
            return row
    raise AssertionError(f"no row {task}/{metric} in\n{table}")


def test_baselines_pipeline_writes_baselines_and_the_tables_show_them(project, kedro_env):
    # captions scored without the Java tools (a JVM start per scoring would be most of the test's time)
    fast = "evaluate.options.tvc.caption_eval.meteor=false,evaluate.options.tvc.caption_eval.tokenizer=python"
    out = subprocess.run([sys.executable, "-m", "kedro", "run", "--pipelines=baselines", "--env", "test",
                          "--params", fast], cwd=project, env=kedro_env(), capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert not (project / "data/03_primary").exists() and not (project / "data/06_models").exists()

    baselines = json.loads((project / "data/08_reporting/baselines.json").read_text())
    for task, metrics in HEADLINES.items():
        for split in ("val", "test"):
            for metric in metrics:
                for name in ("chance", "text-only"):
                    assert f"{task}/{split}/{metric}" in baselines[name], (name, task, split, metric)
        assert (project / f"data/08_reporting/baselines/{task}/text-only").glob("val_predictions.json*")
    assert baselines["uniform"]["tvqa/val/acc"] == 20.0

    db = sqlite3.connect(project / "mlruns/mlflow.db")
    logged = dict(db.execute("select key, value from metrics where key like 'baseline/%'").fetchall())
    assert logged["baseline/text-only/tvr/val/svmr_r1_iou0.5"] == baselines["text-only"]["tvr/val/svmr_r1_iou0.5"]

    # results.md: the evaluate summary puts the baselines beside the models
    from pipelines.ablation.nodes import ablation_table
    from pipelines.evaluate.nodes import summarize

    fake = {f"{t}_metrics": {init: {f"{t}/val/{m}": 1.0 for m in ms} for init in ("pretrained", "scratch")}
            for t, ms in HEADLINES.items()}
    fake.update({f"{t}_examples": {init: {m: {"a": 1.0, "b": 1.0} for m in ms} for init in ("pretrained", "scratch")}
                 for t, ms in HEADLINES.items()})
    table = summarize({"split": "val"}, **fake)["results_table"]
    for task, metrics in HEADLINES.items():
        for metric in metrics:
            row = _row(table, task, metric)
            assert row["pretrained"] == "1.00 [1.00, 1.00]" and row["verdict"] == "no difference"
            for name in ("text-only", "chance"):
                assert row[name] == f"{baselines[name][f'{task}/val/{metric}']:.2f}"

    # each arm against the text-only baseline, example by example, from the baseline's own prediction file
    _compare_with_text_only(project, baselines)

    # docs/results.md: the ablation table's reference rows and the baselines section
    doc = ablation_table({"tasks": ["tvr", "retrieval"], "variants": {}}, {"split": "val"})
    assert _row(doc, "text-only", "")["retrieval/r1"] == f"{baselines['text-only']['retrieval/val/r1']:.2f}"
    assert "## Reference baselines" in doc and "| tvc | cider |" in doc


def _compare_with_text_only(project, baselines):
    """`reference_examples` reads the text-only predictions back example by example (their mean is baselines.json's
    number); the summary compares each arm with them: a model that hits every question the baseline missed is a
    gain, the baseline's own values are no difference; a stale baselines.json leaves the comparison out."""
    from pipelines.datasets import open_manifest
    from pipelines.evaluate.nodes import reference_examples, summarize

    manifest = open_manifest(json.loads((project / "data/02_intermediate/manifest_info.json").read_text()))
    evaluate = {"split": "val"}
    ids = [str(e["id"]) for e in manifest.tasks["tvqa"]["val"]]
    like = {"acc": dict.fromkeys(ids, 0.0)}
    refs = reference_examples("tvqa", manifest, evaluate, like)
    acc = refs["text-only"]["acc"]
    assert set(acc) == set(ids) and set(acc.values()) <= {0.0, 100.0}
    assert abs(sum(acc.values()) / len(acc) - baselines["text-only"]["tvqa/val/acc"]) < 1e-9

    assert sum(acc.values()) >= 200.0           # the tiny corpus's baseline answers most of its 4 questions
    wrong = dict.fromkeys(acc, 0.0)              # a model wrong everywhere: below the baseline beyond the interval
    examples = {"pretrained": {"acc": wrong}, "scratch": {"acc": dict(acc)}, **refs}
    metrics = {job: {"tvqa/val/acc": sum(v["acc"].values()) / len(ids)} for job, v in examples.items()}
    out = summarize(evaluate, tvqa_metrics=metrics, tvqa_examples=examples)
    table = out["results_table"]
    vs = _row(table.split("Each arm against the text-only baseline")[1], "tvqa", "acc")
    assert vs["pretrained − text-only"].startswith("-") and vs["verdict (pretrained vs text-only)"] == "loss"
    assert vs["scratch − text-only"] == "+0.00 [+0.00, +0.00]" and vs["verdict (scratch vs text-only)"] == "no difference"
    assert vs["seeds × examples"] == "1 × 4"
    assert _row(table, "tvqa", "acc")["pretrained"].startswith("0.00")   # the main table: the models only
    assert out["headline"]["tvqa/acc_vs_text_only_high"]["value"] < 0

    numbers = json.loads((project / "data/08_reporting/baselines.json").read_text())
    numbers["text-only"]["tvqa/val/acc"] += 1.0     # as if the file came from another corpus's run
    (project / "data/08_reporting/baselines.json").write_text(json.dumps(numbers))
    assert reference_examples("tvqa", manifest, evaluate, like) == {}
