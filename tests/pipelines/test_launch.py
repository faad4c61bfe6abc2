import json
import sys
from pathlib import Path

import pytest

from hero.config import ConfigError, from_dict
from hero.train.config import load_run_config
from pipelines.launch import (
    JOB_ENV,
    LaunchConfig,
    TorchrunError,
    job_environment,
    launch_torchrun,
    main,
    prepare_run_dir,
    rendezvous_id,
    torchrun_command,
)


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
    assert "job error: train.max_stepz: unknown key (did you mean 'max_steps'?" in msg
    assert (tmp_path / "run" / "launch.log").exists() and (tmp_path / "run" / "config.yaml").exists()


@pytest.mark.slow
def test_job_runs_and_writes_its_run_dir(tmp_path):
    cfg = {"preset": "hero-tiny", "data": {"source": "random", "size": 8},
           "train": {"global_batch": 4, "max_steps": 3, "log_every": 1}}
    run_dir = launch_torchrun(cfg, tmp_path / "run", {"nproc_per_node": 1})
    assert (run_dir / "metrics.jsonl").read_text().count("\n") >= 3


# ---------------------------------------------------------------------------------------------- several nodes
def write_job_config(run_dir) -> str:
    """A job config as the launcher writes it (run_dir filled in); returns its path."""
    return str(prepare_run_dir({"preset": "hero-tiny", "train": {"max_steps": 3}}, run_dir, LaunchConfig()))


def torchrun_view(cmd: list[str]):
    """What torchrun itself makes of our argv: its launch config and the worker command."""
    from torch.distributed.run import config_from_args, parse_args

    assert cmd[1:3] == ["-m", "torch.distributed.run"]
    return config_from_args(parse_args(cmd[3:]))


def test_torchrun_parses_the_c10d_command(tmp_path):
    config = write_job_config(tmp_path / "run")
    launch = LaunchConfig(nnodes=2, rdzv_endpoint="head:29400", rdzv_conf={"join_timeout": 900, "is_host": False},
                          local_addr="10.0.0.5", max_restarts=2)
    cfg, python, args = torchrun_view(torchrun_command(config, launch))
    assert (cfg.min_nodes, cfg.max_nodes, cfg.nproc_per_node) == (2, 2, 1)
    assert (cfg.rdzv_backend, cfg.rdzv_endpoint, cfg.local_addr, cfg.max_restarts) == ("c10d", "head:29400", "10.0.0.5", 2)
    assert {k: cfg.rdzv_configs[k] for k in ("join_timeout", "is_host")} == {"join_timeout": "900", "is_host": "false"}
    assert cfg.run_id == rendezvous_id(config)
    assert (python, args) == (sys.executable, ["-u", "-m", "hero.train", "--config", config])


def test_torchrun_parses_the_static_command(tmp_path):
    launch = LaunchConfig(nnodes=3, rdzv_backend="static", rdzv_endpoint="head:29500", node_rank=2, rdzv_id="exp")
    cfg, _, _ = torchrun_view(torchrun_command(tmp_path / "c.yaml", launch))
    assert (cfg.rdzv_backend, cfg.rdzv_endpoint, cfg.run_id, cfg.rdzv_configs["rank"]) == ("static", "head:29500", "exp", 2)


@pytest.mark.parametrize("fields, message", [
    ({"nnodes": 2, "rdzv_backend": "static", "rdzv_endpoint": "h:1"}, "launch.node_rank: the static backend needs"),
    ({"nnodes": 2, "rdzv_backend": "static", "rdzv_endpoint": "h:1", "node_rank": 2}, r"launch.node_rank: 2 is not in \[0, nnodes=2\)"),
    ({"nnodes": 2, "rdzv_endpoint": "h:1", "node_rank": 1}, "launch.node_rank: only the static backend uses it"),
    ({"nnodes": 2, "rdzv_backend": "static", "rdzv_endpoint": "h:1", "node_rank": 0, "wrapper": ["srun"]},
     "launch.wrapper: runs one command on every node"),
    ({"nnodes": 2, "rdzv_endpoint": "h:1", "rdzv_conf": {"join_timeout": "1,2"}}, "launch.rdzv_conf.join_timeout: a key or"),
    ({"env": {"NCCL_IB_DISABLE": [1]}}, "launch.env.NCCL_IB_DISABLE: "),
])
def test_bad_launch_config_names_the_key(fields, message):
    with pytest.raises(ConfigError, match=f"^{message}"):
        from_dict(LaunchConfig, fields, _path="launch")


def test_default_rendezvous_id_is_one_per_job_and_the_same_on_every_node(tmp_path):
    config = write_job_config(tmp_path / "a")
    first = rendezvous_id(config)
    assert first == rendezvous_id(config) and first.startswith("hero-")
    # rank 0 rewrites config.yaml fully resolved when it starts; a node that reads it later still agrees
    Path(config).write_text(load_run_config(config).to_yaml())
    assert rendezvous_id(config) == first
    assert rendezvous_id(write_job_config(tmp_path / "b")) != first     # another run dir: another job
    with pytest.raises(FileNotFoundError, match="missing.yaml does not exist"):
        torchrun_command(tmp_path / "missing.yaml", LaunchConfig(nnodes=2, rdzv_endpoint="h:1"))


def test_slurm_job_id_and_numeric_env_values_are_accepted(tmp_path):
    launch = from_dict(LaunchConfig, {"nnodes": 2, "rdzv_endpoint": "h:1", "rdzv_id": 4242,
                                      "env": {"NCCL_IB_DISABLE": 1}}, _path="launch")
    assert "--rdzv_id=4242" in torchrun_command("c.yaml", launch)
    assert job_environment(launch, base={})["NCCL_IB_DISABLE"] == "1"


def test_wrapper_starts_the_same_command_on_every_node(tmp_path):
    launch = LaunchConfig(nnodes=2, rdzv_endpoint="h:1", rdzv_id="7", wrapper=["srun", "--ntasks-per-node=1"])
    cmd = torchrun_command("c.yaml", launch)
    assert cmd[:5] == ["srun", "--ntasks-per-node=1", sys.executable, "-m", "torch.distributed.run"]


def test_job_environment_layers_and_threads():
    launch = LaunchConfig(env={"A": "launch", "B": "launch"}, omp_num_threads=3)
    env = job_environment(launch, {"B": "extra"}, base={"A": "os", "C": "os"})
    assert (env["A"], env["B"], env["C"], env["OMP_NUM_THREADS"], env["PYTHONUNBUFFERED"]) == ("launch", "extra", "os", "3", "1")


def test_multi_node_run_dir_carries_the_job_env_but_no_password(tmp_path):
    launch = LaunchConfig(nnodes=2, rdzv_endpoint="h:1")
    extra = {"MLFLOW_RUN_ID": "abc", "HERO_MLFLOW_PREFIX": "pretrain/",
             "MLFLOW_TRACKING_URI": "postgresql://user:secret@db/mlflow"}
    prepare_run_dir({"preset": "hero-tiny"}, tmp_path / "multi", launch, extra)
    assert json.loads((tmp_path / "multi" / JOB_ENV).read_text()) == {"MLFLOW_RUN_ID": "abc", "HERO_MLFLOW_PREFIX": "pretrain/"}
    extra["MLFLOW_TRACKING_URI"] = "http://mlflow.cluster:5000"
    prepare_run_dir({"preset": "hero-tiny"}, tmp_path / "multi", launch, extra)
    assert json.loads((tmp_path / "multi" / JOB_ENV).read_text()) == extra
    prepare_run_dir({"preset": "hero-tiny"}, tmp_path / "single", LaunchConfig(), extra)
    assert not (tmp_path / "single" / JOB_ENV).exists()


def test_cli_prints_the_command_from_params_and_overrides(tmp_path, capsys):
    config = write_job_config(tmp_path / "run")
    rc = main(["--config", config, "--env", "test", "--dry-run", "nnodes=2", "rdzv_endpoint=head:29400",
               "rdzv_conf.join_timeout=900", "wrapper=[srun, --ntasks-per-node=1]"])
    out = capsys.readouterr().out.split()
    assert rc == 0 and out[0] == "srun"
    for arg in ("--nnodes=2", "--rdzv_endpoint=head:29400", f"--rdzv_id={rendezvous_id(config)}",
                "--rdzv_conf=join_timeout=900", "--max_restarts=0"):   # max_restarts from conf/base
        assert arg in out
    assert out[-2:] == ["--config", config]


def test_cli_rejects_a_bad_override_or_a_missing_config(tmp_path, capsys):
    config = write_job_config(tmp_path / "run")
    with pytest.raises(SystemExit) as info:
        main(["--config", config, "--env", "test", "nnodes=2"])
    assert info.value.code == 2 and "launch.rdzv_endpoint: needed when nnodes > 1" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--config", str(tmp_path / "nope.yaml"), "--env", "test", "--dry-run"])
    assert "nope.yaml: no such file" in capsys.readouterr().err


def test_a_labelled_jobs_console_lines_carry_its_name_and_its_log_does_not(tmp_path, caplog):
    import logging

    from pipelines.launch import run_streaming

    with caplog.at_level(logging.INFO, logger="pipelines.launch.job"):
        run_streaming([sys.executable, "-c", "print('step 1'); print('step 2')"], {}, tmp_path / "launch.log",
                      label="finetune/tvr-scratch")
    shown = [r.getMessage() for r in caplog.records if r.name == "pipelines.launch.job"]
    assert shown == ["[finetune/tvr-scratch] step 1", "[finetune/tvr-scratch] step 2"]
    assert (tmp_path / "launch.log").read_text() == "step 1\nstep 2\n"


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT"])
def test_stopping_the_launcher_stops_the_whole_job(tmp_path, sig):
    """A job runs in its own session (torchrun and its workers): a launcher stopped by SIGTERM (a scheduler, `kill`)
    or SIGINT (Ctrl-C) stops the job's whole process group, not only its first process; a worker left behind
    would keep training and hold its run folder."""
    import os
    import signal
    import subprocess
    import textwrap
    import time

    pids = tmp_path / "pids"
    job = textwrap.dedent(f"""
        import subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
        open({str(pids)!r}, "w").write(str(child.pid))
        print("started", flush=True)
        time.sleep(120)
    """)
    # Ctrl-C reaches an interactive `kedro run` as KeyboardInterrupt; a process started in the background of a
    # non-interactive shell (CI) inherits SIGINT ignored, so the launcher restores Python's handler first.
    launcher = textwrap.dedent(f"""
        import signal, sys
        signal.signal(signal.SIGINT, signal.default_int_handler)
        from pipelines.launch import run_streaming
        run_streaming([sys.executable, "-c", {job!r}], {{}}, __import__("pathlib").Path({str(tmp_path / 'launch.log')!r}))
    """)
    proc = subprocess.Popen([sys.executable, "-c", launcher], cwd=Path(__file__).resolve().parents[2],
                            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    deadline = time.monotonic() + 60
    while not pids.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert pids.exists(), "the job did not start"
    time.sleep(0.5)                                    # the pid file is written; the worker is running
    worker = int(pids.read_text())
    proc.send_signal(getattr(signal, sig))
    assert proc.wait(timeout=60) != 0
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            os.kill(worker, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        os.kill(worker, signal.SIGKILL)
        pytest.fail(f"{sig}: the job's worker {worker} kept running after its launcher stopped")
