"""Project hooks. `SecretGuard` stops a run whose parameters carry credentials before anything logs them;
`MlflowStoreLock` builds the local MLflow store under a file lock before kedro-mlflow opens it; `RedactSecrets`
shows kedro-mlflow ``***`` for every secret-looking parameter while the node itself gets the real value."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from kedro.framework.hooks import hook_impl

_USERINFO = re.compile(r"^[a-z][a-z0-9+.-]*://[^/@\s]*:[^/@\s]*@", re.IGNORECASE)
"""``scheme://user:password@…``: a URI with credentials in it (``s3://KEY:SECRET@bucket/…``, ``postgresql://u:p@h``)."""


def _strings(obj: Any, key: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(obj, Mapping):
        for k, v in obj.items():
            yield from _strings(v, f"{key}.{k}" if key else str(k))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from _strings(v, f"{key}[{i}]")
    elif isinstance(obj, str):
        yield key, obj


SECRET_WORDS = frozenset({"secret", "secrets", "token", "password", "passwd", "pwd", "passphrase",
                          "credential", "credentials", "auth", "apikey"})
SECRET_PAIRS = frozenset({("api", "key"), ("access", "key"), ("private", "key"), ("session", "key"), ("secret", "key"),
                          ("account", "key")})


def secret_name(name: str) -> bool:
    """Whether a parameter name says it holds a secret, word by word (``AWS_SECRET_ACCESS_KEY``, ``hfToken``,
    ``api-key``: yes; ``tokenizer``, ``max_tokens``, ``sort_key``: no)."""
    words = [w.lower() for w in re.findall(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])", name)]
    return any(w in SECRET_WORDS for w in words) or any(p in SECRET_PAIRS for p in zip(words, words[1:]))


SECRET_VALUE = re.compile(r"^(?:AKIA|ASIA)[0-9A-Z]{16}$|^gh[pousr]_[A-Za-z0-9]{30,}$|^xox[abprs]-[A-Za-z0-9-]{10,}$"
                          r"|-----BEGIN [A-Z ]*PRIVATE KEY-----")
"""Values that are credentials whatever their key: AWS key ids, GitHub and Slack tokens, PEM private keys."""
REDACTED = "***"
HIDDEN_SUBTREES = ("launch.env",)
"""Parameters whose every value stays with the process that uses them (a job's environment may hold anything)."""


def redact(obj: Any, key: str = "") -> Any:
    """``obj`` with every secret replaced by ``***``: values under a secret-looking key or a `HIDDEN_SUBTREES`
    path, values shaped like credentials, and URIs with a password in them. Returns ``obj`` itself when nothing
    changes, otherwise a copy (the original is never modified)."""
    hidden = bool(key) and (any(key == t or key.startswith(t + ".") for t in HIDDEN_SUBTREES)
                            or secret_name(key.rsplit(".", 1)[-1]))
    if isinstance(obj, Mapping):
        out = {k: redact(v, f"{key}.{k}" if key else str(k)) for k, v in obj.items()}
        return obj if all(out[k] is obj[k] for k in obj) else out
    if isinstance(obj, (list, tuple)):
        out = [redact(v, key) for v in obj]
        return obj if all(a is b for a, b in zip(out, obj)) else type(obj)(out)
    if obj is None or isinstance(obj, bool):
        return obj
    if hidden:
        return REDACTED
    if isinstance(obj, str) and (SECRET_VALUE.search(obj.strip()) or _USERINFO.match(obj.strip())):
        return REDACTED
    return obj


def credential_params(parameters: Mapping[str, Any]) -> list[str]:
    """Dotted keys of the parameters whose value is a URI with a password in it."""
    return [key for key, value in _strings(parameters) if _USERINFO.match(value.strip())]


class SecretGuard:
    """Refuses parameters that hold a URI with credentials (e.g. ``corpus.path=s3://KEY:SECRET@bucket/x``).

    kedro-mlflow logs every parameter of a run as an MLflow param, and the catalog records the corpus path in
    its JSON files; a password there would be stored in clear. The catalog is created before any pipeline
    hook or node runs, so the run stops here, naming the key and never the value. Credentials belong in the
    environment: the AWS chain for S3 (docs/s3.md), ``env:VAR`` for an Optuna database URL (docs/sweep.md).
    """

    @hook_impl
    def after_catalog_created(self, parameters: dict[str, Any]) -> None:
        # Kedro's feed dict: "parameters" (all of them) plus a "params:<dotted key>" entry per sub-tree
        bad = credential_params((parameters or {}).get("parameters", {}))
        if bad:
            raise ValueError(f"params: {', '.join(bad)}: a URI with credentials in it (user:password@); they would be "
                             "logged to MLflow. Pass them through the environment instead (AWS_* for s3://, docs/s3.md; "
                             "env:VAR for a database URL, docs/sweep.md)")


class MlflowStoreLock:
    """Creates and migrates the sqlite MLflow store (and the run's experiment) under a file lock, before
    kedro-mlflow's own hook opens it (``tryfirst``): two ``kedro run`` started at once in one folder would
    otherwise both build the tables, and one crashes or leaves the store half-migrated (`tracking.prepare_store`).
    """

    @hook_impl(tryfirst=True)
    def after_context_created(self, context) -> None:
        from pipelines.tracking import prepare_store

        try:
            conf = context.config_loader["mlflow"]
        except Exception:  # no mlflow.yml in this env: kedro-mlflow uses its defaults and nothing is ours to lock
            return
        uri = str((conf.get("server") or {}).get("mlflow_tracking_uri") or "")
        experiment = (conf.get("tracking") or {}).get("experiment") or {}
        location = (experiment.get("create_experiment_kwargs") or {}).get("artifact_location")
        prepare_store(uri, str(experiment.get("name") or "Default"), location)


class RedactSecrets:
    """kedro-mlflow logs a node's parameters as MLflow params from the node's inputs, in its ``before_node_run``.
    This wrapper hands every hook a copy with the secrets replaced by ``***`` (`redact`) and puts the real values
    back before the node runs, so a worker's ``launch.env.AWS_SECRET_ACCESS_KEY`` reaches the worker and never
    the MLflow store. Likewise for the run's ``--params`` (``runtime_params``), which kedro-mlflow stores as a tag
    in ``before_pipeline_run``."""

    @hook_impl(hookwrapper=True)
    def before_pipeline_run(self, run_params: dict[str, Any]):
        real = {}
        for name in ("runtime_params", "extra_params"):
            value = run_params.get(name)
            if isinstance(value, Mapping):
                shown = redact(value)
                if shown is not value:
                    real[name], run_params[name] = value, shown
        try:
            yield
        finally:
            run_params.update(real)

    @hook_impl(hookwrapper=True)
    def before_node_run(self, inputs: dict[str, Any]):
        real = {}
        for name, value in list(inputs.items()):
            if name == "parameters" or name.startswith("params:"):
                shown = redact(value, "" if name == "parameters" else name.removeprefix("params:"))
                if shown is not value:
                    real[name] = value
                    inputs[name] = shown
        try:
            yield
        finally:
            inputs.update(real)


class BadInputExit:
    """``kedro run`` with a misspelled parameter key, a wrong value or a malformed input file: one line on stderr,
    ``error: <file, line or key>: <rule>`` (with "did you mean" for a key), and exit status 2, instead of Kedro's
    traceback. Runs after every other ``on_pipeline_error`` hook (``trylast``: kedro-mlflow has closed its run).
    ``HERO_DEBUG=1`` keeps the traceback. Any other error (a bug, a failed job) keeps its traceback as before."""

    @hook_impl(trylast=True)
    def on_pipeline_error(self, error: Exception) -> None:
        import os
        import sys

        bad = bad_input(error)
        if bad is None or os.environ.get("HERO_DEBUG"):
            return
        print(f"error: {bad}", file=sys.stderr, flush=True)
        raise SystemExit(2)


def bad_input(error: BaseException) -> BaseException | None:
    """The bad-input error in ``error``'s chain (itself, or what it was raised from: Kedro wraps a dataset's
    errors), or None: a config error (`hero.config.ConfigError`), a malformed corpus or release file
    (`hero.corpus.errors.CorpusError`, `hero.metrics.formats.files.FormatError`), a checkpoint of another
    architecture (`hero.train.checkpoint.ArchitectureMismatch`)."""
    from hero.config import ConfigError
    from hero.corpus.errors import CorpusError
    from hero.metrics.formats.files import FormatError
    from hero.train.checkpoint import ArchitectureMismatch

    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, (ConfigError, CorpusError, FormatError, ArchitectureMismatch)):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


class TrackRuns:
    """Owns the MLflow runs of a pipeline run below kedro-mlflow's parent run.

    Before the pipeline runs (after kedro-mlflow has opened the parent) it names the parent for what it runs
    (`run_title`), tags the git commit with MLflow's own tag, and installs a `pipelines.tracking.Tracker`, which
    opens a child run per training job. Every corpus manifest and feature store the pipeline reads or writes is
    logged on the parent as an MLflow dataset input. When the pipeline ends, or fails, the tracker is removed.
    """

    @hook_impl(trylast=True)  # after kedro-mlflow's before_pipeline_run: its run is the parent
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline, catalog) -> None:
        import mlflow

        from pipelines import tracking

        active = mlflow.active_run()
        if active is None:
            tracking.install(None)
            return
        tracker = tracking.Tracker(active.info.run_id, tracking.git_commit())
        try:
            params = catalog.load("parameters")
        except Exception:  # noqa: BLE001 - a catalog without parameters: the title names the pipeline only
            params = {}
        tracker.parent.set_tags({"mlflow.runName": run_title(run_params, params, pipeline), **tracker.commit_tags()})
        tracking.install(tracker)

    @hook_impl
    def after_dataset_loaded(self, dataset_name: str, data: Any) -> None:
        self._note(data)

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, data: Any) -> None:
        self._note(data)

    @staticmethod
    def _note(data: Any) -> None:
        from pipelines import tracking

        tracker = tracking.current()
        if tracker.enabled and isinstance(data, Mapping):
            tracker.note_inputs(tracking.inputs_of([data]))

    @hook_impl(tryfirst=True)  # before kedro-mlflow ends the parent run
    def after_pipeline_run(self) -> None:
        from pipelines import tracking

        tracking.install(None)

    @hook_impl(tryfirst=True)
    def on_pipeline_error(self) -> None:
        from pipelines import tracking

        tracking.install(None)


def run_title(run_params: Mapping[str, Any], params: Mapping[str, Any], pipeline=None) -> str:
    """The parent run's name: the pipeline (and ``--tags``) plus the settings that tell two runs apart at a glance,
    e.g. ``default · hero-mini · pretrain 200 steps · finetune 60 steps`` or
    ``ablation [ablation] · hero-mini · ablation_variant=flat_all · env test``: the steps of the pretrain and finetune
    stages the pipeline runs, and the variant parameters (``*_variant``) its nodes read."""
    nodes = list(pipeline.nodes) if pipeline is not None else []
    stages = {t for n in nodes for t in n.tags}
    inputs = {i for n in nodes for i in n.inputs}
    names = run_params.get("pipeline_names") or run_params.get("pipeline_name") or ["__default__"]
    names = [names] if isinstance(names, str) else list(names)
    title = "+".join("default" if n == "__default__" else n for n in names)
    tags = list(run_params.get("tags") or [])
    if tags and tags != names:
        title += f" [{','.join(tags)}]"
    parts = [title]

    def steps(block: str) -> Any:
        return ((params.get(block) or {}).get("run") or {}).get("train", {}).get("max_steps")

    preset = ((params.get("pretrain") or {}).get("run") or {}).get("preset")
    if preset:
        parts.append(str(preset))
    for block in ("pretrain", "finetune"):
        if block in stages and steps(block):
            parts.append(f"{block} {steps(block)} steps")
    parts += [f"{k.removeprefix('params:')}={params.get(k.removeprefix('params:'))}" for k in sorted(inputs)
              if k.startswith("params:") and k.endswith("_variant")]
    if run_params.get("env") not in (None, "", "local", "base"):
        parts.append(f"env {run_params['env']}")
    return " · ".join(parts)
