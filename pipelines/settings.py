"""Kedro settings. kedro-mlflow registers its hooks through its entry point (conf/base/mlflow.yml); ours: `SecretGuard`,
`MlflowStoreLock`, `RedactSecrets`, `TrackRuns` (the child runs)."""

import os
import warnings
from pathlib import Path

from pipelines.config_loader import LocalLastConfigLoader
from pipelines.hooks import MlflowStoreLock, RedactSecrets, SecretGuard, TrackRuns

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def project_root() -> Path:
    """The project folder: $HERO_PROJECT_ROOT when set (a test running a copy in-process), else this repo."""
    return Path(os.environ.get("HERO_PROJECT_ROOT", PROJECT_ROOT)).resolve()


def _load_kedro_mlflow_quietly() -> None:
    """Import kedro-mlflow's model module with one MLflow warning left out.

    kedro-mlflow's ``KedroPipelineModel`` (a pyfunc model class this project never uses) defines ``predict``
    without type hints, and MLflow warns "Add type hints to the `predict` method" when such a class is defined,
    i.e. whenever Kedro loads the kedro-mlflow plugin. Nothing on our side can add the hints, and MLflow raises it
    under its own ``simplefilter("once")``, which a warnings filter cannot override; so the module is imported here
    first (Kedro reads this file before it loads plugins), that one warning is dropped and any other is shown.
    """
    with warnings.catch_warnings(record=True) as caught:
        import kedro_mlflow.mlflow  # noqa: F401
    for w in caught:
        if not (issubclass(w.category, UserWarning) and "Add type hints to the `predict` method" in str(w.message)):
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)


_load_kedro_mlflow_quietly()

HOOKS = (SecretGuard(), MlflowStoreLock(), RedactSecrets(), TrackRuns())

CONFIG_LOADER_CLASS = LocalLastConfigLoader   # conf/local is read last under any --env too (pipelines/config_loader.py)
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # ${root:} is the absolute project root: MLflow's sqlite URI must be absolute (a relative one breaks
    # under `dvc exp run --temp`, which runs in a copy of the repository).
    "custom_resolvers": {"root": lambda: project_root().as_posix()},
    "config_patterns": {"mlflow": ["mlflow*", "mlflow*/**"]},
    # An environment's parameters merge key by key into conf/base, so an env file holds only its differences
    # (a list replaces the base's list; a key cannot be removed, only set to another value).
    "merge_strategy": {"parameters": "soft"},
}
