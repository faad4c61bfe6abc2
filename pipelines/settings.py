"""Kedro settings. kedro-mlflow registers its hooks through its entry point (conf/base/mlflow.yml); ours: `SecretGuard`,
`MlflowStoreLock`, `RedactSecrets`, `TrackRuns` (the child runs)."""

import warnings

from pipelines.config_loader import (
    CONFIG_LOADER_ARGS,
    PROJECT_ROOT,
    LocalLastConfigLoader,
    project_root,
)
from pipelines.hooks import BadInputExit, MlflowStoreLock, RedactSecrets, SecretGuard, TrackRuns

__all__ = ["CONFIG_LOADER_ARGS", "CONFIG_LOADER_CLASS", "HOOKS", "PROJECT_ROOT", "project_root"]


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

HOOKS = (SecretGuard(), MlflowStoreLock(), RedactSecrets(), TrackRuns(), BadInputExit())

CONFIG_LOADER_CLASS = LocalLastConfigLoader   # conf/local is read last under any --env too (pipelines/config_loader.py)
