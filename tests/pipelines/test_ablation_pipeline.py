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
    assert "dec" not in without["tasks"] and "tvc" in without["extra_tasks"] and with_dec["extra_tasks"] == ["tvc"]
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    assert set(stages["ablation"]["foreach"]) == set(ablation)
    assert {f"reports/ablations/{v}.json" for v in ablation} <= set(stages["ablation_table"]["deps"])


def test_the_region_token_pair_differs_only_in_regions_and_its_table_inputs_are_dvc_deps():
    import yaml

    ROOT = Path(__file__).resolve().parents[2]
    ablation = yaml.safe_load((ROOT / "conf/base/parameters_ablation.yml").read_text())["ablation"]
    without, with_regions = ablation["variants"]["hier_all"], ablation["variants"]["hier_all_regions"]
    assert with_regions["model"] == {"regions": True} and with_regions["features"]["regions"]["top_motion"] > 0
    assert {k: v for k, v in with_regions.items() if k not in ("model", "features", "extra_tasks")} == \
        {k: v for k, v in without.items() if k != "extra_tasks"}
    assert "tvqa" in with_regions["extra_tasks"] and "tvqa" in without["extra_tasks"]   # the three tasks
    assert ["hier_all_regions", "hier_all"] in ablation["pairs"] and "vr_v_r1" in ablation["metrics"]["tvr"]
    deps = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["ablation_table"]["deps"]
    assert {f"data/06_models/ablation/{v}" for pair in ablation["pairs"] for v in pair} <= set(deps)


def _examples(project, variant, split, tasks):
    folder = project / "data/06_models/ablation" / variant
    folder.mkdir(parents=True)
    (folder / "examples.json").write_text(json.dumps({"split": split, "tasks": tasks}))


def test_pairs_are_compared_example_by_example_with_intervals_and_baselines(project):
    from pipelines.ablation.nodes import ablation_table

    n = 40
    hits = {str(i): 100.0 for i in range(n)}
    half = {str(i): 100.0 * (i % 2) for i in range(n)}
    _examples(project, "with", "test", {"retrieval": {"r1": hits}, "tvr": {"vcmr_r1_iou0.7": half,
                                                                         "svmr_r1_iou0.5": half, "vr_v_r1": half}})
    _examples(project, "without", "test", {"retrieval": {"r1": half}, "tvr": {"vcmr_r1_iou0.7": half,
                                                                           "svmr_r1_iou0.5": half, "vr_v_r1": half}})
    _examples(project, "other_split", "val", {"retrieval": {"r1": hits}})
    (project / "data/08_reporting").mkdir(parents=True, exist_ok=True)
    (project / "data/08_reporting/baselines.json").write_text(json.dumps({"chance": {"retrieval/test/r1": 5.0}}))
    ablation = {"tasks": ["retrieval", "tvr"], "metrics": {"tvr": ["vr_v_r1"]},
                "pairs": [["with", "without"], ["other_split", "without"]],
                "variants": {"with": {"model": {"regions": True}}, "without": {}, "other_split": {"encoder": "flat"}}}
    text = ablation_table(ablation, {"split": "test"})
    section = text.split("## Paired comparisons")[1].split("\n## ")[0]   # up to the baselines section
    assert "### with vs without: model {'regions': True}" in section
    rows = {tuple(c.strip() for c in ln.split("|")[1:3]): ln for ln in section.splitlines() if ln.startswith("| ")}
    assert set(rows) >= {("retrieval", "r1"), ("tvr", "vcmr_r1_iou0.7"), ("tvr", "vr_v_r1")}
    assert "+50.00" in rows[("retrieval", "r1")] and "gain" in rows[("retrieval", "r1")]
    assert "5.00" in rows[("retrieval", "r1")]                                  # the chance baseline beside it
    assert "+0.00" in rows[("tvr", "vr_v_r1")] and "gain" not in rows[("tvr", "vr_v_r1")]
    assert "1 × 40" in rows[("retrieval", "r1")]
    assert "Not run on the test split yet: other_split" in section
    # no variant has a result file: the table says so, naming them and the command
    assert ("Not in the table, no result yet: with, without, other_split (`kedro run --pipelines=ablation "
            "--params=ablation_variant=<name>`)") in text


def test_a_pair_naming_an_unknown_variant_is_refused_with_its_index(project):
    from pipelines.ablation.nodes import ablation_table

    ablation = {"tasks": ["retrieval"], "pairs": [["a", "b"], ["a", "nope"]], "variants": {"a": {}, "b": {}}}
    with pytest.raises(ValueError, match=r"ablation.pairs\[1\]: two variants"):
        ablation_table(ablation, {"split": "test"})


@pytest.mark.slow
def test_ablation_variant_runs_its_tasks_side_by_side_as_child_runs(project):
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(project)
    one_seed = {"ablation": {"seeds": 1}}
    with KedroSession.create(project_path=project, env="test",
                             runtime_params={"ablation_variant": "flat_all", **one_seed}) as session:
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
    # in one process the second session continues the first's MLflow run: the same params, or MLflow refuses
    with KedroSession.create(project_path=project, env="test", runtime_params=one_seed) as session:
        session.run(pipeline_names=["ablation_table"])
    assert "flat_all" in (project / "docs/results.md").read_text()


@pytest.mark.slow
def test_a_variant_with_its_own_features_extracts_them_and_trains_on_region_tokens(project):
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    from hero.features.store import FeatureStore

    bootstrap_project(project)
    # nested, as `kedro run --params=ablation.tasks=...` builds them (merged into the configured ablation)
    extra = {"ablation": {"tasks": ["tvr"], "seeds": 2, "variants": {"hier_all_regions": {"extra_tasks": []}}}}
    with KedroSession.create(project_path=project, env="test",
                             runtime_params={"ablation_variant": "hier_all_regions", **extra}) as session:
        session.run(pipeline_names=["ablation"])
    folder = project / "data/06_models/ablation/hier_all_regions"
    info = json.loads((folder / "features_info.json").read_text())
    store = FeatureStore(project / info["path"])
    video = next(iter(store.videos))
    assert store.regions(video)[0].shape[1] == 4                  # top_motion 4: [clips, 4, dim]
    main = FeatureStore(project / json.loads((project / "data/03_primary/features_info.json").read_text())["path"])
    assert not main.has_regions(video) and main.entry(video)["key"] != store.entry(video)["key"]
    row = json.loads((project / "reports/ablations/hier_all_regions.json").read_text())
    assert isinstance(row["tvr/svmr_r1_iou0.5"], float) and "tvr/vr_v_r1" in row
    examples = json.loads((folder / "examples.json").read_text())
    assert examples["split"] == row["split"] and examples["seeds"] == row["seeds"] == 2
    assert len(examples["tasks"]["tvr"]) == 2 and all("vr_r1" in seed for seed in examples["tasks"]["tvr"])
    assert {p.name for p in (folder / "tvr@seed1").iterdir()} and (folder / "tvr").is_dir()
    config = next(folder.glob("pretrain/*/config.yaml")).read_text()
    assert "regions: true" in config


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


def test_a_pair_with_several_finetuning_seeds_resamples_examples_and_seeds(project):
    from pipelines.ablation.nodes import ablation_table

    n = 30
    hits = {str(i): 100.0 for i in range(n)}
    none = {str(i): 0.0 for i in range(n)}
    _examples(project, "a", "test", {"retrieval": [{"r1": hits}, {"r1": none}]})      # two seeds: mean 50
    _examples(project, "b", "test", {"retrieval": [{"r1": none}, {"r1": none}]})
    ablation = {"tasks": ["retrieval"], "seeds": 2, "pairs": [["a", "b"]], "variants": {"a": {}, "b": {"encoder": "flat"}}}
    section = ablation_table(ablation, {"split": "test"}).split("## Paired comparisons")[1].split("\n## ")[0]
    assert "the interval is over examples and the 2 finetuning seeds" in section
    (row,) = [ln for ln in section.splitlines() if ln.startswith("| retrieval")]
    assert "| 50.00 [" in row and "+50.00" in row and "2 × 30" in row
    # the seeds disagree completely: resampling them must widen a's interval to both ends
    assert "[0.00, 100.00]" in row


def test_a_finetuning_seed_names_its_job_and_moves_only_the_training_seed():
    from pipelines.finetune.nodes import with_seed

    config = {"task": "tvr", "train": {"seed": 5, "max_steps": 400}}
    assert with_seed("tvr", config, 0) == ("tvr", config)          # seed 0: the single-seed job, same content key
    name, seeded = with_seed("pretrained", config, 2)
    assert name == "pretrained@seed2" and seeded == {"task": "tvr", "train": {"seed": 7, "max_steps": 400}}
    assert config["train"]["seed"] == 5                               # the shared config is not modified
    assert with_seed("retrieval", {}, 1) == ("retrieval@seed1", {"train": {"seed": 1}})
