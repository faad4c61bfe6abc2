"""Multi-process runs through a real torchrun subprocess (gloo on CPU): @slow."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from hero.train import run
from train_helpers import read_metrics, strip_perf

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[3]
HERE = Path(__file__).resolve().parent


def torchrun(args: list[str], tmp_path: Path, env: dict | None = None, timeout: int = 180) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", *args]
    full_env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(HERE)]), **(env or {})}
    out = subprocess.run(cmd, cwd=tmp_path, env=full_env, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-5000:]
    return out


def write_cfg(cfg, path: Path) -> Path:
    path.write_text(cfg.to_yaml())
    return path


def weights(run_dir: Path, step: int) -> dict[str, torch.Tensor]:
    return load_file(str(run_dir / f"step-{step:08d}" / "model.safetensors"))


@pytest.fixture(scope="module")
def two_rank_run(tmp_path_factory):
    """The tiny config (global batch 4, 6 steps) on 2 ranks x 1 micro-step of 2 videos."""
    from hero.train.config import RunConfig

    tmp = tmp_path_factory.mktemp("ddp")
    cfg = RunConfig.from_dict({
        "preset": "hero-tiny",
        "data": {"size": 64, "frames": [4, 8], "sub_len": [3, 6]},
        "optim": {"lr": 1e-3, "warmup_steps": 2},
        "train": {"global_batch": 4, "micro_batch": 2, "max_steps": 6, "log_every": 1, "seed": 3,
                  "ckpt_every": 1, "run_dir": str(tmp / "two")},
    })
    torchrun(["-m", "hero.train", "--config", str(write_cfg(cfg, tmp / "run.yaml"))], tmp)
    return cfg, tmp


def test_two_ranks_equal_one_rank_with_the_same_global_batch(two_rank_run, tmp_path):
    cfg, tmp = two_rank_run
    one = run(cfg, run_dir=tmp_path / "one")                      # 1 rank x 2 micro-steps of 2 videos
    a, b = read_metrics(tmp_path / "one"), read_metrics(tmp / "two")
    assert [r["step"] for r in a] == [r["step"] for r in b] == list(range(1, 7))
    for ra, rb in zip(a, b):
        ra, rb = strip_perf(ra), strip_perf(rb)
        assert ra.keys() == rb.keys()                              # same task at every step
        for k in ra:
            assert ra[k] == pytest.approx(rb[k], rel=1e-4, abs=1e-6), k
    wa, wb = weights(tmp_path / "one", 6), weights(tmp / "two", 6)
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], rtol=1e-4, atol=1e-5, msg=k)
    assert one["train/loss"] == pytest.approx(b[-1]["train/loss"], rel=1e-5)


def test_sigkilled_worker_is_restarted_and_resumes(two_rank_run, tmp_path):
    cfg, tmp = two_rank_run
    cfg = cfg.override(f"train.run_dir={tmp_path / 'killed'}",
                       "train.sinks=[hero.train.sinks:JsonlSink, train_helpers:KillOnceSink]")
    out = torchrun(["--max-restarts", "1", "-m", "hero.train", "--config", str(write_cfg(cfg, tmp_path / "run.yaml"))],
                   tmp_path, env={"HERO_TEST_KILL_AT_STEP": "4"})
    assert (tmp_path / "killed" / "killed.marker").read_text() == "0"   # killed during the first attempt
    assert "resumed at step 3" in out.stderr
    a, b = read_metrics(tmp_path / "killed"), read_metrics(tmp / "two")
    assert [strip_perf(r) for r in a] == [strip_perf(r) for r in b]     # same world size: bitwise
    wa, wb = weights(tmp_path / "killed", 6), weights(tmp / "two", 6)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


GATHER_SCRIPT = textwrap.dedent("""
    import sys, torch, torch.distributed as dist
    from hero.train.distributed import all_gather_own_first, init_distributed
    from hero.train import run
    from hero.train.config import RunConfig
    info = init_distributed("cpu")
    r = info.rank
    x = torch.full((r + 1, 3), float(r + 1), requires_grad=True)   # rank 0: 1 row, rank 1: 2 rows
    g = all_gather_own_first(x)
    assert g.shape == (3, 3) and torch.equal(g[: r + 1], x.detach())
    assert all_gather_own_first(torch.tensor([r])).tolist() == [r, 1 - r]
    weights = torch.arange(1.0, 4.0)[:, None] * (10 ** r)             # each rank weights the rows differently
    (g * weights).sum().backward()
    # d(sum over ranks of loss_r)/dx: own rows were first on this rank and second/last on the other
    other = torch.arange(1.0, 4.0)[:, None] * (10 ** (1 - r))
    own_here, own_there = weights[: r + 1], other[3 - (r + 1):]   # on the other rank, mine come last
    assert torch.equal(x.grad, (own_here + own_there).expand(-1, 3)), (r, x.grad)
    dist.barrier()
    # a short run with VSM negatives gathered across ranks
    cfg = RunConfig.from_dict({"preset": "hero-tiny", "data": {"size": 16, "frames": [4, 8]},
        "pretrain": {"tasks": {"vsm": 1.0}, "vsm": {"gather_across_ranks": True, "drop_svmr_prob": 0.0}},
        "train": {"global_batch": 4, "max_steps": 2, "log_every": 1, "run_dir": "gather_run"}})
    out = run(cfg, dist=info)
    assert out["train/step"] == 2 and out["train/loss"] == out["train/loss"]
    dist.destroy_process_group()
    sys.stdout.write(f"GATHER_OK {r}\\n")  # one write: the two ranks share a pipe, print() writes piecewise
""")


def test_vsm_negatives_gathered_across_ranks_with_gradients(tmp_path):
    script = tmp_path / "gather_check.py"
    script.write_text(GATHER_SCRIPT)
    out = torchrun([str(script)], tmp_path)
    assert "GATHER_OK 0" in out.stdout and "GATHER_OK 1" in out.stdout
    rows = yaml.safe_load((tmp_path / "gather_run" / "config.yaml").read_text())
    assert rows["pretrain"]["vsm"]["gather_across_ranks"] is True


MR_GATHER_SCRIPT = textwrap.dedent("""
    import sys, torch, torch.distributed as dist
    from hero.data.random_batch import random_video_batch
    from hero.presets import get_preset
    from hero.tasks.moment_retrieval import MomentRetrievalConfig, MomentRetrievalInputs, MomentRetrievalTask
    from hero.train.data import concat_videos
    from hero.train.distributed import all_gather_own_first, init_distributed
    info = init_distributed("cpu")
    r = info.rank
    p = get_preset("hero-tiny", dropout=0.0, attention_dropout=0.0)
    torch.manual_seed(0)                                   # the same weights on both ranks
    task = MomentRetrievalTask(p.model, MomentRetrievalConfig(gather_across_ranks=True), p.tokens)

    def inputs(batches, offsets):
        b = concat_videos(batches, pad_id=p.tokens.pad)
        g = torch.Generator().manual_seed(7 + sum(offsets))
        qv = torch.tensor([o + v for o in offsets for v in (0, 0, 1)])        # 3 queries on each rank's 2 videos
        ids = torch.randint(5, 128, (len(qv), 6), generator=g)
        ids[:, 0] = p.tokens.cls
        n = torch.full((len(qv),), -1)
        return MomentRetrievalInputs(batch=b, query_ids=ids, query_mask=torch.ones_like(ids, dtype=torch.bool),
                                     query_video=qv - min(offsets), start=n, end=n, use_local=False, hard=False)

    per_rank = [random_video_batch(p.model, p.tokens, num_videos=2, generator=torch.Generator().manual_seed(100 + k))
                for k in range(2)]
    mine = inputs([per_rank[r]], [2 * r])
    task.all_gather = all_gather_own_first
    gathered = task(mine)
    gathered.loss.backward()
    grads = {n: q.grad.clone() for n, q in task.named_parameters() if q.grad is not None}
    for g in grads.values():                               # what DDP does: the mean over ranks
        dist.all_reduce(g)
        g /= 2
    task.zero_grad()
    task.all_gather = None                                 # one process with both ranks' queries and videos
    q0, q1 = inputs([per_rank[0]], [0]), inputs([per_rank[1]], [2])
    full = MomentRetrievalInputs(batch=concat_videos(per_rank, pad_id=p.tokens.pad),
                                 query_ids=torch.cat([q0.query_ids, q1.query_ids]),
                                 query_mask=torch.cat([q0.query_mask, q1.query_mask]),
                                 query_video=torch.cat([q0.query_video, q1.query_video + 2]),
                                 start=torch.full((6,), -1), end=torch.full((6,), -1), use_local=False, hard=False)
    ref = task(full)
    ref.loss.backward()
    torch.testing.assert_close(gathered.loss, ref.loss, rtol=1e-5, atol=1e-6)
    for n, q in task.named_parameters():
        if q.grad is not None:
            torch.testing.assert_close(grads[n], q.grad, rtol=1e-4, atol=1e-6, msg=n)
    dist.destroy_process_group()
    sys.stdout.write(f"MR_GATHER_OK {r} {float(gathered.loss)}\\n")  # one write per rank (a shared pipe)
""")


def test_tvr_finetuning_negatives_gathered_across_ranks_match_one_big_batch(tmp_path):
    """gather_across_ranks in moment retrieval: 2 ranks x 2 videos score like one process with all 4 videos, and
    the gradients DDP averages are that process's."""
    script = tmp_path / "mr_gather_check.py"
    script.write_text(MR_GATHER_SCRIPT)
    out = torchrun([str(script)], tmp_path)
    assert "MR_GATHER_OK 0" in out.stdout and "MR_GATHER_OK 1" in out.stdout
