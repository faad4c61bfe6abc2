"""The project's Kedro config loader: conf/local is read last, whichever environment runs.

Kedro reads ``conf/base`` and then ONE run environment: ``conf/local`` by default, or the ``--env`` one (e.g.
``conf/hero_tv``), and then ignores ``conf/local``. This project keeps machine specifics in ``conf/local`` (the
cluster's ``launch`` settings, a tracking server, paths), and a named environment describes an experiment, so
`LocalLastConfigLoader` reads ``conf/local`` on top of any other environment too, by the same rule as Kedro's
own layers: parameters merge key by key (the project's ``merge_strategy``, pipelines/settings.py); ``--params``
values are merged into every layer as Kedro merges them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from kedro.config import OmegaConfigLoader

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def project_root() -> Path:
    """The project folder: $HERO_PROJECT_ROOT when set (a test running a copy in-process), else this repo."""
    return Path(os.environ.get("HERO_PROJECT_ROOT", PROJECT_ROOT)).resolve()



class LocalLastConfigLoader(OmegaConfigLoader):
    """`OmegaConfigLoader` that applies the default run environment (``local``) after a named one."""

    def __getitem__(self, key: str) -> dict[str, Any]:
        config = super().__getitem__(key)
        run_env = self.env or self.default_run_env
        if key in self.data or not self.default_run_env or run_env in (self.base_env, self.default_run_env):
            return config
        local_path = self._get_conf_env_path(self.default_run_env)
        if not self._fs.isdir(Path(local_path).as_posix()):
            return config
        files = self._read_dir_configs(local_path, [*self.config_patterns[key]], key, set(), key == "credentials")
        if not files:
            return config
        own_keys = {k for cfg in files.values() for k in cfg}
        local = self._merge_and_resolve(key, files)
        # _merge_and_resolve merges --params into a parameters layer: keep only the keys conf/local itself defines,
        # so a --params value does not make conf/local replace a key it never mentions
        local = {k: v for k, v in local.items() if k in own_keys}
        return self._merge_configs(config, local, key, local_path)


# The loader's arguments (pipelines/settings.py hands them to Kedro). Here, not in settings.py, so that a process
# that only reads the config (the node launcher) imports neither MLflow nor Kedro's framework, whose import
# installs Kedro's logging handlers.
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
