"""The launcher: the one place that builds a torchrun command.

It writes the job's resolved config (atomically), runs `python -m torch.distributed.run … -m hero.train` as
a subprocess (its own process group, exit code, log stream: STACK.md trap 9), streams the job's output to
the log and to ``run_dir/launch.log``, and turns a non-zero exit into a `TorchrunError` that carries the
tail of the log. Machine specifics (processes per node, node count, rendezvous) come from
`params:launch` (conf/base, overridden per machine in conf/local).
"""

from __future__ import annotations

import collections
import logging
import os
import re
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hero.config import from_dict
from hero.corpus.atomic import write_text_atomic

log = logging.getLogger(__name__)
job_log = logging.getLogger(__name__ + ".job")  # the job's own lines, passed through as they are


_ERROR_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Interrupt)\b.*")


class TorchrunError(RuntimeError):
    """A launched training job exited non-zero; the message ends with the tail of its log."""


@dataclass(frozen=True, kw_only=True)
class LaunchConfig:
    nproc_per_node: int = 1
    """Worker processes per node (GPUs per node on a cluster; 1 or 2 on a laptop CPU)."""
    nnodes: int = 1
    node_rank: int | None = None
    """This node's rank when the rendezvous backend needs it (static); None for c10d."""
    rdzv_backend: str = "c10d"
    rdzv_endpoint: str | None = None
    """host:port of the rendezvous (multi-node); None on one node (torchrun --standalone)."""
    rdzv_id: str | None = None
    """Job id shared by every node of one job; None = a fresh id per launch (single node)."""
    max_restarts: int = 0
    """torchrun restarts the worker group this many times after a failure; the job resumes from its checkpoint."""
    omp_num_threads: int | None = None
    """Threads per worker process (torchrun's default is 1 when nproc_per_node > 1)."""
    env: dict[str, str] = field(default_factory=dict)
    """Extra environment variables for the job (e.g. NCCL_SOCKET_IFNAME)."""
    tail_lines: int = 60

    def __post_init__(self) -> None:
        if self.nproc_per_node < 1 or self.nnodes < 1:
            raise ValueError(f"launch: nproc_per_node and nnodes must be >= 1, got {self.nproc_per_node}, {self.nnodes}")
        if self.nnodes > 1 and not self.rdzv_endpoint:
            raise ValueError("launch.rdzv_endpoint: needed when nnodes > 1 (host:port of the rendezvous)")


def torchrun_command(config_path: str | Path, launch: LaunchConfig, module: str = "hero.train") -> list[str]:
    """The argv of ``python -m torch.distributed.run … -m <module> --config <config_path>``."""
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={launch.nproc_per_node}"]
    if launch.nnodes == 1 and not launch.rdzv_endpoint:
        cmd.append("--standalone")
    else:
        cmd += [f"--nnodes={launch.nnodes}", f"--rdzv_backend={launch.rdzv_backend}",
                f"--rdzv_endpoint={launch.rdzv_endpoint}", f"--rdzv_id={launch.rdzv_id or 'hero'}"]
        if launch.node_rank is not None:
            cmd.append(f"--node_rank={launch.node_rank}")
    cmd += [f"--max_restarts={launch.max_restarts}", "-m", module, "--config", str(config_path)]
    return cmd


def launch_torchrun(
    run_config: dict[str, Any],
    run_dir: str | Path,
    launch: LaunchConfig | dict | None = None,
    extra_env: dict[str, str] | None = None,
) -> Path:
    """Run one training job to completion under torchrun.

    Args:
        run_config: the job's config as plain data (``hero.train`` validates it; ``train.run_dir`` is set here).
        run_dir: the job's directory: config.yaml, checkpoints, metrics.jsonl, launch.log.
        launch: processes/nodes/rendezvous (a `LaunchConfig` or its dict form).
        extra_env: more environment for the job (the MLflow run id from `pipelines.tracking.job_env`).

    Returns:
        ``run_dir``.

    Raises:
        TorchrunError: the job exited non-zero; the message carries the exit code and the log's tail.
    """
    launch = launch if isinstance(launch, LaunchConfig) else from_dict(LaunchConfig, launch or {}, _path="launch")
    run_dir = Path(run_dir).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg = {**run_config, "train": {**run_config.get("train", {}), "run_dir": str(run_dir)}}
    config_path = run_dir / "config.yaml"
    write_text_atomic(config_path, yaml.safe_dump(cfg, sort_keys=False))
    cmd = torchrun_command(config_path, launch)
    env = {**os.environ, **launch.env, **(extra_env or {}), "PYTHONUNBUFFERED": "1"}
    if launch.omp_num_threads is not None:
        env["OMP_NUM_THREADS"] = str(launch.omp_num_threads)
    env.setdefault("HERO_LAUNCH_ID", uuid.uuid4().hex[:8])
    log.info("launching: %s", " ".join(cmd))
    tail: collections.deque[str] = collections.deque(maxlen=launch.tail_lines)
    errors: list[str] = []  # the job's own exception lines, above torchrun's failure report
    with open(run_dir / "launch.log", "a", encoding="utf-8") as logf:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                                start_new_session=True, bufsize=1)
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                line = line.rstrip("\n")
                tail.append(line)
                if _ERROR_LINE.match(line) and "ChildFailedError" not in line:
                    errors.append(line)
                logf.write(line + "\n")
                job_log.info("%s", line)
            rc = proc.wait()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
    if rc != 0:
        cause = f"job error: {errors[-1]}\n" if errors else ""
        raise TorchrunError(f"torchrun exited with code {rc} (log: {run_dir / 'launch.log'})\n{cause}last lines:\n"
                            + "\n".join(tail))
    return run_dir
