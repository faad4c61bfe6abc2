"""MLflow glue: the only module of the repository that imports mlflow.

kedro-mlflow opens one run per `kedro run` (the parent: the node parameters, and what catalog datasets such as
the headline metrics log). Everything below it belongs to one `Tracker`, which the `pipelines.hooks.TrackRuns`
hook installs for the length of the pipeline run: it opens a child run per training job (`Tracker.child`), named
for what it is, with the job's resolved config as params, the git commit and the data it read as dataset inputs,
and hands its id to the job (`Run.env`), so that rank 0 logs live step metrics into it (`MlflowSink`). Nodes and
datasets never open runs: they ask `current()` for the tracker, which is a no-op when no pipeline run is tracked
(a node called from a test, kedro-mlflow disabled).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
from mlflow.entities import DatasetInput, InputTag, Metric, Param, RunTag
from mlflow.tracking import MlflowClient

log = logging.getLogger(__name__)

GIT_COMMIT_TAG = "mlflow.source.git.commit"
"""MLflow's own tag for the commit a run ran (the UI shows it on the run page)."""
PARENT_TAG = "mlflow.parentRunId"
MAX_PARAM_CHARS = 500
_INPUTS_LOCK = threading.Lock()
"""One dataset-input record at a time in this process (see `Run.log_inputs`)."""


@dataclass(frozen=True)
class DataInput:
    """A dataset a run read, as MLflow records it (``mlflow.log_input``): what it is, its content fingerprint and
    where it lives (relative to the project)."""

    name: str
    digest: str
    source: str
    context: str = "training"


def inputs_of(records: Iterable[Any]) -> list[DataInput]:
    """The MLflow dataset inputs among pipeline records: a corpus manifest's and a feature store's (their ``kind``,
    ``key`` and ``path``, `pipelines.datasets`); anything else is skipped."""
    out = []
    for r in records:
        if isinstance(r, Mapping) and r.get("kind") in ("corpus manifest", "feature store") and r.get("key"):
            out.append(DataInput(str(r["kind"]), str(r["key"]), str(r.get("path", ""))))
    return out


def flat_params(params: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """``params`` flattened to dotted keys with string values as MLflow stores them (long values truncated),
    every secret replaced by ``***`` (`pipelines.hooks.redact`)."""
    from pipelines.hooks import redact

    flat: dict[str, str] = {}

    def walk(obj: Any, key: str) -> None:
        if isinstance(obj, Mapping) and obj:
            for k, v in obj.items():
                walk(v, f"{key}.{k}" if key else str(k))
        else:
            flat[key] = str(obj)[:MAX_PARAM_CHARS]

    walk(redact(params, prefix), prefix)
    return flat


def metric_name(key: str) -> str:
    return key.replace("@", "_at_")


class Run:
    """One MLflow run of the tracker (a child run, or a finished one that evaluation adds to), written through
    the client: MLflow's "active run" is per thread, and jobs run side by side in threads."""

    def __init__(self, client: MlflowClient | None, run_id: str | None) -> None:
        self.client, self.run_id = client, run_id

    def env(self, prefix: str = "") -> dict[str, str]:
        """Environment that points a training job at this run (`MlflowSink`); empty for no run."""
        if self.run_id is None:
            return {}
        return {"MLFLOW_RUN_ID": self.run_id, "MLFLOW_TRACKING_URI": mlflow.get_tracking_uri(),
                "HERO_MLFLOW_PREFIX": prefix}

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        if self.run_id is None or not metrics:
            return
        now = int(time.time() * 1000)
        self._batch([Metric(metric_name(k), float(v), now, step or 0) for k, v in metrics.items()])

    def replay(self, rows: Iterable[Mapping[str, Any]], prefix: str = "") -> int:
        """A finished job's recorded step metrics (its metrics.jsonl rows) logged again at their steps, so a run
        whose job was found done shows the same curves as the run that trained it; returns the points logged."""
        if self.run_id is None:
            return 0
        now = int(time.time() * 1000)
        batch = [Metric(metric_name(prefix + k), float(v), now, int(r["step"])) for r in rows for k, v in r.items()
                 if k != "step" and isinstance(v, (int, float)) and not isinstance(v, bool)]
        self._batch(batch)
        return len(batch)

    def _batch(self, metrics: list[Metric]) -> None:
        for i in range(0, len(metrics), 500):
            self.client.log_batch(self.run_id, metrics=metrics[i:i + 500])

    def log_params(self, params: Mapping[str, Any]) -> None:
        if self.run_id is None or not params:
            return
        items = [Param(k, v) for k, v in flat_params(params).items()]
        for i in range(0, len(items), 100):
            self.client.log_batch(self.run_id, params=items[i:i + 100])

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        if self.run_id is not None and tags:
            self.client.log_batch(self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_inputs(self, inputs: Iterable[DataInput]) -> None:
        if self.run_id is None:
            return
        from mlflow.data.dataset_source_registry import resolve_dataset_source
        from mlflow.data.meta_dataset import MetaDataset
        from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

        found = []
        for i in inputs:
            with warnings.catch_warnings():  # a local path "can be interpreted in multiple ways": all of them local
                warnings.simplefilter("ignore", UserWarning)
                source = resolve_dataset_source(i.source)
            dataset = MetaDataset(source, name=i.name, digest=i.digest)._to_mlflow_entity()
            found.append(DatasetInput(dataset, [InputTag(MLFLOW_DATASET_CONTEXT, i.context)]))
        if not found:
            return
        # MLflow's sqlite store adds a dataset row by look-up-then-insert: two runs logging the same dataset at once
        # (jobs side by side, two `kedro run` in one folder) can both insert, and the second fails on the unique
        # key. The row then exists, so one more try links it; a record that still fails must not fail the run.
        for attempt in range(1, 6):
            try:
                with _INPUTS_LOCK:
                    self.client.log_inputs(self.run_id, datasets=found)
                return
            except mlflow.exceptions.MlflowException as err:
                if "UNIQUE constraint" not in str(err) or attempt == 5:
                    log.warning("MLflow run %s: its dataset inputs were not recorded (%s)", self.run_id,
                                str(err).splitlines()[0])
                    return
                time.sleep(0.2 * attempt)

    def log_artifact(self, path: str | os.PathLike | None, artifact_path: str | None = None) -> None:
        if self.run_id is not None and path is not None and Path(path).exists():
            self.client.log_artifact(self.run_id, str(path), artifact_path)


class Tracker:
    """The MLflow runs of one pipeline run: the parent (kedro-mlflow's) and the child runs it opens for jobs."""

    def __init__(self, parent_run_id: str | None, commit: str = "unknown") -> None:
        self.client = MlflowClient() if parent_run_id else None
        self.parent = Run(self.client, parent_run_id)
        self.experiment_id = self.client.get_run(parent_run_id).info.experiment_id if self.client else None
        self.commit = commit
        self._inputs: dict[tuple[str, str], DataInput] = {}
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.client is not None

    def commit_tags(self) -> dict[str, str]:
        """`GIT_COMMIT_TAG` (the bare sha) and ``git.dirty`` (uncommitted changes to tracked files); none outside git."""
        sha, _, dirty = self.commit.partition("+")
        if sha == "unknown":  # not a git work tree (an exported copy): no commit to name
            return {}
        return {GIT_COMMIT_TAG: sha, "git.dirty": "true" if dirty else "false"}

    def note_inputs(self, inputs: Iterable[DataInput]) -> None:
        """Datasets the pipeline read, logged on the parent once each."""
        with self._lock:
            new = [i for i in inputs if (i.name, i.digest) not in self._inputs]
            self._inputs.update({(i.name, i.digest): i for i in new})
        self.parent.log_inputs(new)

    @contextlib.contextmanager
    def child(self, title: str, *, params: Mapping[str, Any] | None = None, tags: Mapping[str, Any] | None = None,
              inputs: Iterable[DataInput] = (), parent: Run | None = None) -> Iterator[Run]:
        """A child run named ``title`` under the pipeline's run (or under ``parent``), with ``params`` (flattened,
        secrets as ``***``), ``tags``, the git commit and ``inputs``; FINISHED when the block ends, FAILED when it
        raises. Without a tracked pipeline run: a `Run` that logs nothing."""
        if self.client is None:
            yield Run(None, None)
            return
        parent = parent or self.parent
        run = self.client.create_run(self.experiment_id, run_name=title,
                                     tags={PARENT_TAG: parent.run_id, **self.commit_tags(),
                                           **{k: str(v) for k, v in (tags or {}).items()}})
        child = Run(self.client, run.info.run_id)
        status = "FAILED"
        try:
            child.log_params(params or {})
            child.log_inputs(inputs)
            yield child
            status = "FINISHED"
        finally:
            self.client.set_terminated(child.run_id, status)

    def run(self, run_id: str | None) -> Run:
        """A run of this store by id (a job's child run that evaluation adds its metrics to), or a no-op one."""
        return Run(self.client or (MlflowClient() if run_id else None), run_id)


_CURRENT: Tracker | None = None
_NO_TRACKING = Tracker(None)


def current() -> Tracker:
    """The tracker of the pipeline run in progress (`TrackRuns` installs it), or one that logs nothing."""
    return _CURRENT or _NO_TRACKING


def install(tracker: Tracker | None) -> None:
    """Make ``tracker`` the current one (None: no tracking); the hook calls it at the start and end of a run."""
    global _CURRENT
    _CURRENT = tracker


class MlflowSink:
    """A `hero.train` metric sink (``pipelines.tracking:MlflowSink``) for rank 0 of a launched job.

    Logs into the run named by ``MLFLOW_RUN_ID`` (the job's child run: `Run.env`, passed on by the launcher); never
    creates a run of its own, so there is exactly one run per job and none per rank.
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


def prepare_store(tracking_uri: str, experiment: str, artifact_location: str | None = None) -> bool:
    """Create and migrate a local sqlite MLflow store and its experiment, holding an exclusive file lock beside the
    database (``<db>.lock``), so that runs starting at once in one folder never build the tables together; then
    point the store's artifact locations at its present folder (`rebase_artifacts`).

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
            moved = rebase_artifacts(db)
            if store.get_experiment_by_name(experiment) is None:
                store.create_experiment(experiment, artifact_location=artifact_location)
        finally:
            store.engine.dispose()
    if moved:
        log.info("MLflow store %s: artifact locations of %d experiment(s) now point into this folder (it moved)",
                 db, moved)
    return True


ARTIFACT_COLUMNS = (("experiments", "artifact_location"), ("runs", "artifact_uri"),
                    ("logged_models", "artifact_location"))
"""Where MLflow's sqlite store writes an absolute artifact location: an experiment's, and each run's and logged
model's (copied from the experiment's when it was created)."""


def rebase_artifacts(db: Path) -> int:
    """Point the artifact locations that lie in this store's folder at the folder where it is now; returns the number
    of experiments whose locations moved.

    MLflow records absolute artifact locations (an experiment's when it is created, a run's from it) and has no
    relative form, so a project folder moved or cloned with its ``mlruns/`` would read and write artifacts in the
    old folder. A location is the store's own when it lies in a folder named like the store's (``mlruns``); the
    nearest such folder above it is where the store was, and that prefix becomes the store's present folder. A
    location elsewhere (``s3://``, a shared disk) is left as it is.
    """
    import sqlite3

    here = db.resolve().parent
    con = sqlite3.connect(db, timeout=60)
    try:
        with con:
            tables = {t for (t,) in con.execute("select name from sqlite_master where type='table'")}
            moved = 0
            for exp_id, location in con.execute("select experiment_id, artifact_location from experiments").fetchall():
                old = _store_folder(location, here.name)
                if old is None:
                    continue
                new = ("file://" if old.startswith("file://") else "") + here.as_posix()
                if old == new:
                    continue
                for table, column in ARTIFACT_COLUMNS:
                    if table in tables:
                        con.execute(f"update {table} set {column} = ? || substr({column}, ?) "  # noqa: S608
                                    f"where experiment_id = ? and ({column} = ? or substr({column}, 1, ?) = ?)",
                                    (new, len(old) + 1, exp_id, old, len(old) + 1, old + "/"))
                moved += 1
            return moved
    finally:
        con.close()


def _store_folder(location: str | None, name: str) -> str | None:
    """The nearest folder called ``name`` that holds the local path ``location`` (a plain absolute path or a
    ``file:///`` URI), written as ``location`` writes it; None for a location that is not local or lies in no
    such folder."""
    if not location:
        return None
    scheme = "file://" if location.startswith("file:///") else ""
    path = location.removeprefix(scheme)
    if not path.startswith("/"):  # s3://…, a relative path
        return None
    p = Path(path)
    for folder in (p, *p.parents):
        if folder.name == name:
            return scheme + folder.as_posix()
    return None
