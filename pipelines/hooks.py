"""Project hooks. `SecretGuard` stops a run whose parameters carry credentials before anything logs them;
`MlflowStoreLock` builds the local MLflow store under a file lock before kedro-mlflow opens it."""

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
