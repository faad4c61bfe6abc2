"""The pretrain pipeline in-process on conf/test: corpus -> features -> a real torchrun job -> MLflow."""

import json
import sqlite3

import pytest


def test_pretrain_pipeline_end_to_end_in_process(project):
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(project)
    with KedroSession.create(project_path=project, env="test") as session:
        session.run(pipeline_names=["pretrain"])
    info = json.loads((project / "data/06_models/pretrain/pretrain_info.json").read_text())
    run_dir = project / "data/06_models/pretrain" / info["key"]
    assert info["run_dir"] == str(run_dir)
    assert sorted(p.name for p in run_dir.glob("step-*")) == ["step-00000002", "step-00000004"]
    assert (run_dir / "curves.png").stat().st_size > 1000
    assert (project / "data/08_reporting/pretrain_loss.csv").read_text().startswith("step,loss\n")
    feats = json.loads((project / "data/03_primary/features_info.json").read_text())
    assert feats["dim"] == 2648 and feats["videos"] == 12
    # one MLflow run, holding the flattened params and the job's live step metrics
    db = sqlite3.connect(project / "mlruns/mlflow.db")
    runs = db.execute("select run_uuid from runs").fetchall()
    assert len(runs) == 1
    keys = {k for (k,) in db.execute("select distinct key from metrics")}
    assert "pretrain/train/loss" in keys
    steps = {s for (s,) in db.execute("select step from metrics where key='pretrain/train/loss'")}
    assert steps == {1, 2, 3, 4}
    params = {k for (k,) in db.execute("select key from params")}
    assert "pretrain.run.train.max_steps" in params


@pytest.mark.slow
def test_failing_job_fails_the_kedro_run_with_its_error(project, kedro_env):
    """A torchrun job that dies makes `kedro run` exit non-zero, and the job's own error is in the output."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "kedro", "run", "--env", "test", "--pipeline", "pretrain",
                          "--params", "pretrain.run.train.device=cuda"],
                         cwd=project, env=kedro_env(), capture_output=True, text=True, timeout=900)
    text = out.stdout + out.stderr
    assert out.returncode != 0
    assert "TorchrunError" in text and "torchrun exited with code 1" in text
    assert "job error:" in text and "cuda" in text.lower()
