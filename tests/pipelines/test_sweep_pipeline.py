"""`kedro run --pipelines=sweep` in-process on conf/test: real torchrun jobs, a real sqlite study, MLflow."""

import json
import os
import sqlite3
import subprocess
import sys

import pytest

from pipelines.pretrain.nodes import tuned_run

STUDY = "test-sweep"


def run_sweep(project):
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(project)
    with KedroSession.create(project_path=project, env="test") as session:
        session.run(pipeline_names=["sweep"])


def child_runs(db, parent: str) -> dict[str, str]:
    """name -> run id of the runs nested under ``parent``."""
    rows = db.execute("select r.name, r.run_uuid from runs r join tags t on t.run_uuid = r.run_uuid "
                      "where t.key = 'mlflow.parentRunId' and t.value = ?", (parent,))
    return dict(rows.fetchall())


@pytest.mark.slow
def test_sweep_runs_trials_as_child_runs_and_feeds_the_next_pretraining(project):
    run_sweep(project)
    summary = json.loads((project / f"data/08_reporting/sweep/{STUDY}/summary.json").read_text())
    assert summary["counts"] == {"COMPLETE": 2} and summary["n_trials"] == 2
    best = summary["best"]
    assert set(best["params"]) == {"pretrain.tasks.mlm", "pretrain.tasks.vsm", "pretrain.mask_prob", "optim.lr"}
    for name in ("optimization_history", "intermediate_values", "parallel_coordinate", "param_importances"):
        assert (project / f"data/08_reporting/sweep/{STUDY}/{name}.png").stat().st_size > 5000, name
    for n in (0, 1):  # each trial's jobs and predictions under its own folder
        trial = project / f"data/06_models/sweep/{STUDY}/trial_{n}"
        assert sorted(p.name for p in (trial / "finetune").glob("*/step-*")) == ["step-00000001", "step-00000002"]
        assert (trial / "predictions/step-1/val_predictions.jsonl").exists()
        assert len(list((trial / "pretrain").glob("*/step-00000002"))) == 1

    db = sqlite3.connect(project / "mlruns/mlflow.db")
    (parent,) = [r for (r,) in db.execute("select run_uuid from runs where name = 'sweep · hero-mini · env test'")]
    trials = child_runs(db, parent)
    assert sorted(trials) == [f"sweep {STUDY} / trial 0", f"sweep {STUDY} / trial 1"]
    for n, run_id in enumerate(trials[f"sweep {STUDY} / trial {i}"] for i in (0, 1)):
        params = dict(db.execute("select key, value from params where run_uuid = ?", (run_id,)).fetchall())
        assert set(params) == set(best["params"])
        curve = db.execute("select step from metrics where run_uuid = ? and key = 'objective' order by step",
                           (run_id,)).fetchall()
        assert [s for (s,) in curve] == [1, 2]  # the val metric at each finetuning rung
        keys = {k for (k,) in db.execute("select distinct key from metrics where run_uuid = ?", (run_id,))}
        assert {"trial_value", "val/r1", "pretrain/train/loss", "finetune/train/loss"} <= keys
    arts = sorted(p.name for p in (project / "mlruns/artifacts").glob(f"{parent}/artifacts/sweep/*"))
    assert arts == ["intermediate_values.png", "optimization_history.png", "parallel_coordinate.png",
                    "param_importances.png", "summary.json"]

    # the best values, a file under data/ (never conf/), are what the next pretraining runs with
    from kedro.framework.session import KedroSession

    assert (project / "data/06_models/sweep/best_params.yml").is_file()
    with KedroSession.create(project_path=project, env="test") as session:
        context = session.load_context()
        params, sweep_best = context.params, context.catalog.load("sweep_best")
    run = tuned_run(params["pretrain"]["run"], sweep_best)
    assert run["optim"]["lr"] == best["params"]["optim.lr"]
    assert run["pretrain"]["tasks"]["mlm"] == best["params"]["pretrain.tasks.mlm"]
    assert run["pretrain"]["tasks"]["fom"] == 1  # not swept: unchanged

    # a resumed sweep with a larger total runs only the missing trial (a second `kedro run`, as a user would)
    env = {k: v for k, v in os.environ.items() if k != "HERO_PROJECT_ROOT"}  # the copy is the cwd
    out = subprocess.run([sys.executable, "-m", "kedro", "run", "--pipelines=sweep", "--env", "test",
                          "--params", "sweep.n_trials=3"], cwd=project, env=env, capture_output=True, text=True,
                         timeout=900, check=False)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    summary = json.loads((project / f"data/08_reporting/sweep/{STUDY}/summary.json").read_text())
    assert summary["counts"] == {"COMPLETE": 3}
    (second,) = [r for (r,) in db.execute("select run_uuid from runs where name like 'sweep ·%' and run_uuid != ?",
                                          (parent,))]
    assert sorted(child_runs(db, second)) == [f"sweep {STUDY} / trial 2"]


def test_sweep_is_registered_with_its_upstream_and_tagged():
    from pipelines.pipeline_registry import register_pipelines

    sweep = register_pipelines()["sweep"]
    assert {n.name for n in sweep.nodes} == {"prepare_corpus", "build_manifest", "extract_features", "sweep"}
    assert [n.name for n in sweep.only_nodes_with_tags("sweep").nodes] == ["sweep"]
    (node,) = sweep.only_nodes_with_tags("sweep").nodes
    assert "params:sweep" in node.inputs and "params:sweep_best" not in node.inputs  # the sweep searches from the base

