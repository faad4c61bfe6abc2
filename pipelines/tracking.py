"""MLflow glue: the only module of the repository that imports mlflow.

kedro-mlflow owns the run of a `kedro run` (params, returned metrics, artifacts through the catalog). This
module adds what a hook cannot do: hand the active run to a torchrun job (`job_env`), so that its rank 0
logs live step metrics into that run through `MlflowSink`, and open nested child runs (`child_run`) for
per-task finetunes and sweep trials.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import mlflow
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

log = logging.getLogger(__name__)


def job_env(prefix: str = "") -> dict[str, str]:
    """Environment variables that point a training job at the active MLflow run (empty when none is active)."""
    run = mlflow.active_run()
    if run is None:
        return {}
    return {"MLFLOW_RUN_ID": run.info.run_id, "MLFLOW_TRACKING_URI": mlflow.get_tracking_uri(),
            "HERO_MLFLOW_PREFIX": prefix}


@contextlib.contextmanager
def child_run(name: str, tags: Mapping[str, str] | None = None, *, parent_run_id: str | None = None) -> Iterator[str | None]:
    """A nested MLflow run under the active one (a finetuned task, a sweep trial); yields its id.

    ``parent_run_id`` opens it under that run instead: MLflow's active run is per thread, so a worker thread
    (e.g. one of the finetune jobs run side by side) names the pipeline's run explicitly.
    """
    if parent_run_id is not None:
        parent = MlflowClient().get_run(parent_run_id)
        with mlflow.start_run(run_name=name, parent_run_id=parent_run_id, experiment_id=parent.info.experiment_id,
                              tags=dict(tags or {})) as run:
            yield run.info.run_id
        return
    if mlflow.active_run() is None:
        yield None
        return
    with mlflow.start_run(run_name=name, nested=True, tags=dict(tags or {})) as run:
        yield run.info.run_id


def log_params(params: Mapping[str, object], prefix: str = "") -> None:
    """Flattened params into the active run (values longer than MLflow's limit are truncated; secrets are
    stored as ``***``, `pipelines.hooks.redact`)."""
    if mlflow.active_run() is None:
        return
    from pipelines.hooks import redact

    params = redact(params, prefix)
    flat = {}

    def walk(obj, key):
        if isinstance(obj, Mapping):
            for k, v in obj.items():
                walk(v, f"{key}.{k}" if key else str(k))
        else:
            flat[key] = str(obj)[:500]

    walk(params, prefix)
    for i in range(0, len(flat), 100):
        mlflow.log_params(dict(list(flat.items())[i:i + 100]))


def log_metrics(metrics: Mapping[str, float], step: int | None = None) -> None:
    if mlflow.active_run() is not None and metrics:
        mlflow.log_metrics({k.replace("@", "_at_"): float(v) for k, v in metrics.items()}, step=step)


def log_artifact(path: str | Path, artifact_path: str | None = None) -> None:
    if mlflow.active_run() is not None and Path(path).exists():
        mlflow.log_artifact(str(path), artifact_path)


def set_tags(tags: Mapping[str, str]) -> None:
    if mlflow.active_run() is not None:
        mlflow.set_tags(dict(tags))


class MlflowSink:
    """A `hero.train` metric sink (``pipelines.tracking:MlflowSink``) for rank 0 of a launched job.

    Logs into the run named by ``MLFLOW_RUN_ID`` (set by the launcher from `job_env`); never creates a run
    of its own, so there is exactly one run per pipeline run and none per rank.
    """

    def __init__(self, run_dir: str | Path | None = None) -> None:
        self.run_id = os.environ.get("MLFLOW_RUN_ID")
        self.prefix = os.environ.get("HERO_MLFLOW_PREFIX", "")
        self.client = MlflowClient() if self.run_id else None
        if not self.run_id:
            log.warning("MlflowSink: MLFLOW_RUN_ID is not set; step metrics go to metrics.jsonl only")

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        if self.client is None:
            return
        now = int(time.time() * 1000)
        batch = [Metric(self.prefix + k, float(v), now, step) for k, v in metrics.items()]
        for i in range(0, len(batch), 500):
            self.client.log_batch(self.run_id, metrics=batch[i:i + 500])

    def close(self) -> None:
        pass


def log_metrics_to(run_id: str | None, metrics: Mapping[str, float], step: int | None = None) -> None:
    """Final metrics into a given run (a finished child run), e.g. a finetune's evaluation."""
    if not run_id or not metrics:
        return
    now = int(time.time() * 1000)
    batch = [Metric(k.replace("@", "_at_"), float(v), now, step or 0) for k, v in metrics.items()]
    client = MlflowClient()
    for i in range(0, len(batch), 500):
        client.log_batch(run_id, metrics=batch[i:i + 500])


def log_artifact_to(run_id: str | None, path: str | Path, artifact_path: str | None = None) -> None:
    if run_id and Path(path).exists():
        MlflowClient().log_artifact(run_id, str(path), artifact_path)


def active_run_id() -> str | None:
    run = mlflow.active_run()
    return run.info.run_id if run else None


def git_commit() -> str:
    """The project's git commit (with ``+dirty`` when the work tree has changes), or ``unknown``."""
    import subprocess

    from pipelines.settings import project_root

    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=project_root(), capture_output=True, text=True,
                             check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], check=False, cwd=project_root(),
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def active_experiment_id() -> str | None:
    run = mlflow.active_run()
    return run.info.experiment_id if run else None


def prepare_store(tracking_uri: str, experiment: str, artifact_location: str | None = None) -> bool:
    """Create and migrate a local sqlite MLflow store and its experiment, holding an exclusive file lock beside the
    database (``<db>.lock``), so that runs starting at once in one folder never build the tables together.

    Two processes that open a new sqlite store at the same moment both run MLflow's schema creation; one fails
    (``table ... already exists``, ``Online migration expected to match one row``) and can leave a half-migrated
    database that breaks every later run. Behind the lock the first process builds everything and the others
    find a finished store. A tracking server, or another database, migrates itself: returns False and does nothing.
    """
    if not tracking_uri.startswith("sqlite:///"):
        return False
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    from hero.storage.lock import hold

    db = Path(tracking_uri.removeprefix("sqlite:///"))
    artifacts = artifact_location or str(db.parent / "artifacts")
    with hold(db.with_name(db.name + ".lock"), f"setting up the MLflow store {db}"):
        store = SqlAlchemyStore(tracking_uri, artifacts)
        try:
            if store.get_experiment_by_name(experiment) is None:
                store.create_experiment(experiment, artifact_location=artifact_location)
        finally:
            store.engine.dispose()
    return True
