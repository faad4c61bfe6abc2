"""Pipeline tests run the real Kedro project on a copy of the repository (its tracked files), so that what
they write (data/, mlruns/) stays out of the working tree."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def copy_project(dest: Path) -> Path:
    """The repository's files (tracked and not ignored) copied to ``dest``; returns ``dest``."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, check=True,
                           capture_output=True, text=True).stdout.split()
    for rel in files:
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    return dest


@pytest.fixture
def project(tmp_path, monkeypatch):
    root = copy_project(tmp_path / "project")
    monkeypatch.setenv("KEDRO_DISABLE_TELEMETRY", "true")
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")
    monkeypatch.setenv("HERO_PROJECT_ROOT", str(root))
    yield root
    end_mlflow_runs()


def end_mlflow_runs() -> None:
    """End the MLflow runs an in-process Kedro session left active (kedro-mlflow does not end the session's run;
    a `kedro run` process ends it at exit). Left active, the next test's session would nest its run under it, in
    the previous project's store."""
    import mlflow

    while mlflow.active_run():
        mlflow.end_run()


def kedro_env(extra: dict | None = None) -> dict:
    """The environment of a `kedro` / `dvc` subprocess: no telemetry, and no project-root override (a subprocess
    finds its project from its working directory)."""
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true", "DVC_NO_ANALYTICS": "1", **(extra or {})}
    env.pop("HERO_PROJECT_ROOT", None)
    return env


@pytest.fixture(name="kedro_env")
def kedro_env_fixture():
    """`kedro_env` for tests (a test module cannot import conftest)."""
    return kedro_env


@pytest.fixture
def conf_params(tmp_path):
    """``conf_params(env)``: the parameters the project's config loader gives ``--env env``, read from a copy of
    conf/ whose conf/local is empty (a developer's own conf/local stays out); ``"local"`` is conf/base alone."""
    from pipelines.settings import CONFIG_LOADER_ARGS, CONFIG_LOADER_CLASS

    conf = shutil.copytree(ROOT / "conf", tmp_path / "conf", ignore=shutil.ignore_patterns("local"))
    (conf / "local").mkdir()
    return lambda env: CONFIG_LOADER_CLASS(str(conf), env=env, **CONFIG_LOADER_ARGS)["parameters"]
