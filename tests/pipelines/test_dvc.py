"""`dvc repro` in a temporary copy of the repository: runs the stages, a second run skips them all, and a
changed parameter re-runs exactly the stages that depend on it."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

DVC = [sys.executable, "-m", "dvc"]


def _run(cmd, cwd, env):
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=1800)
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    return out.stdout + out.stderr


@pytest.mark.slow
def test_dvc_repro_runs_then_skips_then_reruns_what_changed(project, kedro_env):
    env = kedro_env({"KEDRO_ENV": "test", "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"})
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"],
                ["git", "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "copy"]):
        subprocess.run(cmd, cwd=project, check=True, env=env)
    first = _run(DVC + ["repro", "evaluate"], project, env)  # the main DAG (the ablations take longer)
    for stage in ("corpus", "features", "pretrain", "finetune", "evaluate"):
        assert f"Running stage '{stage}'" in first
    assert (project / "dvc.lock").exists()
    shown = _run(DVC + ["metrics", "show"], project, env)
    assert "tvr/val/vcmr_r1_iou0.7" in shown
    second = _run(DVC + ["repro", "evaluate"], project, env)
    assert "Running stage" not in second
    assert "didn't change, skipping" in second or "is cached" in second or "Data and pipelines are up to date" in second
    # a parameter only the evaluate stage reads
    p = project / "conf/base/parameters_evaluate.yml"
    p.write_text(p.read_text().replace("max_decode_len: 20", "max_decode_len: 19"))
    third = _run(DVC + ["repro", "evaluate"], project, env)
    assert "Running stage 'evaluate'" in third
    for stage in ("corpus", "features", "pretrain", "finetune"):
        assert f"Running stage '{stage}'" not in third
