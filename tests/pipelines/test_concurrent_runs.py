"""Two `kedro run --env test` started at once in one fresh project folder: both succeed, the MLflow store stays
whole, each training run folder is trained once (metrics.jsonl strictly increasing), and both runs read the same
corpus, manifest and features (one generates them, the other waits and finds them)."""

import json
import sqlite3
import subprocess
import sys

import pytest


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_two_runs_started_at_once_share_the_folder_safely(project, kedro_env):
    cmd = [sys.executable, "-m", "kedro", "run", "--env", "test"]
    procs = [subprocess.Popen(cmd, cwd=project, env=kedro_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True) for _ in range(2)]
    outs = [p.communicate(timeout=3000)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], "\n\n".join(o[-3000:] for o in outs)
    assert all("Downstream results" in o for o in outs)

    assert len(list((project / "data/01_raw").glob("synthetic-*"))) == 1
    assert len(list((project / "data/02_intermediate").glob("manifest-*.json"))) == 1
    run_dirs = [p.parent for p in (project / "data/06_models").rglob("metrics.jsonl")]
    assert run_dirs
    for d in run_dirs:
        rows = [json.loads(line) for line in (d / "metrics.jsonl").read_text().splitlines()]
        for kind in ("train/loss", "select/"):  # a step's training row, and its model-selection row when it scored val
            steps = [r["step"] for r in rows if any(k.startswith(kind) for k in r)]
            assert steps == sorted(set(steps)), (d, kind, steps)  # one writer: each step once, in order
        assert any("train/loss" in r for r in rows)
    db = sqlite3.connect(project / "mlruns/mlflow.db")
    assert db.execute("pragma integrity_check").fetchone() == ("ok",)
    parents = db.execute("select count(*) from runs where run_uuid not in "
                         "(select run_uuid from tags where key='mlflow.parentRunId')").fetchone()[0]
    assert parents == 2
    # within each parent run, every child appears once
    children = db.execute("select t.value, r.name, count(*) from runs r join tags t on t.run_uuid = r.run_uuid "
                          "where t.key = 'mlflow.parentRunId' group by t.value, r.name").fetchall()
    assert children and all(n == 1 for _, _, n in children), children
