"""Kedro datasets for the pipeline's artifacts: content addressing, locks, done markers and the records live here,
so a node only says what it wants made (`Ingestion`, `Extraction`, `TrainingJob`) and returns it.

Each dataset is saved a request and loads a record, a small JSON file at the catalog's ``filepath`` that the
next stage (often another process: each DVC stage is its own ``kedro run``) reads:

- `ManifestDataset`: the corpus manifest, ``manifest-<key>.json`` beside the record; the file's key hashes what
  the manifest is made from (the corpus's fingerprint, the reader settings, the corpus location), so an unchanged
  corpus is not ingested again; the record's ``key``, which later keys use, hashes the manifest's content.
- `FeatureStoreDataset`: the content-addressed feature store (hero.features.store: one entry per video, keyed by
  video bytes, extractor and clip length); saving runs extraction for the videos it lacks.
- `RunDirDataset`: a training run directory ``<folder>/<name>/<key>/``; the key hashes the job's config, its
  inputs' keys and the training code, a lock file in the directory lets one job at a time train it, and a done
  marker (``done.json``) says it finished: a job whose directory is done is not launched again.
- `SweepBestDataset`: the sweep's best values (a YAML file under ``data/``) that pretraining merges in.

Every path a record or an artifact stores is relative to the project root (`pipelines.paths.relative`), so the
records mean the same after the folder is moved or cloned; `open_manifest` and `open_store` resolve them.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from kedro.io import AbstractDataset, DatasetError
from kedro.io.core import get_filepath_str
from kedro_datasets.json import JSONDataset
from kedro_datasets.text import TextDataset

from hero.config import merge
from hero.storage.atomic import write_json_atomic, write_text_atomic
from hero.corpus.manifest import Manifest
from hero.features.store import FeatureStore
from hero.storage.lock import hold
from pipelines import tracking
from pipelines.fingerprint import code_fingerprint, params_hash
from pipelines.paths import is_uri, relative, resolve

log = logging.getLogger(__name__)

MANIFEST = "corpus manifest"
FEATURES = "feature store"
DONE = "done.json"
"""A run directory's done marker: written once its job exited 0."""
TRAINING_CODE = ("hero/model", "hero/tasks", "hero/train", "hero/data")
"""The code a training run's key covers: the same folders the training stages of dvc.yaml depend on (a test holds
them together), so DVC and the key agree on when a run is stale."""
MLFLOW_SINK = "pipelines.tracking:MlflowSink"


class _JsonRecord(AbstractDataset):
    """A dataset whose load is the JSON record at ``filepath``."""

    def __init__(self, filepath: str, metadata: dict[str, Any] | None = None) -> None:
        self._filepath = Path(resolve(filepath))
        self.metadata = metadata

    def _load(self) -> Any:
        try:
            return json.loads(self._filepath.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise DatasetError(f"{relative(self._filepath)}: no record yet; run the stage that writes it") from None
        except json.JSONDecodeError as err:
            raise DatasetError(f"{relative(self._filepath)}: not a whole JSON record ({err.msg}); run its stage again") from None

    def _exists(self) -> bool:
        return self._filepath.is_file()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": relative(self._filepath)}

    def _write(self, record: Any) -> None:
        write_json_atomic(self._filepath, record, indent=1)


# --------------------------------------------------------------------------------------------------- manifests
@dataclass(frozen=True)
class Ingestion:
    """What the corpus node asks for: the inputs the manifest's key hashes (``parts``), and how to ingest when no
    manifest with that key exists yet (``ingest``, called at most once per key, under the key's lock)."""

    parts: Mapping[str, Any]
    ingest: Callable[[], Manifest]


def portable(manifest: Manifest) -> Manifest:
    """``manifest`` with every path it records relative to the project when inside it (the corpus root, ``config.path``,
    each video's subtitle file, a features-only source, file names in the skip report): the manifest then hashes,
    and reads, the same in any clone."""
    from pipelines.settings import project_root

    prefix = project_root().as_posix().rstrip("/") + "/"

    def strip(obj: Any) -> Any:
        if isinstance(obj, str):
            return relative(obj) if obj == prefix.rstrip("/") else obj.replace(prefix, "")
        if isinstance(obj, Mapping):
            return {k: strip(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [strip(v) for v in obj]
        return obj

    return Manifest.from_dict(strip(manifest.to_dict()))


def open_manifest(record: Mapping[str, Any]) -> Manifest:
    """The manifest a `ManifestDataset` record names, its paths resolved against the project root (the corpus root is
    opened from any working directory)."""
    m = Manifest.load(resolve(record["path"]))
    features = dict(m.features) if m.features else m.features
    for key in ("source", "video2dur"):
        if features and features.get(key):
            features[key] = resolve(features[key])
    return dataclasses.replace(m, root=resolve(m.root), features=features)


class ManifestDataset(_JsonRecord):
    """The corpus manifest, addressed by what it is made from: save an `Ingestion`, load its record
    ``{"kind", "path", "key", "root", "videos", "examples", "report"}`` (``key``: a hash of the manifest's content)."""

    def _save(self, request: Ingestion) -> None:
        key = params_hash(dict(request.parts))
        path = self._filepath.parent / f"manifest-{key}.json"
        with hold(path.with_name(f".{path.name}.lock"), f"ingesting {path.name}"):  # runs started together ingest once
            if path.exists():
                log.info("manifest %s is up to date", relative(path))
                manifest = Manifest.load(path)
            else:
                manifest = portable(request.ingest())
                manifest.save(path)
        examples = {f"{t}/{s}": len(v) for t, splits in manifest.tasks.items() for s, v in splits.items()}
        # downstream keys use the manifest's content: a corpus ingested again with the same result (a copied folder
        # with new file times) keeps every run that was trained on it
        self._write({"kind": MANIFEST, "path": relative(path), "key": params_hash(manifest.to_dict()),
                     "root": manifest.root,
                     "videos": len(manifest.videos), "examples": examples, "report": manifest.report})


# ------------------------------------------------------------------------------------------------ feature store
@dataclass(frozen=True)
class Extraction:
    """What the features node asks for: features for ``videos``, made by ``run(store_dir)`` (hero's extraction or
    import, which skips the videos the store already holds under their content key) and returning its stats."""

    videos: tuple[str, ...]
    run: Callable[[Path], dict[str, Any]]


def open_store(record: Mapping[str, Any]) -> FeatureStore:
    """The feature store a `FeatureStoreDataset` record names."""
    return FeatureStore(resolve(record["path"]))


class FeatureStoreDataset(_JsonRecord):
    """The feature store at ``folder`` (one writer at a time): save an `Extraction`, load its record
    ``{"kind", "path", "dim", "videos", "key", "stats"}``; ``key`` hashes the videos' content keys in the store."""

    def __init__(self, filepath: str, folder: str, metadata: dict[str, Any] | None = None) -> None:
        super().__init__(filepath, metadata)
        self._folder = Path(resolve(folder))

    def _save(self, request: Extraction) -> None:
        store_dir = self._folder
        with hold(store_dir.with_name(f".{store_dir.name}.lock"), f"writing {relative(store_dir)}"):
            stats = request.run(store_dir)
        store = FeatureStore(store_dir)
        dims = {int(store.entry(v)["dim"]) for v in request.videos if v in store}
        if len(dims) != 1:
            raise ValueError(f"{relative(store_dir)}: expected one feature dimension for the manifest's videos, found "
                             f"{sorted(dims)}")
        keys = sorted(store.entry(v)["key"] for v in request.videos if v in store)
        stats = {"extracted": 0, **{k: v for k, v in stats.items() if k != "per_rank"}}
        log.info("features: %d extracted, %d imported, %d cached, %.1f clips/s", stats["extracted"],
                 stats.get("imported", 0), stats.get("cached", 0), stats.get("clips_per_s", 0.0))
        self._write({"kind": FEATURES, "path": relative(store_dir), "dim": dims.pop(), "videos": len(keys),
                     "key": params_hash(keys), "stats": stats})


# ------------------------------------------------------------------------------------------------ training runs
@dataclass(frozen=True)
class TrainingJob:
    """One training job a node asks for.

    Attributes:
        name: its folder under the run-dir dataset's folder (``""`` for the one pretraining run, ``tvr-pretrained``).
        title: the MLflow run's name, what it is at a glance (``pretrain hero-mini 200 steps``, ``tvr / pretrained``).
        config: the job's hero.train config, every path in it relative to the project (the job runs there).
        inputs: the content keys of what it reads (``{"manifest": …, "features": …, "pretrain": …}``); hashed into
            the run's key with ``config`` and the training code.
        launch: ``params:launch`` for this job.
        params: more MLflow params beside the config (``init``); tags: MLflow tags (``task``, ``init``).
        data: the records of the datasets it reads, logged as MLflow dataset inputs.
    """

    name: str
    title: str
    config: dict[str, Any]
    inputs: Mapping[str, Any]
    launch: Mapping[str, Any] = field(default_factory=dict)
    params: Mapping[str, Any] = field(default_factory=dict)
    tags: Mapping[str, Any] = field(default_factory=dict)
    data: tuple[Mapping[str, Any], ...] = ()

    def __post_init__(self) -> None:
        from hero.presets import preset_tokenizer
        from hero.train.config import RunConfig

        checked = RunConfig.from_dict(self.config)  # a bad config fails here, in the node, naming its dotted key
        if checked.data.source == "corpus" and not checked.data.corpora:  # and a tokenizer that does not fit
            tok = checked.data.tokenizer
            preset_tokenizer(checked.build_preset(), resolve(tok) if tok and tok != "minilm" else tok)

    def key(self) -> str:
        return params_hash({"cfg": self.config, **self.inputs, "code": code_fingerprint(TRAINING_CODE)})


@dataclass(frozen=True)
class JobSet:
    """Jobs saved together into one `RunDirDataset` record (``{name: record}``), at most ``parallel`` at once."""

    jobs: Mapping[str, TrainingJob]
    parallel: int = 1


def read_metrics(run_dir: str | Path) -> list[dict]:
    """A run's metrics.jsonl rows (the later row of a step written twice wins); [] before its first log line."""
    from pipelines.reporting import read_metrics_jsonl

    path = Path(resolve(run_dir)) / "metrics.jsonl"
    return read_metrics_jsonl(path) if path.exists() else []


def run_job(job: TrainingJob, folder: str | Path, *, log_into: tracking.Run | None = None,
            prefix: str = "") -> dict[str, Any]:
    """Make ``job``'s run directory ``<folder>/<job.name>/<key>/`` hold a finished run; returns its record
    ``{"run_dir", "key", "final", "mlflow_run_id"}``.

    A directory with its done marker is not trained again: its recorded curves are logged into the job's MLflow run
    instead (`tracking.Run.replay`). One job at a time holds the directory's lock (``.job.lock``): a second run of the
    same job waits, then finds it done. An interrupted job resumes from its latest checkpoint (hero.train).

    ``log_into``: log into that run with ``prefix`` (a sweep trial's run) instead of opening a child run.
    """
    from pipelines.launch import launch_torchrun
    from pipelines.reporting import plot_curves

    key = job.key()
    run_dir = Path(resolve(folder)) / job.name / key
    rel = relative(run_dir)
    label = relative(Path(resolve(folder)) / job.name).removeprefix("data/06_models/")
    tracker = tracking.current()
    with hold(run_dir / ".job.lock", f"training {rel}"), _run_for(tracker, job, rel, key, log_into) as run:
        done = run_dir / DONE
        cached = done.exists()
        if cached:
            log.info("%s: finished run %s found; not retraining", label, rel)
            run.replay(read_metrics(run_dir), prefix)
        else:
            sinks = list(job.config.get("train", {}).get("sinks", ["hero.train.sinks:JsonlSink"]))
            cfg = merge(job.config, {"train": {"sinks": sinks + [MLFLOW_SINK] * (MLFLOW_SINK not in sinks)}})
            launch_torchrun(cfg, run_dir, dict(job.launch), extra_env=run.env(prefix), label=label)
            write_json_atomic(done, {"finished": True})
        rows = read_metrics(run_dir)
        picture = run_dir / "curves.png"
        if not cached or not picture.exists():
            picture = plot_curves(rows, picture, title=f"{label} ({key})")
        run.log_artifact(picture, "plots")
        run.log_artifact(run_dir / "config.yaml", "config")
        runtime = _runtime_tags(run_dir)
        if log_into is None:
            run.set_tags({"cached": str(cached).lower(), **runtime})
        elif runtime:
            run.set_tags({f"{prefix}{k}": v for k, v in runtime.items()})
    last = rows[-1] if rows else {}
    return {"run_dir": rel, "key": key, "final": {k: v for k, v in last.items() if isinstance(v, (int, float))},
            "mlflow_run_id": run.run_id}


def _runtime_tags(run_dir: Path) -> dict[str, str]:
    """MLflow tags from the job's ``runtime.json`` (hero.train writes it): the precision ``train.precision: auto``
    resolved to on the machine that trained, its CPU kernel family and threads; none when the file is missing."""
    try:
        record = json.loads((run_dir / "runtime.json").read_text())
    except (OSError, ValueError):
        return {}
    return {f"runtime.{k}": str(record[k]) for k in ("precision", "cpu_capability", "threads", "world_size", "torch")
            if k in record}


def _run_for(tracker: tracking.Tracker, job: TrainingJob, rel: str, key: str, log_into: tracking.Run | None):
    if log_into is not None:
        from contextlib import nullcontext

        return nullcontext(log_into)
    return tracker.child(job.title, params={**job.params, **job.config}, inputs=tracking.inputs_of(job.data),
                         tags={**job.tags, "run_dir": rel, "run_key": key})


def side_by_side(jobs: Mapping[str, Callable[[], Any]], parallel: int) -> dict[str, Any]:
    """Run ``jobs`` (name -> thunk), at most ``parallel`` at once; results by name, in the given order.

    Each thunk launches a torchrun subprocess, so threads suffice. A failure is raised once every started job has
    ended (the other jobs' work is kept: it is cached by content address).
    """
    if parallel <= 1:
        return {name: job() for name, job in jobs.items()}
    log.info("%d jobs side by side: %s", min(parallel, len(jobs)), ", ".join(jobs))
    with concurrent.futures.ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="job") as pool:
        futures = {name: pool.submit(job) for name, job in jobs.items()}
        return {name: fut.result() for name, fut in futures.items()}


class RunDirDataset(_JsonRecord):
    """Training run directories under ``folder`` (default: the record's folder): save a `TrainingJob` (record: its
    `run_job` record) or a `JobSet` (record: ``{name: record}``)."""

    def __init__(self, filepath: str, folder: str | None = None, metadata: dict[str, Any] | None = None) -> None:
        super().__init__(filepath, metadata)
        self._folder = Path(resolve(folder)) if folder else self._filepath.parent

    def _save(self, request: TrainingJob | JobSet) -> None:
        if isinstance(request, TrainingJob):
            self._write(run_job(request, self._folder))
            return
        jobs = {name: (lambda j=job: run_job(j, self._folder)) for name, job in request.jobs.items()}
        self._write(side_by_side(jobs, max(1, min(request.parallel, len(jobs)))))

    def _describe(self) -> dict[str, Any]:
        return {"filepath": relative(self._filepath), "folder": relative(self._folder)}


# ------------------------------------------------------------------------------------------------ sweep results
BEST_KEY = "sweep_best"


class SweepBestDataset(AbstractDataset):
    """The best values of the last sweep: ``sweep_best: {<nested pretrain run config values>}`` in a YAML file under
    ``data/`` (written whole or not at all). Loads ``{}`` while no sweep has completed a trial, or when
    ``filepath`` is ``none`` (tuned values switched off)."""

    def __init__(self, filepath: str, metadata: dict[str, Any] | None = None) -> None:
        self._off = str(filepath).strip().lower() in ("", "none", "null")
        self._filepath = Path(resolve(filepath)) if not self._off else None
        self.metadata = metadata

    def _load(self) -> dict[str, Any]:
        if self._filepath is None or not self._filepath.is_file():
            return {}
        data = yaml.safe_load(self._filepath.read_text(encoding="utf-8")) or {}
        best = data.get(BEST_KEY) if isinstance(data, Mapping) else None
        if not isinstance(best, Mapping):
            raise DatasetError(f"{relative(self._filepath)}: expected a mapping under '{BEST_KEY}'")
        return dict(best)

    def _save(self, data: Mapping[str, Any] | None) -> None:
        if not data or self._filepath is None:  # no complete trial: the last best values stay
            return
        note = data.get("note", "")
        header = (f"# The best values of a sweep ({note}), written by `kedro run --pipelines=sweep`.\n"
                  "# The pretrain node merges them into params:pretrain.run (globals.yml: sweep_best_file).\n")
        write_text_atomic(self._filepath, header + yaml.safe_dump({BEST_KEY: dict(data["values"])}, sort_keys=True))

    def _exists(self) -> bool:
        return self._filepath is not None and self._filepath.is_file()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": relative(self._filepath) if self._filepath else None}


class FigureDataset(AbstractDataset):
    """A matplotlib figure saved as a PNG at ``filepath`` (whole or not at all); None saves nothing."""

    def __init__(self, filepath: str, dpi: int = 110, metadata: dict[str, Any] | None = None) -> None:
        self._filepath = Path(resolve(filepath))
        self._dpi = dpi
        self.metadata = metadata

    def _save(self, figure: Any) -> None:
        from pipelines.reporting import save_png

        if figure is not None:
            save_png(figure, self._filepath, dpi=self._dpi)

    def _load(self) -> bytes:
        return self._filepath.read_bytes()

    def _exists(self) -> bool:
        return self._filepath.is_file()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": relative(self._filepath)}


class AtomicJSONDataset(JSONDataset):
    """kedro-datasets' ``json.JSONDataset`` (same arguments), written temp-then-rename on a local filesystem.

    The plain dataset truncates its file and then writes into it, so a run that loads the file meanwhile (a second
    ``kedro run`` in the same folder) reads it empty or cut short; here a reader sees the old file or the new one,
    and a save that fails half-way leaves the old one. Other protocols (s3://, …) save as the plain dataset does.
    """

    def save(self, data: Any) -> None:
        if self._protocol != "file":
            return super().save(data)
        write_text_atomic(get_filepath_str(self._get_save_path(), self._protocol), json.dumps(data, **self._save_args))
        self._invalidate_cache()


class AtomicTextDataset(TextDataset):
    """kedro-datasets' ``text.TextDataset`` (same arguments), written temp-then-rename on a local filesystem (as
    `AtomicJSONDataset`)."""

    def save(self, data: str) -> None:
        if self._protocol != "file":
            return super().save(data)
        write_text_atomic(get_filepath_str(self._get_save_path(), self._protocol), data)
        self._invalidate_cache()


class GeneratedSectionDataset(AbstractDataset):
    """A generated section of a hand-written markdown file: saving replaces the text between
    ``<!-- generated: NAME -->`` and ``<!-- end generated: NAME -->`` (the markers are kept) and leaves the rest of
    the file as its authors wrote it; a file without the markers gets them, with the section first. Written
    temp-then-rename. Loading returns the section."""

    def __init__(self, filepath: str, section: str, metadata: dict[str, Any] | None = None) -> None:
        self._filepath = Path(resolve(filepath))
        self._begin, self._end = f"<!-- generated: {section} -->", f"<!-- end generated: {section} -->"
        self.metadata = metadata

    def _split(self) -> tuple[str, str, str]:
        text = self._filepath.read_text(encoding="utf-8") if self._filepath.is_file() else ""
        i, j = text.find(self._begin), text.find(self._end)
        if i < 0 or j < i:
            return "", "", ("\n" + text if text else "")
        return text[:i], text[i + len(self._begin):j], text[j + len(self._end):]

    def _save(self, section: str) -> None:
        before, _, after = self._split()
        write_text_atomic(self._filepath, f"{before}{self._begin}\n{section.strip()}\n{self._end}{after or chr(10)}")

    def _load(self) -> str:
        return self._split()[1].strip("\n")

    def _exists(self) -> bool:
        return self._filepath.is_file()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": relative(self._filepath), "section": self._begin}


__all__ = [
    "AtomicJSONDataset",
    "AtomicTextDataset",
    "DONE",
    "TRAINING_CODE",
    "Extraction",
    "FeatureStoreDataset",
    "FigureDataset",
    "GeneratedSectionDataset",
    "Ingestion",
    "JobSet",
    "ManifestDataset",
    "RunDirDataset",
    "SweepBestDataset",
    "TrainingJob",
    "is_uri",
    "open_manifest",
    "open_store",
    "portable",
    "read_metrics",
    "run_job",
    "side_by_side",
]
