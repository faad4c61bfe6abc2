"""Two torchrun "nodes" on 127.0.0.1 joined by the c10d rendezvous, as docs/multinode.md sets up a cluster:
node A is the Kedro side (`launch_torchrun`), node B joins with ``python -m pipelines.launch --config``."""

import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from hero.train import run
from hero.train.config import RunConfig
from pipelines.launch import (
    JOB_ENV,
    LaunchConfig,
    launch_torchrun,
    prepare_run_dir,
    rendezvous_id,
)

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
STEPS = 4
JOB = {"preset": "hero-tiny",
       "data": {"source": "random", "size": 32, "frames": [4, 8], "sub_len": [3, 6]},
       "optim": {"lr": 1e-3, "warmup_steps": 2},
       "train": {"global_batch": 4, "micro_batch": 2, "max_steps": STEPS, "log_every": 1, "seed": 3}}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(path: Path, timeout: float) -> None:
    end = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > end:
            raise TimeoutError(f"{path} did not appear in {timeout} s")
        time.sleep(0.1)


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run_dir / f"step-{STEPS:08d}" / "model.safetensors"))


@pytest.mark.slow
def test_two_nodes_train_one_model(tmp_path, caplog):
    run_dir, port = tmp_path / "job", free_port()
    pythonpath = os.pathsep.join([str(REPO), str(HERE)])  # the workers import multinode_worker
    node_a = LaunchConfig(nnodes=2, rdzv_endpoint=f"127.0.0.1:{port}", local_addr="127.0.0.1", omp_num_threads=1,
                          rdzv_conf={"is_host": True, "join_timeout": 60}, env={"PYTHONPATH": pythonpath})
    mlflow_env = {"MLFLOW_RUN_ID": "0123abcd", "HERO_MLFLOW_PREFIX": "pretrain/"}
    failure: list[BaseException] = []

    def launch_node_a() -> None:
        try:
            launch_torchrun(JOB, run_dir, node_a, extra_env=mlflow_env, module="multinode_worker")
        except BaseException as err:  # noqa: BLE001 - re-raised in the test's thread below
            failure.append(err)

    caplog.set_level(logging.INFO, logger="pipelines.launch")
    a = threading.Thread(target=launch_node_a)
    a.start()
    wait_for(run_dir / JOB_ENV, timeout=30)  # node A has written the job's config and environment
    env = {k: v for k, v in os.environ.items() if k not in ("HERO_PROJECT_ROOT", *mlflow_env)}
    node_b = subprocess.run(
        [sys.executable, "-m", "pipelines.launch", "--config", str(run_dir / "config.yaml"), "--env", "test",
         "--module", "multinode_worker", "nnodes=2", f"rdzv_endpoint=127.0.0.1:{port}", "local_addr=127.0.0.1",
         "omp_num_threads=1", "rdzv_conf={is_host: false, join_timeout: 60}"],
        check=False, cwd=REPO, env={**env, "PYTHONPATH": pythonpath}, capture_output=True, text=True, timeout=240)
    a.join(timeout=240)
    assert not a.is_alive() and not failure, failure
    assert node_b.returncode == 0, node_b.stdout[-3000:] + node_b.stderr[-3000:]

    # Both nodes derived the same rendezvous id from the config file, without being given one.
    rdzv = f"--rdzv_id={rendezvous_id(run_dir / 'config.yaml')}"
    assert rdzv in node_b.stderr and rdzv in caplog.text

    # Two ranks, one per node, in a world of 2; both ended with identical weights; node B's rank got the
    # MLflow run that node A was given (through job_env.json), so rank 0 can log wherever it lands.
    ranks = [json.loads((run_dir / f"rank-{r}.json").read_text()) for r in (0, 1)]
    assert [(r["rank"], r["world_size"], r["local_rank"]) for r in ranks] == [(0, 2, 0), (1, 2, 0)]
    assert sorted(r["group_rank"] for r in ranks) == [0, 1]
    assert ranks[0]["sha256"] == ranks[1]["sha256"]
    assert all(r["mlflow_run_id"] == "0123abcd" for r in ranks)
    state = json.loads((run_dir / f"step-{STEPS:08d}" / "state.json").read_text())
    assert state["world_size"] == 2
    logs = (run_dir / "launch.log").read_text() + (run_dir / f"launch-{socket.gethostname()}.log").read_text()
    assert "2 rank(s) x 1 micro-step(s) x 2 videos" in logs

    # The same global batch on one process gives the same model: each node trained on its own shard of the
    # data (sharded by global rank) and the gradients were averaged across nodes.
    run(RunConfig.from_dict(JOB), run_dir=tmp_path / "one")
    one, two = weights(tmp_path / "one"), weights(run_dir)
    assert one.keys() == two.keys()
    for k in one:
        torch.testing.assert_close(two[k], one[k], rtol=1e-4, atol=1e-5, msg=k)


SLURM = REPO / "scripts" / "slurm"


@pytest.mark.parametrize("script", sorted(SLURM.glob("*.sbatch")), ids=lambda p: p.name)
def test_slurm_scripts_parse(script):
    out = subprocess.run(["bash", "-n", str(script)], check=False, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def fake_slurm(tmp_path: Path, tools: dict[str, str]) -> dict[str, str]:
    """Environment of a 2-node allocation whose first node is 127.0.0.1, with stand-ins for Slurm's tools."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in {"scontrol": 'printf "127.0.0.1\\nnode-b\\n"', **tools}.items():
        (bin_dir / name).write_text(f"#!/usr/bin/env bash\n{body}\n")
        (bin_dir / name).chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "SLURM_SUBMIT_DIR": str(tmp_path),
            "SLURM_JOB_NODELIST": "node-[a-b]", "SLURM_NNODES": "2", "SLURM_JOB_ID": "4242", "SLURM_CPUS_PER_TASK": "4"}


def test_pretrain_sbatch_runs_kedro_once_with_the_rendezvous_on_the_first_node(tmp_path):
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / ".venv" / "bin" / "activate").write_text("")
    env = fake_slurm(tmp_path, {"kedro": f'echo "$*" > {tmp_path / "kedro.args"}'})
    out = subprocess.run(["bash", str(SLURM / "pretrain.sbatch")], check=False, env=env, capture_output=True, text=True)
    assert out.returncode == 1 and "conf/local/parameters_launch.yml is missing" in out.stderr
    (tmp_path / "conf" / "local").mkdir(parents=True)
    (tmp_path / "conf" / "local" / "parameters_launch.yml").write_text("launch: {nproc_per_node: 8}\n")
    out = subprocess.run(["bash", str(SLURM / "pretrain.sbatch")], check=False, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "kedro.args").read_text().split() == [
        "run", "--pipelines=pretrain", "--params", "launch.nnodes=2,launch.rdzv_endpoint=127.0.0.1:29400"]
    out = subprocess.run(["bash", str(SLURM / "pretrain.sbatch")], check=False, env={**env, "HERO_PIPELINE": "evaluate"},
                         capture_output=True, text=True)
    assert out.returncode == 0 and (tmp_path / "kedro.args").read_text().split()[1] == "--pipelines=evaluate"


@pytest.mark.slow
def test_train_sbatch_runs_a_config_through_the_node_launcher(tmp_path):
    """train.sbatch on a one-node "allocation": srun runs its command here; the job rendezvouses on 127.0.0.1."""
    (tmp_path / ".venv").symlink_to(REPO / ".venv")
    (tmp_path / "conf" / "base").mkdir(parents=True)
    shutil.copy(REPO / "conf" / "base" / "parameters_launch.yml", tmp_path / "conf" / "base")
    (tmp_path / "conf" / "local").mkdir()
    (tmp_path / "conf" / "local" / "parameters_launch.yml").write_text(
        "launch: {nproc_per_node: 1, local_addr: 127.0.0.1, omp_num_threads: 1, rdzv_conf: {join_timeout: 60},"
        " wrapper: [srun, --ntasks-per-node=1]}\n")  # the wrapper that train.sbatch must switch off
    run_dir = tmp_path / "job"
    config = prepare_run_dir(JOB, run_dir, LaunchConfig())
    srun = f'echo "$*" > {tmp_path / "srun.args"}\nwhile [[ $1 == -* ]]; do shift; done\nexec "$@"'
    env = {**fake_slurm(tmp_path, {"srun": srun}), "SLURM_NNODES": "1", "HERO_PROJECT_ROOT": str(tmp_path),
           "HERO_RDZV_PORT": str(free_port())}
    out = subprocess.run(["bash", str(SLURM / "train.sbatch"), str(config)], check=False, env=env,
                         capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert (tmp_path / "srun.args").read_text().startswith("--ntasks-per-node=1 --kill-on-bad-exit=1 python -m pipelines.launch")
    launched = next(line for line in out.stderr.splitlines() if "launching:" in line)
    assert Path(launched.split("launching: ")[1].split()[0]).name.startswith("python")  # no srun inside srun
    for arg in ("--nnodes=1", f"--rdzv_endpoint=127.0.0.1:{env['HERO_RDZV_PORT']}", "--rdzv_id=4242"):
        assert arg in launched
    assert (run_dir / f"step-{STEPS:08d}" / "state.json").exists()
