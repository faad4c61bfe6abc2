"""A project folder moved or copied with its MLflow store: the store's artifact locations follow it.

MLflow records absolute artifact locations; `prepare_store` (run by the `MlflowStoreLock` hook at every Kedro
session) points those that lay in the old store folder at the new one. Here a store is built and a run logs an
artifact in one folder, the folder is copied and the original deleted, and the copy's artifact is read back
through the MLflow client."""

import shutil
import sqlite3

import mlflow
import pytest

from pipelines.tracking import _store_folder, prepare_store, rebase_artifacts


def _store(root):
    uri = f"sqlite:///{root / 'mlruns' / 'mlflow.db'}"
    prepare_store(uri, "hero-platform", str(root / "mlruns" / "artifacts"))
    return uri


def _log_run(uri, text):
    client = mlflow.MlflowClient(uri)
    exp = client.get_experiment_by_name("hero-platform")
    run = client.create_run(exp.experiment_id, run_name="job")
    client.log_text(run.info.run_id, text, "notes/config.yaml")
    client.set_terminated(run.info.run_id)
    return run.info.run_id


def test_a_copied_project_reads_its_runs_artifacts_after_the_original_is_deleted(tmp_path):
    original = tmp_path / "alice" / "hero-platform"
    run_id = _log_run(_store(original), "seed: 3\n")

    copy = shutil.copytree(original, tmp_path / "bob" / "work" / "hero-platform")
    shutil.rmtree(original)
    uri = _store(copy)  # what every Kedro session does first (the MlflowStoreLock hook)

    client = mlflow.MlflowClient(uri)
    assert client.get_run(run_id).info.artifact_uri.startswith(str(copy / "mlruns" / "artifacts") + "/")
    got = client.download_artifacts(run_id, "notes/config.yaml", str(tmp_path))
    assert open(got).read() == "seed: 3\n"
    exp = client.get_experiment_by_name("hero-platform")
    assert exp.artifact_location == str(copy / "mlruns" / "artifacts")
    assert client.get_experiment("0").artifact_location.startswith(str(copy / "mlruns") + "/")

    # a new run in the copy writes into the copy, and the original folder is not re-created
    second = _log_run(uri, "seed: 4\n")
    assert (copy / "mlruns" / "artifacts" / second / "artifacts" / "notes" / "config.yaml").exists()
    assert not original.exists()
    assert rebase_artifacts(copy / "mlruns" / "mlflow.db") == 0  # in place: nothing to move


def test_locations_outside_the_store_folder_are_left_alone(tmp_path):
    root = tmp_path / "p"
    uri = _store(root)
    client = mlflow.MlflowClient(uri)
    client.create_experiment("shared", artifact_location="s3://bucket/artifacts")
    client.create_experiment("disk", artifact_location=str(tmp_path / "shared_disk" / "artifacts"))
    moved = shutil.copytree(root, tmp_path / "q")
    assert rebase_artifacts(moved / "mlruns" / "mlflow.db") == 2  # Default and hero-platform
    db = sqlite3.connect(moved / "mlruns" / "mlflow.db")
    where = dict(db.execute("select name, artifact_location from experiments").fetchall())
    assert where["shared"] == "s3://bucket/artifacts"
    assert where["disk"] == str(tmp_path / "shared_disk" / "artifacts")
    assert where["hero-platform"] == str(moved / "mlruns" / "artifacts")


@pytest.mark.parametrize("location, expected", [
    ("/a/mlruns/artifacts", "/a/mlruns"),
    ("/a/mlruns/artifacts/0", "/a/mlruns"),
    ("file:///a/b/mlruns/artifacts", "file:///a/b/mlruns"),
    ("/a/mlruns/x/mlruns/artifacts", "/a/mlruns/x/mlruns"),  # the nearest
    ("s3://bucket/mlruns/artifacts", None),
    ("/shared/artifacts", None),
    ("mlruns/artifacts", None),
    (None, None),
])
def test_the_store_folder_of_a_location(location, expected):
    assert _store_folder(location, "mlruns") == expected
