"""Runs that start at once in one folder share one sqlite MLflow store: it is built under a file lock.

Without the lock, three processes opening a new store at the same moment failed in 8 of 9 tries here (``table
experiments already exists``, ``Online migration expected to match one row``), and a failure can leave the store
half-migrated for every later run."""

import subprocess
import sys
import time

from pipelines.hooks import MlflowStoreLock
from pipelines.tracking import prepare_store

STARTER = """
import sys, time
uri, t0 = sys.argv[1], float(sys.argv[2])
import mlflow
from pipelines.tracking import prepare_store
while time.time() < t0:
    time.sleep(0.001)
prepare_store(uri, "hero-platform")
mlflow.set_tracking_uri(uri)
mlflow.set_experiment("hero-platform")
with mlflow.start_run():
    mlflow.log_param("who", sys.argv[3])
print("ok")
"""


def test_processes_starting_at_once_all_get_a_whole_store(tmp_path):
    import mlflow

    for trial in range(2):
        uri = f"sqlite:///{tmp_path / f'store{trial}' / 'mlflow.db'}"
        t0 = time.time() + 8  # past every process's imports: they open the store together
        procs = [subprocess.Popen([sys.executable, "-c", STARTER, uri, str(t0), str(i)], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for i in range(3)]
        outs = [p.communicate(timeout=120) for p in procs]
        assert [p.returncode for p in procs] == [0, 0, 0], [err[-800:] for _, err in outs]
        client = mlflow.MlflowClient(uri)
        exp = client.get_experiment_by_name("hero-platform")
        runs = client.search_runs([exp.experiment_id])
        assert sorted(r.data.params["who"] for r in runs) == ["0", "1", "2"]
        assert prepare_store(uri, "hero-platform")  # a finished store is left as it is


def test_only_local_sqlite_stores_are_prepared(tmp_path):
    assert not prepare_store("http://127.0.0.1:5000", "x")
    assert not (tmp_path / "mlflow.db").exists()


def test_the_hook_runs_before_kedro_mlflow_opens_the_store():
    impl = MlflowStoreLock.after_context_created
    assert getattr(impl, "kedro_impl")["tryfirst"] is True
