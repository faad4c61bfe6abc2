import sys

import pytest

from pipelines.launch import LaunchConfig, TorchrunError, launch_torchrun, torchrun_command


def test_single_node_command_is_standalone(tmp_path):
    cmd = torchrun_command(tmp_path / "config.yaml", LaunchConfig(nproc_per_node=2))
    assert cmd[:3] == [sys.executable, "-m", "torch.distributed.run"]
    assert "--nproc_per_node=2" in cmd and "--standalone" in cmd
    assert cmd[-4:] == ["-m", "hero.train", "--config", str(tmp_path / "config.yaml")]


def test_multi_node_command_uses_the_rendezvous(tmp_path):
    cmd = torchrun_command("c.yaml", LaunchConfig(nproc_per_node=8, nnodes=4, rdzv_endpoint="head:29400",
                                                  rdzv_id="exp7", max_restarts=3))
    assert "--standalone" not in cmd
    for arg in ("--nnodes=4", "--rdzv_backend=c10d", "--rdzv_endpoint=head:29400", "--rdzv_id=exp7", "--max_restarts=3"):
        assert arg in cmd


def test_multi_node_needs_an_endpoint():
    with pytest.raises(ValueError, match="rdzv_endpoint"):
        LaunchConfig(nnodes=2)


@pytest.mark.slow
def test_failing_job_raises_with_its_own_error(tmp_path):
    cfg = {"preset": "hero-tiny", "train": {"max_stepz": 3}}
    with pytest.raises(TorchrunError) as info:
        launch_torchrun(cfg, tmp_path / "run")
    msg = str(info.value)
    assert "exited with code 1" in msg
    assert "job error: hero.config.ConfigError: train.max_stepz: unknown key" in msg
    assert (tmp_path / "run" / "launch.log").exists() and (tmp_path / "run" / "config.yaml").exists()


@pytest.mark.slow
def test_job_runs_and_writes_its_run_dir(tmp_path):
    cfg = {"preset": "hero-tiny", "data": {"source": "random", "size": 8},
           "train": {"global_batch": 4, "max_steps": 3, "log_every": 1}}
    run_dir = launch_torchrun(cfg, tmp_path / "run", {"nproc_per_node": 1})
    assert (run_dir / "metrics.jsonl").read_text().count("\n") >= 3
