"""The project's Kedro config loader: conf/local is read last, whichever environment runs.

Kedro reads ``conf/base`` and then ONE run environment: ``conf/local`` by default, or the ``--env`` one (e.g.
``conf/hero_tv``), and then ignores ``conf/local``. This project keeps machine specifics in ``conf/local`` (the
cluster's ``launch`` settings, a tracking server, paths), and a named environment describes an experiment, so
`LocalLastConfigLoader` reads ``conf/local`` on top of any other environment too, by the same rule as Kedro's
own layers: parameters merge key by key (the project's ``merge_strategy``, pipelines/settings.py); ``--params``
values are merged into every layer as Kedro merges them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kedro.config import OmegaConfigLoader


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
        own_keys = {k for cfg in files.values() for k in cfg.keys()}
        local = self._merge_and_resolve(key, files)
        # _merge_and_resolve merges --params into a parameters layer: keep only the keys conf/local itself defines,
        # so a --params value does not make conf/local replace a key it never mentions
        local = {k: v for k, v in local.items() if k in own_keys}
        return self._merge_configs(config, local, key, local_path)
