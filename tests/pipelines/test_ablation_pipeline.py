"""The ablation pipeline: one variant pretrained, finetuned side by side and evaluated; the markdown table."""

import json
import sqlite3

import pytest


def test_ablation_table_lists_each_variant_with_its_metrics_and_run_link(project, monkeypatch):
    from pipelines.ablation.nodes import ablation_table

    reports = project / "reports/ablations"
    reports.mkdir(parents=True)
    (reports / "flat_all.json").write_text(json.dumps({"variant": "flat_all", "tvr/vcmr_r1_iou0.7": 1.5,
                                                       "tvr/svmr_r1_iou0.5": 7.25, "retrieval/r1": 30.0,
                                                       "mlflow_run_id": "abc", "mlflow_experiment_id": "1"}))
    ablation = {"tasks": ["tvr", "retrieval"], "variants": {
        "hier_all": {"encoder": "hierarchical", "tasks": {"mlm": 2, "vsm": 2}},
        "flat_all": {"encoder": "flat", "tasks": {"mlm": 2, "vsm": 2}}}}
    table = ablation_table(ablation)
    lines = [ln for ln in table.splitlines() if ln.startswith("|")]
    assert lines[0].replace(" ", "") == "|variant|tvr/vcmr_r1_iou0.7|tvr/svmr_r1_iou0.5|retrieval/r1|setting|"
    assert len(lines) == 3  # header, rule, the one variant with results (hier_all has none yet)
    assert "[flat_all](http://127.0.0.1:5000/#/experiments/1/runs/abc)" in lines[2]
    assert "7.25" in lines[2] and "30.00" in lines[2] and "flat; mlm 2, vsm 2" in lines[2]


@pytest.mark.slow
def test_ablation_variant_runs_its_tasks_side_by_side_as_child_runs(project):
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(project)
    with KedroSession.create(project_path=project, env="test", runtime_params={"ablation_variant": "flat_all"}) as session:
        session.run(pipeline_names=["ablation"])
    row = json.loads((project / "reports/ablations/flat_all.json").read_text())
    assert set(row) >= {"tvr/vcmr_r1_iou0.7", "tvr/svmr_r1_iou0.5", "retrieval/r1", "mlflow_run_id"}
    assert all(isinstance(row[k], float) for k in ("tvr/svmr_r1_iou0.5", "retrieval/r1"))
    db = sqlite3.connect(project / "mlruns/mlflow.db")
    parent = row["mlflow_run_id"]
    children = {name for (name,) in db.execute(
        "select r.name from runs r join tags t on t.run_uuid = r.run_uuid "
        "where t.key = 'mlflow.parentRunId' and t.value = ?", (parent,))}
    assert children == {"flat_all: pretrain hero-mini 4 steps", "flat_all: tvr", "flat_all: retrieval"}
    with KedroSession.create(project_path=project, env="test") as session:
        session.run(pipeline_names=["ablation_table"])
    assert "flat_all" in (project / "docs/results.md").read_text()
