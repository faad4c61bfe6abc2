"""`dvc repro` in a temporary copy of the repository: runs the stages, leaves `dvc status` clean, records no path of
the folder it ran in, stays clean when the folder is moved, a second run skips every stage, a changed parameter
re-runs exactly the stages that depend on it, the metrics and plots are small files DVC shows offline, and the
moved folder's MLflow store serves the artifacts of runs made before the move."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

DVC = [sys.executable, "-m", "dvc"]
TEXT = {".json", ".jsonl", ".yaml", ".yml", ".csv", ".md", ".txt", ".html", ".log"}
UP_TO_DATE = "Data and pipelines are up to date."


def _run(cmd, cwd, env):
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=1800)
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    return out.stdout + out.stderr


def _files_naming(root: Path, text: str) -> list[str]:
    """The text files under ``root``'s data/ and reports/ that contain ``text``."""
    found = []
    for folder in ("data", "reports"):
        for p in (root / folder).rglob("*"):
            if p.is_file() and p.suffix in TEXT and text in p.read_text(errors="ignore"):
                found.append(str(p.relative_to(root)))
    return found


@pytest.mark.slow
@pytest.mark.timeout(5400)  # three repros, each allowed 1800 s: pytest's default 600 s cut it short on a loaded machine
def test_dvc_repro_is_clean_portable_and_reruns_only_what_changed(project, kedro_env, tmp_path):
    env = kedro_env({"KEDRO_ENV": "test", "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"})
    git = ["git", "-c", "user.email=t@t", "-c", "user.name=t"]
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"], [*git, "commit", "-qm", "copy"]):
        subprocess.run(cmd, cwd=project, check=True, env=env)
    first = _run(DVC + ["repro", "evaluate"], project, env)  # the main DAG (the ablations take longer)
    for stage in ("corpus", "features", "pretrain", "finetune", "evaluate"):
        assert f"Running stage '{stage}'" in first
    assert (project / "dvc.lock").exists()
    assert UP_TO_DATE in _run(DVC + ["status", "--with-deps", "evaluate"], project, env)  # the main DAG (and its upstream)
    assert _files_naming(project, str(project)) == []  # records, manifests, configs: paths relative to the project

    # the metrics file holds the headline metrics only (a dozen columns), the plot is an image: no CDN
    shown = _run(DVC + ["metrics", "show", "reports/metrics.json"], project, env)
    header = shown.splitlines()[0].split()
    assert "tvr.vcmr_r1_iou0.7.pretrained" in header and "tvr.vcmr_r1_iou0.7.scratch" in header
    assert len(header) == 1 + 2 * 6  # Path, then 6 headline metrics (tvr has two) x pretrained / scratch
    _run(DVC + ["plots", "show", "-o", str(tmp_path / "plots")], project, env)
    html = (tmp_path / "plots/index.html").read_text()
    assert "<img" in html and "cdn." not in html and "<script src=" not in html
    subprocess.run(["git", "add", "-A"], cwd=project, check=True, env=env)
    subprocess.run([*git, "commit", "-qm", "results"], cwd=project, check=True, env=env)

    # the folder moves (a colleague's clone, another mount point): still clean, nothing to re-run
    moved = shutil.copytree(project, tmp_path / "moved" / "hero-platform", symlinks=True)
    shutil.rmtree(project)
    assert UP_TO_DATE in _run(DVC + ["status", "--with-deps", "evaluate"], moved, env)
    second = _run(DVC + ["repro", "evaluate"], moved, env)
    assert "Running stage" not in second

    # a parameter only the evaluate stage reads: it alone runs, reading the moved run folders
    p = moved / "conf/base/parameters_evaluate.yml"
    p.write_text(p.read_text().replace("max_decode_len: 20", "max_decode_len: 19"))
    third = _run(DVC + ["repro", "evaluate"], moved, env)
    assert "Running stage 'evaluate'" in third
    for stage in ("corpus", "features", "pretrain", "finetune"):
        assert f"Running stage '{stage}'" not in third
    assert UP_TO_DATE in _run(DVC + ["status", "--with-deps", "evaluate"], moved, env)
    assert _files_naming(moved, str(moved)) == [] and _files_naming(moved, str(project)) == []
    diff = _run(DVC + ["metrics", "diff", "--all"], moved, env)  # against the committed results
    assert "reports/metrics.json" in diff and "tvc.cider.pretrained" in diff

    # the MLflow store moved with the folder: a run made before the move serves its artifacts from the copy (the
    # evaluate stage's Kedro session re-rooted the store's artifact locations; the original folder is gone)
    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{moved / 'mlruns/mlflow.db'}")
    exp = client.get_experiment_by_name("hero-platform")
    assert exp.artifact_location == str(moved / "mlruns/artifacts")
    before = client.search_runs([exp.experiment_id], "attributes.run_name = 'pretrain hero-mini 4 steps'",
                                order_by=["attributes.start_time ASC"])[0]  # trained in the original folder
    assert before.info.artifact_uri.startswith(str(moved / "mlruns/artifacts") + "/")
    got = Path(client.download_artifacts(before.info.run_id, "config/config.yaml", str(tmp_path / "fetched")))
    assert "max_steps" in got.read_text()
    assert not project.exists()
