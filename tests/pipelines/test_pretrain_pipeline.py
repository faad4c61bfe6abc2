"""The pretrain pipeline in-process on conf/test: corpus -> features -> a real torchrun job -> MLflow."""

import json
import sqlite3
import subprocess
from pathlib import Path

import pytest


def test_pretrain_pipeline_end_to_end_in_process(project):
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    git = ["git", "-c", "user.email=t@t", "-c", "user.name=t"]
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"], [*git, "commit", "-qm", "copy"]):
        subprocess.run(cmd, cwd=project, check=True)
    sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=project, capture_output=True, text=True).stdout.strip()
    bootstrap_project(project)
    with KedroSession.create(project_path=project, env="test") as session:
        session.run(pipeline_names=["pretrain"])
    info = json.loads((project / "data/06_models/pretrain/pretrain_info.json").read_text())
    assert info["run_dir"] == f"data/06_models/pretrain/{info['key']}"  # relative to the project: it moves with it
    run_dir = project / info["run_dir"]
    assert sorted(p.name for p in run_dir.glob("step-*")) == ["step-00000002", "step-00000004"]
    assert (run_dir / "curves.png").stat().st_size > 1000
    assert json.loads((run_dir / "done.json").read_text()) == {"finished": True}
    assert (project / "reports/pretrain_loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    feats = json.loads((project / "data/03_primary/features_info.json").read_text())
    assert feats["dim"] == 2648 and feats["videos"] == 12 and feats["path"] == "data/03_primary/features"
    manifest_info = json.loads((project / "data/02_intermediate/manifest_info.json").read_text())
    assert not Path(manifest_info["path"]).is_absolute() and not Path(manifest_info["root"]).is_absolute()
    # no record, manifest or job config holds the folder's absolute path
    for path in [*project.glob("data/0[1-3]*/*.json"), *run_dir.glob("*.json"), run_dir / "config.yaml"]:
        assert str(project) not in path.read_text(), path

    # the pipeline's run and one child run for the job, named for it, holding the job's config and its step metrics
    db = sqlite3.connect(project / "mlruns/mlflow.db")
    runs = dict(db.execute("select run_uuid, name from runs").fetchall())
    parent_of = dict(db.execute("select run_uuid, value from tags where key='mlflow.parentRunId'").fetchall())
    (parent,) = [r for r in runs if r not in parent_of]
    (child,) = [r for r in runs if parent_of.get(r) == parent]
    assert runs[parent] == "pretrain · hero-mini · pretrain 4 steps · env test"
    assert runs[child] == "pretrain hero-mini 4 steps"
    steps = {s for (s,) in db.execute("select step from metrics where key='train/loss' and run_uuid=?", (child,))}
    assert steps == {1, 2, 3, 4}
    assert not db.execute("select count(*) from metrics where run_uuid=?", (parent,)).fetchone()[0]
    params = dict(db.execute("select key, value from params where run_uuid=?", (child,)).fetchall())
    assert params["train.max_steps"] == "4" and params["data.path"] == manifest_info["path"]
    assert "pretrain.run.train.max_steps" in {k for (k,) in db.execute("select key from params where run_uuid=?", (parent,))}
    for run in (parent, child):
        tags = dict(db.execute("select key, value from tags where run_uuid=?", (run,)).fetchall())
        assert tags["mlflow.source.git.commit"] == sha
    # the corpus manifest and the feature store as MLflow dataset inputs, by their content keys
    inputs = {(name, digest) for name, digest, run in db.execute(
        "select d.name, d.digest, i.destination_id from datasets d join inputs i on i.source_id = d.dataset_uuid")
        if run == child}
    assert inputs == {("corpus manifest", manifest_info["key"]), ("feature store", feats["key"])}

    # a second run finds the job done: no training, and its own child run shows the recorded curves again
    import mlflow

    while mlflow.active_run():  # the first session's run, as a `kedro run` process would have ended it
        mlflow.end_run()
    launches = (run_dir / "launch.log").read_text()
    with KedroSession.create(project_path=project, env="test") as session:
        session.run(pipeline_names=["pretrain"], tags=["pretrain"])
    runs = dict(db.execute("select run_uuid, name from runs").fetchall())
    assert len(runs) == 4
    cached = [r for r in runs if r not in (parent, child) and runs[r] == "pretrain hero-mini 4 steps"]
    assert len(cached) == 1
    assert {s for (s,) in db.execute("select step from metrics where key='train/loss' and run_uuid=?", cached)} == steps
    tags = dict(db.execute("select key, value from tags where run_uuid=?", cached).fetchall())
    assert tags["cached"] == "true"
    # what the machine decided, from the job's runtime.json (train.precision: auto resolves per CPU)
    runtime = json.loads((run_dir / "runtime.json").read_text())
    assert tags["runtime.precision"] == runtime["precision"] in ("fp32", "bf16")
    assert tags["runtime.cpu_capability"] == runtime["cpu_capability"]
    assert (run_dir / "launch.log").read_text() == launches  # no job was launched


@pytest.mark.slow
def test_failing_job_fails_the_kedro_run_with_its_error(project, kedro_env):
    """A torchrun job that dies makes `kedro run` exit non-zero, and the job's own error is in the output."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "kedro", "run", "--env", "test", "--pipelines", "pretrain",
                          "--params", "pretrain.run.train.device=cuda"],
                         cwd=project, env=kedro_env(), capture_output=True, text=True, timeout=900)
    text = out.stdout + out.stderr
    assert out.returncode != 0
    assert "TorchrunError" in text and "torchrun exited with code 1" in text
    assert "job error:" in text and "cuda" in text.lower()
