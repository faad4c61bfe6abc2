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

    # docs/results.md: the ablation table's reference rows and the baselines section
    doc = ablation_table({"tasks": ["tvr", "retrieval"], "variants": {}}, {"split": "val"})
    assert _row(doc, "text-only", "")["retrieval/r1"] == f"{baselines['text-only']['retrieval/val/r1']:.2f}"
    assert "## Reference baselines" in doc and "| tvc | cider |" in doc
