"""The launcher: the one place that builds a torchrun command.

It writes the job's resolved config (atomically), runs `python -m torch.distributed.run … -m hero.train` as
a subprocess (its own process group, exit code, log stream), streams the job's output to
the log and to ``run_dir/launch.log``, and turns a non-zero exit into a `TorchrunError` that carries the
tail of the log. Machine specifics (processes per node, node count, rendezvous) come from
`params:launch` (conf/base, overridden per machine in conf/local).

Several nodes (docs/multinode.md): Kedro runs once; torchrun runs once per node. Either ``launch.wrapper``
(e.g. ``[srun, --ntasks-per-node=1]``) starts the same torchrun command on every node of an allocation, or
each other node joins by hand with ``python -m pipelines.launch --config <run_dir>/config.yaml`` (this
module's command line), which builds its torchrun command from the same `LaunchConfig` and the same config
file, so every node derives the same rendezvous id.
"""

from __future__ import annotations

import argparse
import collections
import json
import logging
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from hero.config import ConfigError, from_dict, merge, parse_overrides
from hero.storage.atomic import write_json_atomic, write_text_atomic
from hero.train.config import load_run_config
from pipelines.fingerprint import params_hash

log = logging.getLogger(__name__)
job_log = logging.getLogger(__name__ + ".job")  # the job's own lines, passed through as they are
_LOG_FORMAT = "%(asctime)s %(name)s: %(message)s"


_ERROR_LINE = re.compile(r"^(?:[A-Za-z_][\w.]*(?:Error|Exception|Interrupt)\b.*|error: .+)")
"""A job's own error: an exception's last traceback line, or a CLI's one-line ``error: ...``."""

JOB_ENV = "job_env.json"
"""In a multi-node run dir: the environment the launching node gave its job (the MLflow run to log into), for
the nodes that join with ``python -m pipelines.launch``: global rank 0, the one rank that logs, may be on any node."""


class TorchrunError(RuntimeError):
    """A launched training job exited non-zero; the message ends with the tail of its log."""

    def __init__(self, message: str, returncode: int = 1) -> None:
        super().__init__(message)
        self.returncode = returncode


@dataclass(frozen=True, kw_only=True)
class LaunchConfig:
    nproc_per_node: int = 1
    """Worker processes per node (GPUs per node on a cluster; 1 or 2 on a laptop CPU)."""
    nnodes: int = 1
    node_rank: int | None = None
    """This node's rank, for the static backend only (0 on the node named by rdzv_endpoint); c10d numbers nodes itself."""
    rdzv_backend: str = "c10d"
    rdzv_endpoint: str | None = None
    """host:port of the rendezvous (multi-node); None on one node (torchrun --standalone)."""
    rdzv_id: str | int | None = None
    """Job id shared by every node of one job (a Slurm job id reads as a number). None: derived from the job's
    config file, so every node launching the same config agrees and two jobs never share an id."""
    rdzv_conf: dict[str, str | int | float | bool] = field(default_factory=dict)
    """torchrun --rdzv_conf, e.g. {join_timeout: 900} (seconds to wait for all nodes; c10d's default is 600) or
    {is_host: true} on the node that serves the c10d store when its hostname does not match rdzv_endpoint."""
    local_addr: str | None = None
    """Address this node advertises to the others (torchrun --local_addr); None: its fully qualified hostname."""
    wrapper: list[str] = field(default_factory=list)
    """A command that runs the torchrun command once on every node, e.g. [srun, --ntasks-per-node=1] inside a
    Slurm allocation; empty: torchrun runs on this machine only (the other nodes join by themselves)."""
    max_restarts: int = 0
    """torchrun restarts the worker group this many times after a failure; the job resumes from its checkpoint."""
    omp_num_threads: int | None = None
    """Threads per worker process (torchrun's default is 1 when nproc_per_node > 1)."""
    env: dict[str, str | int] = field(default_factory=dict)
    """Extra environment variables for the job (e.g. NCCL_SOCKET_IFNAME: ib0, NCCL_IB_DISABLE: 1)."""
    tail_lines: int = 60

    def __post_init__(self) -> None:
        if self.nproc_per_node < 1 or self.nnodes < 1:
            raise ConfigError(f"launch: nproc_per_node and nnodes must be >= 1, got {self.nproc_per_node}, {self.nnodes}")
        if self.nnodes > 1 and not self.rdzv_endpoint:
            raise ConfigError("launch.rdzv_endpoint: needed when nnodes > 1 (host:port of the rendezvous)")
        if self.rdzv_backend == "static":
            if self.nnodes > 1 and self.node_rank is None:
                raise ConfigError("launch.node_rank: the static backend needs each node's rank (0 on the rdzv_endpoint host)")
            if self.node_rank is not None and not 0 <= self.node_rank < self.nnodes:
                raise ConfigError(f"launch.node_rank: {self.node_rank} is not in [0, nnodes={self.nnodes})")
            if self.wrapper and self.nnodes > 1:
                raise ConfigError("launch.wrapper: runs one command on every node, but the static backend needs a "
                                  "different node_rank on each; use rdzv_backend: c10d")
        elif self.node_rank is not None:
            raise ConfigError(f"launch.node_rank: only the static backend uses it; {self.rdzv_backend} numbers the nodes "
                              "itself (remove node_rank)")
        for key, value in self.rdzv_conf.items():
            if any(c in f"{key}{value}" for c in ",="):
                raise ConfigError(f"launch.rdzv_conf.{key}: a key or value may not contain ',' or '=' ({value!r})")


def rendezvous_id(config_path: str | Path) -> str:
    """The default rendezvous id: a hash of the job's validated config (which names its run dir).

    Every node that reads the same config file gets the same id, whatever the path it mounts the file under,
    and so does a node that reads it after rank 0 has rewritten it in its fully resolved form; two jobs
    (two run dirs) never share one.
    """
    path = Path(config_path)
    if not path.is_file():
        raise FileNotFoundError(f"launch.rdzv_id is unset, so it is derived from the job's config, but {path} does "
                                "not exist (set launch.rdzv_id or write the config first)")
    return "hero-" + params_hash(load_run_config(path).to_dict())


def torchrun_command(config_path: str | Path, launch: LaunchConfig, module: str = "hero.train") -> list[str]:
    """The argv of ``[wrapper …] python -m torch.distributed.run … -m <module> --config <config_path>``."""
    cmd = [*launch.wrapper, sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={launch.nproc_per_node}"]
    if launch.nnodes == 1 and not launch.rdzv_endpoint:
        cmd.append("--standalone")
    else:
        rdzv_id = launch.rdzv_id if launch.rdzv_id is not None else rendezvous_id(config_path)
        cmd += [f"--nnodes={launch.nnodes}", f"--rdzv_backend={launch.rdzv_backend}",
                f"--rdzv_endpoint={launch.rdzv_endpoint}", f"--rdzv_id={rdzv_id}"]
        if launch.rdzv_conf:
            cmd.append("--rdzv_conf=" + ",".join(f"{k}={_conf_value(v)}" for k, v in launch.rdzv_conf.items()))
        if launch.node_rank is not None:
            cmd.append(f"--node_rank={launch.node_rank}")
    if launch.local_addr:
        cmd.append(f"--local_addr={launch.local_addr}")
    cmd += [f"--max_restarts={launch.max_restarts}", "-m", module, "--config", str(config_path)]
    return cmd


def _conf_value(value: str | float | bool) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def job_environment(launch: LaunchConfig, extra_env: Mapping[str, str] | None = None,
                    base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The job's environment: ``base`` (this process's), then ``launch.env``, then ``extra_env`` (the MLflow run)."""
    env = {**(os.environ if base is None else base), **{k: str(v) for k, v in launch.env.items()},
           **(extra_env or {}), "PYTHONUNBUFFERED": "1"}
    if launch.omp_num_threads is not None:
        env["OMP_NUM_THREADS"] = str(launch.omp_num_threads)
    env.setdefault("HERO_LAUNCH_ID", uuid.uuid4().hex[:8])
    return env


def shareable_env(extra_env: Mapping[str, str]) -> dict[str, str]:
    """``extra_env`` without values that carry a password (a tracking URI such as ``postgresql://u:pw@db``):
    credentials are never written into files; the joining nodes take those from their own environment."""
    kept = {k: v for k, v in extra_env.items() if not urlsplit(v).password}
    for k in sorted(set(extra_env) - set(kept)):
        log.warning("%s carries a password and is not written to %s: set it on every node", k, JOB_ENV)
    return kept


def prepare_run_dir(run_config: dict[str, Any], run_dir: str | Path, launch: LaunchConfig,
                    extra_env: Mapping[str, str] | None = None, root: Path | None = None) -> Path:
    """Write ``run_dir/config.yaml`` (``train.run_dir`` set to ``run_dir`` as given: a relative one is taken from
    ``root``, the folder the job runs in) and, for a multi-node job, the job environment the joining nodes need
    (`JOB_ENV`, rewritten every launch so no stale MLflow run id stays).

    Returns:
        The config's path.
    """
    where = Path(run_dir)
    cfg = {**run_config, "train": {**run_config.get("train", {}), "run_dir": where.as_posix()}}
    run_dir = where if where.is_absolute() or root is None else root / where
    run_dir.mkdir(parents=True, exist_ok=True)
    config_path = run_dir / "config.yaml"
    write_text_atomic(config_path, yaml.safe_dump(cfg, sort_keys=False))
    if launch.nnodes > 1:
        write_json_atomic(run_dir / JOB_ENV, shareable_env(extra_env or {}), indent=1)
    return config_path


def launch_torchrun(
    run_config: dict[str, Any],
    run_dir: str | Path,
    launch: LaunchConfig | dict | None = None,
    extra_env: dict[str, str] | None = None,
    module: str = "hero.train",
    label: str | None = None,
) -> Path:
    """Run one training job to completion under torchrun.

    Args:
        run_config: the job's config as plain data (``hero.train`` validates it; ``train.run_dir`` is set here).
        run_dir: the job's directory: config.yaml, checkpoints, metrics.jsonl, launch.log.
        launch: processes/nodes/rendezvous (a `LaunchConfig` or its dict form).
        extra_env: more environment for the job (its MLflow run, `pipelines.tracking.Run.env`).
        module: the job's entry module (``hero.train``; tests run instrumented ones).
        label: put before each of the job's lines on the console (``[finetune/tvr-scratch] ...``), so jobs
            running side by side can be told apart; launch.log keeps the lines as they are.

    Returns:
        ``run_dir``.

    Raises:
        TorchrunError: the job exited non-zero; the message carries the exit code and the log's tail.
    """
    from pipelines.config_loader import project_root
    from pipelines.paths import relative, resolve

    launch = launch if isinstance(launch, LaunchConfig) else from_dict(LaunchConfig, launch or {}, _path="launch")
    # The job runs in the project folder and its config names its run dir relative to it (when inside it): the
    # config, and every checkpoint that copies it, stays true when the folder is moved or cloned.
    where = relative(run_dir)
    config_path = prepare_run_dir(run_config, where, launch, extra_env, root=project_root())
    cmd = torchrun_command(relative(config_path), launch, module)
    if launch.nnodes > 1 and not launch.wrapper:
        log.info("this machine is 1 of %d nodes; on each other node, in the project folder, run: "
                 "python -m pipelines.launch --config %s", launch.nnodes, relative(config_path))
    run_dir = Path(resolve(where))
    run_streaming(cmd, job_environment(launch, extra_env), run_dir / "launch.log", launch.tail_lines, label,
                  cwd=project_root())
    return run_dir


class _Terminated(SystemExit):
    """SIGTERM arrived while a job ran (raised in the main thread, so the job is stopped on the way out)."""


class _terminate_as_exception:
    """While a job runs from the main thread, SIGTERM raises `_Terminated` (exit status 143) instead of ending the
    process on the spot: the job's process group is then stopped with it. Elsewhere (a worker thread) a no-op."""

    def __enter__(self):
        self.previous = None
        if threading.current_thread() is threading.main_thread():
            def raise_terminated(signum, frame):
                raise _Terminated(128 + signum)

            self.previous = signal.signal(signal.SIGTERM, raise_terminated)
        return self

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGTERM, self.previous)
        return False


def stop_job(proc: subprocess.Popen, grace_s: float = 10.0) -> None:
    """Stop a job started in its own session: SIGTERM to its whole process group (torchrun and its workers; the
    workers save nothing on the way out, the last checkpoint stands), SIGKILL to what is left after ``grace_s``."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()


def run_streaming(cmd: Sequence[str], env: Mapping[str, str], log_path: Path, tail_lines: int = 60,
                  label: str | None = None, cwd: str | Path | None = None) -> None:
    """Run ``cmd``, passing each output line to the log (after ``[label] ``) and appending it to ``log_path``.

    Raises:
        TorchrunError: on a non-zero exit, with the job's last exception line and the log's tail.
    """
    log.info("launching: %s", shlex.join(cmd))
    tail: collections.deque[str] = collections.deque(maxlen=tail_lines)
    errors: list[str] = []  # the job's own exception lines, above torchrun's failure report
    prefix = f"[{label}] " if label else ""
    with open(log_path, "a", encoding="utf-8") as logf, _terminate_as_exception():
        proc = subprocess.Popen(list(cmd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=dict(env),
                                start_new_session=True, bufsize=1, cwd=cwd)
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                line = line.rstrip("\n")
                tail.append(line)
                if _ERROR_LINE.match(line) and "ChildFailedError" not in line:
                    errors.append(line)
                logf.write(line + "\n")
                job_log.info("%s%s", prefix, line)
            rc = proc.wait()
        except BaseException:
            stop_job(proc)
            raise
    if rc != 0:
        cause = f"job error: {errors[-1].removeprefix('error: ')}\n" if errors else ""
        raise TorchrunError(f"torchrun exited with code {rc} (log: {log_path})\n{cause}last lines:\n"
                            + "\n".join(tail), rc)


# ---------------------------------------------------------------------------------------------- command line
def launch_params(env: str | None = None, overrides: Sequence[str] = ()) -> LaunchConfig:
    """``params:launch`` as ``kedro run --env <env>`` sees it (conf/base, then conf/<env>, default local), with
    ``key=value`` overrides (``nnodes=2``, ``rdzv_conf.is_host=false``) applied on top."""
    from kedro.config import OmegaConfigLoader

    from pipelines.config_loader import CONFIG_LOADER_ARGS, project_root

    loader = OmegaConfigLoader(str(project_root() / "conf"), env=env, **CONFIG_LOADER_ARGS)
    params = loader["parameters"].get("launch") or {}
    return from_dict(LaunchConfig, merge(params, parse_overrides(overrides)), _path="launch")


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m pipelines.launch --config RUN_DIR/config.yaml [key=value …]``: run one job's torchrun on this
    node (or, with ``launch.wrapper``, on every node); returns torchrun's exit code."""
    ap = argparse.ArgumentParser(prog="python -m pipelines.launch", description=main.__doc__)
    ap.add_argument("--config", type=Path, required=True,
                    help="the job's config.yaml, as the launching node wrote it (on storage every node sees)")
    ap.add_argument("--env", default=None, help="Kedro config environment for params:launch (default: local)")
    ap.add_argument("--module", default="hero.train", help="the job's entry module (default: hero.train)")
    ap.add_argument("--dry-run", action="store_true", help="print the torchrun command and exit")
    ap.add_argument("overrides", nargs="*", help="launch overrides, e.g. nnodes=2 rdzv_endpoint=head:29400")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format=_LOG_FORMAT, datefmt="%H:%M:%S")
    try:
        launch = launch_params(args.env, args.overrides)
    except ConfigError as err:
        ap.error(str(err))
    config_path = args.config.resolve()
    if not config_path.is_file():
        ap.error(f"--config {config_path}: no such file")
    cmd = torchrun_command(config_path, launch, args.module)
    if args.dry_run:
        print(shlex.join(cmd))
        return 0
    job_env_path = config_path.parent / JOB_ENV
    shared = json.loads(job_env_path.read_text()) if job_env_path.is_file() else {}
    try:
        from pipelines.config_loader import project_root

        # the config's paths are relative to the project (`launch_torchrun`): the job runs there on this node too
        run_streaming(cmd, job_environment(launch, shared), config_path.parent / f"launch-{socket.gethostname()}.log",
                      launch.tail_lines, cwd=project_root())
    except TorchrunError as err:
        log.error("%s", err)
        return err.returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())
