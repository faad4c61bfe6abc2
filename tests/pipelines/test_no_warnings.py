"""A clean Kedro command prints no warnings: kedro-mlflow's pyfunc type-hint warning, raised when Kedro loads the
plugin, is left out by `pipelines.settings` (and only that one: any other warning of that import still shows)."""

import subprocess
import sys
import warnings

from pipelines.settings import _load_kedro_mlflow_quietly


def test_kedro_starts_without_a_warning(project, kedro_env):
    out = subprocess.run([sys.executable, "-m", "kedro", "info"], cwd=project, env=kedro_env(), capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "kedro_mlflow" in out.stdout  # the plugin was loaded
    assert "Warning" not in out.stdout + out.stderr, out.stderr[-2000:]


def test_other_warnings_of_the_plugin_import_still_show(monkeypatch):
    import kedro_mlflow.mlflow as module

    def noisy_import(name, *args, **kwargs):
        if name == "kedro_mlflow.mlflow":
            warnings.warn("Add type hints to the `predict` method ...", UserWarning, stacklevel=2)
            warnings.warn("something else", FutureWarning, stacklevel=2)
            return module
        return real_import(name, *args, **kwargs)

    real_import = __builtins__["__import__"] if isinstance(__builtins__, dict) else __builtins__.__import__
    monkeypatch.setattr("builtins.__import__", noisy_import)
    shown = []
    monkeypatch.setattr(warnings, "showwarning", lambda message, category, *a, **k: shown.append((category, str(message))))
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        _load_kedro_mlflow_quietly()
    assert shown == [(FutureWarning, "something else")]
