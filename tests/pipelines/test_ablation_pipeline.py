"""The ablation pipeline: one variant pretrained, finetuned side by side and evaluated; the markdown table."""

import json
import sqlite3
from pathlib import Path

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


def test_extra_tasks_add_their_columns_after_the_shared_ones(project):
    from pipelines.ablation.nodes import ablation_table, variant_tasks

    reports = project / "reports/ablations"
    reports.mkdir(parents=True)
    for name, cider in (("hier_all", 10.5), ("hier_all_dec", 12.25)):
        (reports / f"{name}.json").write_text(json.dumps({"variant": name, "tvr/vcmr_r1_iou0.7": 1.0,
                                                          "tvr/svmr_r1_iou0.5": 2.0, "retrieval/r1": 3.0,
                                                          "tvc/cider": cider}))
    (reports / "flat_all.json").write_text(json.dumps({"variant": "flat_all", "retrieval/r1": 4.0}))
    ablation = {"tasks": ["tvr", "retrieval"], "variants": {
        "hier_all": {"tasks": {"mlm": 2, "vsm": 2}, "extra_tasks": ["tvc"]},
        "hier_all_dec": {"tasks": {"mlm": 2, "vsm": 2, "dec": 1}, "extra_tasks": ["tvc", "retrieval"]},
        "flat_all": {"encoder": "flat", "tasks": {"mlm": 2, "vsm": 2}}}}
    assert variant_tasks(ablation, "hier_all_dec") == ["tvr", "retrieval", "tvc"]   # each dataset once
    assert variant_tasks(ablation, "flat_all") == ["tvr", "retrieval"]
    lines = [ln.replace(" ", "") for ln in ablation_table(ablation).splitlines() if ln.startswith("|")][:5]
    assert lines[0] == "|variant|tvr/vcmr_r1_iou0.7|tvr/svmr_r1_iou0.5|retrieval/r1|tvc/cider|setting|"
    assert lines[2].startswith("|hier_all|") and "|10.50|hierarchical;mlm2,vsm2;alsotvc|" in lines[2]
    assert lines[3].startswith("|hier_all_dec|") and "|12.25|hierarchical;mlm2,vsm2,dec1;alsotvc,retrieval|" in lines[3]
    assert lines[4].startswith("|flat_all|") and lines[4].endswith("|4.00||flat;mlm2,vsm2|")   # no TVC: empty cell


def test_the_decoder_pretraining_pair_is_configured_and_has_its_dvc_stages():
    import yaml

    ROOT = Path(__file__).resolve().parents[2]
    ablation = yaml.safe_load((ROOT / "conf/base/parameters_ablation.yml").read_text())["ablation"]["variants"]
    without, with_dec = ablation["hier_all"], ablation["hier_all_dec"]
    assert with_dec["tasks"] == {**without["tasks"], "dec": with_dec["tasks"]["dec"]} and with_dec["tasks"]["dec"] > 0
    assert "dec" not in without["tasks"] and without["extra_tasks"] == with_dec["extra_tasks"] == ["tvc"]
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    assert set(stages["ablation"]["foreach"]) == set(ablation)
    assert {f"reports/ablations/{v}.json" for v in ablation} <= set(stages["ablation_table"]["deps"])


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


def test_the_table_names_the_split_its_rows_were_scored_on(project):
    from pipelines.ablation.nodes import ablation_table

    reports = project / "reports/ablations"
    reports.mkdir(parents=True)
    for name, split in (("flat_all", "test"), ("hier_all", "val")):
        (reports / f"{name}.json").write_text(json.dumps({"variant": name, "split": split, "retrieval/r1": 30.0}))
    ablation = {"tasks": ["retrieval"], "variants": {"hier_all": {"encoder": "hierarchical"}, "flat_all": {"encoder": "flat"}}}
    table = ablation_table(ablation, {"split": "test"})
    assert "(test split," in table
    rows = {ln.split("|")[1].strip(): ln for ln in table.splitlines() if ln.startswith("| ")}
    assert "(val split)" in rows["hier_all"] and "split)" not in rows["flat_all"]
