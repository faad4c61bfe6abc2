"""Training-step benchmark (the ``train`` section of ``make bench``)::

    python -m hero.train.bench [--quick] [--steps N] [--threads 1,2] [--precisions fp32,bf16] [--out FILE]

Every number comes from this run on this machine; nothing is divided by a figure measured elsewhere.

* GEMM peak: the best dense 2048 x 2048 matmul, GFLOP/s, per dtype and thread count (the MFU denominator).
* The HERO pretraining mix at hero-small (hidden 256, 4 heads, 2 + 2 layers, 4352-d features; 4 videos of 55-65
  clips per step; MLM : MFM-NCE : FOM : VSM = 2 : 2 : 1 : 2) through the real `Trainer`, for each precision and
  thread count: two trainers built alike, one on the default path, one on the reference path
  (`Trainer.use_reference_path`: the implementation the speed targets were set
  against — cross-modal level padded, attention through SDPA, torch's dropout, MFM-NCE negatives scored in
  feature space, dense word-embedding gradient, full-width tied decoder,
  torch's cross-entropy, argmax accuracy, torch's clip_grad_norm_, autograd's LayerNorm and Linear on the clip
  features, bf16 products at the batch's own row counts),
  each with its own optimizer, stepping in turn on the same batches (who goes first alternates). Per path:
  ms/step (wall and CPU), samples/s, GFLOP per step (counted with torch.utils.flop_counter on the same steps;
  the default path executes fewer) and MFU; and ``ratio``: default / reference summed step time, overall and
  per objective. CPU time is the steadier figure on a shared machine; both are reported.
* The cross-modal level alone (forward + backward on the batches' own inputs) in four layouts: padded, packed
  (the default: per-position work on valid positions only), one packed row per video with a block-diagonal
  mask, and nested (jagged) tensors with SDPA; with the largest output difference against the padded one.
* Subnormal flushing: the reference path with and without, one thread, interleaved.
* Where the CPU runs bf16 natively: a bf16 linear at its own row count against the row count bucketed as the default
  path does (`hero.model.linear`), one thread, interleaved, a new row count each call.
* ``--compile``: torch.compile of the default path against the eager default path.
* ``--ranks``: 1 process x 2 threads against 2 processes x 1 thread (torchrun), same global batch.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from hero.model.transformer import Attention, Encoder
from hero.storage.atomic import write_json_atomic
from hero.train.config import RunConfig
from hero.train.distributed import DistInfo
from hero.train.precision import cpu_flags, cpu_has_fast_bf16, flush_denormals
from hero.train.trainer import Trainer

PATHS = ("default", "reference")


def matmul_gflops(dtype: torch.dtype, n: int = 2048, seconds: float = 1.0) -> float:
    """Best dense [n, n] @ [n, n] throughput in GFLOP/s on the current thread setting (n shrinks to 512
    when the dtype has no fast kernel here, so a slow path is measured in seconds, not minutes)."""
    a, b = torch.randn(512, 512).to(dtype), torch.randn(512, 512).to(dtype)
    t0 = time.perf_counter()
    a @ b
    if time.perf_counter() - t0 < 0.02:
        a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
        a @ b
    m = a.shape[0]
    best, t_end = float("inf"), time.perf_counter() + seconds
    while time.perf_counter() < t_end:
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * m**3 / best / 1e9


def bench_config(preset: str, precision: str, *, videos: int = 4, frames: tuple[int, int] = (55, 65),
                 attention: str = "sdpa", steps: int = 10, run_dir: str = "", compile: bool = False) -> RunConfig:
    """The benchmark job: ``videos`` per step of ~60 clips, the HERO 2:2:1:2 mix, dropout on."""
    return RunConfig.from_dict({
        "preset": preset, "model": {"attention_impl": attention},
        "data": {"source": "random", "size": 4096, "frames": list(frames)},
        "optim": {"lr": 1e-4, "warmup_steps": 2},
        "train": {"global_batch": videos, "max_steps": max(steps, 1), "precision": precision, "log_every": 1000,
                  "sinks": [], "compile": compile,
                  "run_dir": run_dir or f"{tempfile.gettempdir()}/hero-bench-{os.getpid()}-unused"},
    })


def _trainer(cfg: RunConfig, reference: bool) -> Trainer:
    return Trainer(cfg, DistInfo(), sinks=[]).use_reference_path(reference)


def _timed_step(tr: Trainer, batch) -> tuple[float, float]:
    w0, c0 = time.perf_counter(), time.process_time()
    tr.train_step([batch])
    return time.perf_counter() - w0, time.process_time() - c0


def interleaved(trainers: dict, batches: list, warmup: int, batch_for=None) -> dict:
    """Step every trainer in turn on each batch (the order rotates); per trainer the wall and CPU seconds of
    the steps after ``warmup``, and the objective of each step (the same for all: same seed, same step).
    ``batch_for(name, batch)``: the batch trainer ``name`` steps on (default: the batch itself)."""
    names = list(trainers)
    times = {n: {"wall": [], "cpu": []} for n in names}
    tasks = []
    for i, batch in enumerate(batches):
        task = trainers[names[0]].tasks.task_at(trainers[names[0]].step)
        order = names[i % len(names):] + names[:i % len(names)]
        for n in order:
            wall, cpu = _timed_step(trainers[n], batch if batch_for is None else batch_for(n, batch))
            if i >= warmup:
                times[n]["wall"].append(wall)
                times[n]["cpu"].append(cpu)
        if i >= warmup:
            tasks.append(task)
    return {"times": times, "tasks": tasks}


def step_flops(tr: Trainer, batches: list, start_step: int) -> float:
    """Mean forward + backward FLOPs over ``batches`` as steps ``start_step``... of ``tr``'s task stream.
    Attention is switched to its eager form while counting so that its matmuls are counted (the fused CPU
    kernel is not); the optimizer does not run."""
    attn = [m for m in tr.model.modules() if isinstance(m, Attention)]
    impls = [m.impl for m in attn]
    for m in attn:
        m.impl = "eager"
    total = 0
    try:
        for k, batch in enumerate(batches):
            step = start_step + k
            task = tr.tasks.task_at(step)
            inputs = tr.model.prepare(task, batch, torch.Generator().manual_seed(step), step)
            with FlopCounterMode(display=False) as fc:
                with tr.autocast():
                    out = tr.model(task, inputs)
                out.loss.backward()
            total += fc.get_total_flops()
            tr.optimizer.zero_grad(set_to_none=True)
    finally:
        for m, impl in zip(attn, impls):
            m.impl = impl
    return total / max(len(batches), 1)


def _summary(t: dict, tasks: list[str], videos: int) -> dict:
    n = len(t["wall"])
    out = {"ms_per_step": 1e3 * sum(t["wall"]) / n, "ms_per_step_median": 1e3 * statistics.median(t["wall"]),
           "cpu_ms_per_step": 1e3 * sum(t["cpu"]) / n, "samples_per_s": videos * n / sum(t["wall"])}
    for task in sorted(set(tasks)):
        out[f"{task}_ms"] = 1e3 * statistics.median([w for w, k in zip(t["wall"], tasks) if k == task])
    return out


def compare_paths(preset: str, precision: str, threads: int, batches: list, warmup: int, flops: dict, peak: float) -> dict:
    """Default against reference path, interleaved, at ``precision`` on ``threads`` threads."""
    torch.set_num_threads(threads)
    cfg = bench_config(preset, precision, steps=len(batches) + 1)
    trainers = {p: _trainer(cfg, reference=(p == "reference")) for p in PATHS}
    run = interleaved(trainers, batches, warmup)
    times, tasks = run["times"], run["tasks"]
    out: dict = {}
    for p in PATHS:
        s = _summary(times[p], tasks, cfg.train.global_batch)
        s["gflop_per_step"] = flops[p] / 1e9
        s["mfu"] = flops[p] / (s["ms_per_step"] / 1e3) / (peak * 1e9)
        out[p] = s
    ratio = {"wall": sum(times["default"]["wall"]) / sum(times["reference"]["wall"]),
             "cpu": sum(times["default"]["cpu"]) / sum(times["reference"]["cpu"]),
             # each step's pair ran back to back: the median of their ratios shrugs off other jobs' bursts
             "median_step": statistics.median(d / r for d, r in zip(times["default"]["cpu"], times["reference"]["cpu"]))}
    for task in sorted(set(tasks)):
        pick = [i for i, k in enumerate(tasks) if k == task]
        ratio[task] = sum(times["default"]["cpu"][i] for i in pick) / sum(times["reference"]["cpu"][i] for i in pick)
    out["ratio"] = ratio
    out["steps"] = len(tasks)
    return out


def denormal_effect(batches: list, warmup: int, preset: str = "hero-small") -> dict:
    """The reference path, one thread, each step run with subnormals flushed and not (alternating order).
    One thread only: the flag is per thread, and a worker thread keeps the mode it started with."""
    torch.set_num_threads(1)
    cfg = bench_config(preset, "fp32", steps=len(batches) + 1)
    trainers = {"flushed": _trainer(cfg, True), "subnormal": _trainer(cfg, True)}
    times: dict = {n: [] for n in trainers}
    try:
        for i, batch in enumerate(batches):
            for n in (("flushed", "subnormal") if i % 2 else ("subnormal", "flushed")):
                torch.set_flush_denormal(n == "flushed")
                _, cpu = _timed_step(trainers[n], batch)
                if i >= warmup:
                    times[n].append(cpu)
    finally:
        torch.set_flush_denormal(True)
    return {"flushed_cpu_ms": 1e3 * statistics.mean(times["flushed"]),
            "subnormal_cpu_ms": 1e3 * statistics.mean(times["subnormal"]),
            "ratio": sum(times["flushed"]) / sum(times["subnormal"])}


def row_bucket_effect(calls: int = 40, seed: int = 0) -> dict:
    """One thread, bf16 autocast: a [M, 256] x [256, 1024] linear (a feed-forward layer of hero-small) with a new
    row count M (700..960) on each call, computed at M rows and at `hero.model.linear.bucket` rows, alternating.
    oneDNN builds a kernel per new shape; the bucketed form meets 8 sizes per power of two."""
    import random

    from hero.model.linear import linear
    torch.set_num_threads(1)
    rng = random.Random(seed)
    weight, bias = torch.randn(1024, 256), torch.randn(1024)
    times: dict = {"own_rows": [], "bucketed": []}
    for i in range(calls):
        x = torch.randn(rng.randint(700, 960), 256)
        for name in (("own_rows", "bucketed") if i % 2 else ("bucketed", "own_rows")):
            with torch.autocast("cpu", dtype=torch.bfloat16):
                t0 = time.perf_counter()
                linear(x, weight, bias, buckets=name == "bucketed")
                dt = time.perf_counter() - t0
            if i >= calls // 4:
                times[name].append(dt)
    out = {f"{n}_ms": 1e3 * statistics.mean(t) for n, t in times.items()}
    out["ratio"] = out["bucketed_ms"] / out["own_rows_ms"]
    return out


# ---------------------------------------------------------------------------------- cross-modal layouts
def capture_cross_inputs(batches: list, n: int, preset: str = "hero-small") -> tuple[Encoder, list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]]:
    """(the cross-modal encoder of a fresh ``preset`` model, [(x [S, L, D], valid [S, L], sub_video [S])] of the
    first ``n`` batches as the MFM-NCE objective feeds it)."""
    tr = _trainer(bench_config(preset, "fp32"), reference=True)
    enc, seen = tr.model.encoder, []
    hook = enc.cross.register_forward_pre_hook(lambda m, args: seen.append((args[0].detach(), args[1])))
    try:
        with torch.no_grad():
            for k, batch in enumerate(batches[:n]):
                inputs = tr.model.prepare("mfm_nce", batch, torch.Generator().manual_seed(k), k)
                enc(inputs.batch, frame_masked=inputs.masked)
    finally:
        hook.remove()
    return enc.cross.eval(), [(x, v, b.sub_video) for (x, v), b in zip(seen, batches)]


def _block_diagonal(enc: Encoder, x, valid, sub_video):
    """One row per video: its subtitles' valid positions packed end to end; a position attends to its own
    subtitle's positions only (a [B, 1, Lv, Lv] mask)."""
    rows = sub_video[:, None].expand_as(valid)[valid]                          # video of each valid position
    seq = torch.arange(valid.shape[0])[:, None].expand_as(valid)[valid]        # subtitle of each valid position
    counts = torch.bincount(rows, minlength=int(sub_video.max()) + 1)
    col = torch.arange(rows.numel()) - (counts.cumsum(0) - counts)[rows]
    B, L = counts.numel(), int(counts.max())
    packed = x.new_zeros(B, L, x.shape[-1]).index_put((rows, col), x[valid])
    owner = torch.full((B, L), -1).index_put((rows, col), seq)
    mask = (owner[:, :, None] == owner[:, None, :]) & (owner[:, None, :] >= 0)
    mask = mask | torch.eye(L, dtype=torch.bool)                                # padded queries: no empty rows
    h = packed
    for layer in enc.layers:
        h = layer(h, mask[:, None])
    out = x.new_zeros(x.shape)
    out[valid] = h[rows, col]
    return out


def _nested(enc: Encoder, x, valid):
    """Nested (jagged) tensors: one ragged sequence per subtitle through the same weights."""
    nt = torch.nested.nested_tensor([x[i, valid[i]] for i in range(x.shape[0])], layout=torch.jagged)
    for layer in enc.layers:
        a = layer.attn
        q, k, v = a.qkv(nt).chunk(3, dim=-1)
        heads = [t.unflatten(-1, (a.num_heads, -1)).transpose(1, 2) for t in (q, k, v)]
        y = torch.nn.functional.scaled_dot_product_attention(*heads).transpose(1, 2).flatten(-2)
        h = layer.attn_norm(nt + a.out(y))
        nt = layer.mlp_norm(h + layer.mlp(h))
    out = x.new_zeros(x.shape)
    out[valid] = torch.cat(nt.unbind())
    return out


def cross_modal_layouts(batches: list, repeats: int = 3, preset: str = "hero-small") -> dict:
    """Forward + backward of the cross-modal level alone, 1 thread, fp32, in each layout; median ms per batch
    and the largest absolute output difference against the padded layout."""
    torch.set_num_threads(1)
    enc, inputs = capture_cross_inputs(batches, repeats, preset)
    layouts = {
        "padded": lambda x, v, sv: enc(x, v, packed=False),
        "packed": lambda x, v, sv: enc(x, v, packed=True),
        "block_diagonal": lambda x, v, sv: _block_diagonal(enc, x, v, sv),
        "nested": lambda x, v, sv: _nested(enc, x, v),
    }
    out: dict = {}
    for name, fn in layouts.items():
        ms, diff = [], 0.0
        try:
            for x, v, sv in inputs:
                x = x.clone().requires_grad_(True)
                t0 = time.process_time()
                y = fn(x, v, sv)
                (y[v].square().sum()).backward()
                ms.append(1e3 * (time.process_time() - t0))
                with torch.no_grad():
                    diff = max(diff, float((y - enc(x, v, packed=False))[v].abs().max()))
            out[name] = {"ms": statistics.median(ms), "max_abs_diff_vs_padded": diff}
        except Exception as err:  # a layout torch cannot run here (e.g. nested SDPA backward) is reported, not fatal
            out[name] = {"error": f"{type(err).__name__}: {str(err).splitlines()[0][:160]}"}
    x, v, _ = inputs[0]
    out["valid_fraction"] = float(v.float().mean())
    return out


# ---------------------------------------------------------------------------------- torch.compile, ranks
def compile_effect(batches: list, warmup: int, preset: str = "hero-small") -> dict:
    """The default path with and without torch.compile, fp32, 1 thread, interleaved after ``warmup`` steps
    (which include the compilation, timed separately)."""
    torch.set_num_threads(1)
    trainers = {"eager": _trainer(bench_config(preset, "fp32", steps=len(batches) + 1), False),
                "compiled": _trainer(bench_config(preset, "fp32", steps=len(batches) + 1, compile=True), False)}
    t0 = time.perf_counter()
    try:
        for batch in batches[:warmup]:
            trainers["compiled"].train_step([batch])
    except Exception as err:
        return {"error": f"{type(err).__name__}: {str(err).splitlines()[0][:160]}"}
    first = time.perf_counter() - t0
    for batch in batches[:warmup]:
        trainers["eager"].train_step([batch])
    run = interleaved(trainers, batches[warmup:], 0)
    t = run["times"]
    return {"warmup_s": first, "eager_cpu_ms": 1e3 * statistics.mean(t["eager"]["cpu"]),
            "compiled_cpu_ms": 1e3 * statistics.mean(t["compiled"]["cpu"]),
            "ratio": sum(t["compiled"]["cpu"]) / sum(t["eager"]["cpu"])}


def ranks_compare(steps: int, warmup: int, preset: str = "hero-small") -> dict[str, dict[str, float]]:
    """Same job, same global batch (8 videos): 1 process x 2 threads vs torchrun 2 processes x 1 thread."""
    out = {}
    for name, nproc in (("1_rank", 1), ("2_ranks", 2)):
        with tempfile.TemporaryDirectory(prefix="hero-bench-") as tmp:
            cfg = bench_config(preset, "fp32", videos=8, steps=warmup + steps, run_dir=f"{tmp}/run")
            cfg = cfg.override(f"train.log_every={warmup}", "train.sinks=[hero.train.sinks:JsonlSink]")
            path = Path(tmp) / "run.yaml"
            path.write_text(cfg.to_yaml())
            launcher = ["-m", "hero.train"] if nproc == 1 else \
                ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "hero.train"]
            env = {**os.environ, "OMP_NUM_THREADS": str(2 // nproc)}
            t0 = time.perf_counter()
            subprocess.run([sys.executable, *launcher, "--config", str(path)], check=True, env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            wall = time.perf_counter() - t0
            rows = [json.loads(line) for line in (Path(tmp) / "run" / "metrics.jsonl").read_text().splitlines()]
            last = rows[-1]
            out[name] = {"samples_per_s": last["perf/samples_per_s"], "ms_per_step": 1e3 * last["perf/step_s"],
                         "data_wait_frac": last["perf/data_wait_frac"], "wall_s": wall}
    out["speedup_2_ranks"] = {"x": out["2_ranks"]["samples_per_s"] / out["1_rank"]["samples_per_s"]}
    return out


# ---------------------------------------------------------------------------------- driver
def machine() -> dict:
    flags = cpu_flags()
    wanted = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "avx512_fp16")
    return {"cpus": os.cpu_count(), "torch": torch.__version__, "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "flags": " ".join(f for f in wanted if f in flags), "fast_bf16": cpu_has_fast_bf16(flags),
            "load_avg_1min": os.getloadavg()[0]}


def main(argv: list[str] | None = None) -> dict:
    """Run every measurement, print a table, return (and optionally write) the numbers."""
    flush_denormals()  # as the Trainer does, before this process starts any CPU thread
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="4 timed steps, 1 thread, no layouts/compile/ranks")
    ap.add_argument("--preset", default="hero-small")
    ap.add_argument("--steps", type=int, default=14, help="timed steps per configuration (2 mix cycles by default)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--precisions", default="fp32,bf16")
    ap.add_argument("--compile", action="store_true", help="also time torch.compile (minutes of compilation)")
    ap.add_argument("--ranks", action="store_true", help="also 1 rank x 2 threads vs 2 ranks x 1 thread")
    ap.add_argument("--out", default=None)
    ap.add_argument("--mix-only", action="store_true", help=argparse.SUPPRESS)  # a child measuring one thread count
    args = ap.parse_args(argv)
    steps, warmup = (4, 1) if args.quick else (args.steps, args.warmup)
    thread_counts = [1] if args.quick else sorted({int(t) for t in args.threads.split(",")})
    precisions = [p for p in args.precisions.split(",") if p]
    threads0 = torch.get_num_threads()
    res: dict = {"machine": machine(), "preset": args.preset}
    try:
        loader = _trainer(bench_config(args.preset, "fp32", steps=steps + warmup + 1), False)._loader()
        batches = [next(loader) for _ in range(steps + warmup)]
        counters = {p: _trainer(bench_config(args.preset, "fp32"), reference=(p == "reference")) for p in PATHS}
        flops = {p: step_flops(tr, batches[warmup:], warmup) for p, tr in counters.items()}
        del counters
        for i, threads in enumerate(thread_counts):
            if i:  # each further thread count in a fresh process: threads OpenMP adds to a running pool were seen to
                # compute without the subnormal flushing this process set (a per-thread mode), ~6x slower
                res.update(_thread_count_in_child(args, threads))
                continue
            torch.set_num_threads(threads)
            peak = {"fp32": matmul_gflops(torch.float32), "bf16": matmul_gflops(torch.bfloat16)}
            res[f"gemm_gflops_{threads}t"] = peak
            for prec in precisions:
                if prec == "bf16" and not cpu_has_fast_bf16():
                    continue  # bf16 autocast without native kernels is a slow reference loop: nothing to learn
                res[f"mix_{prec}_{threads}t"] = compare_paths(args.preset, prec, threads, batches, warmup, flops, peak[prec])
        if not args.quick and not args.mix_only:
            res["denormals_1t"] = denormal_effect(batches, warmup, args.preset)
            res["cross_modal_layouts_1t"] = cross_modal_layouts(batches, preset=args.preset)
            if cpu_has_fast_bf16():
                res["bf16_row_buckets_1t"] = row_bucket_effect()
        if args.compile:
            res["compile_fp32_1t"] = compile_effect(batches, warmup, args.preset)
    finally:
        torch.set_num_threads(threads0)
    if args.ranks and not args.mix_only:
        res["ranks"] = ranks_compare(steps, warmup, args.preset)
    res["load_avg_1min_after"] = os.getloadavg()[0]
    print_table(res)
    if args.out:
        write_json_atomic(args.out, res, indent=1)
    return res


def _thread_count_in_child(args: argparse.Namespace, threads: int) -> dict:
    """The GEMM peak and the mix comparison at ``threads``, measured by ``python -m hero.train.bench`` in a new
    process (same preset, steps and precisions); its ``gemm_gflops_*`` and ``mix_*`` entries."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench.json"
        cmd = [sys.executable, "-m", "hero.train.bench", "--mix-only", "--threads", str(threads), "--preset", args.preset,
               "--steps", str(args.steps), "--warmup", str(args.warmup), "--precisions", args.precisions,
               "--out", str(out)]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        child = json.loads(out.read_text())
    return {k: v for k, v in child.items() if k.startswith(("gemm_gflops_", "mix_"))}


def print_table(res: dict) -> None:
    """The mix comparison as one table (ms are means over the timed steps)."""
    rows = [("config", "path", "ms/step", "cpu ms", "samples/s", "GFLOP", "MFU", "ratio (wall, cpu, median step)")]
    for key, r in res.items():
        if not key.startswith("mix_"):
            continue
        for p in PATHS:
            s = r[p]
            q = r["ratio"]
            ratio = f"{q['wall']:.3f}, {q['cpu']:.3f}, {q['median_step']:.3f}" if p == "default" else ""
            rows.append((key[4:], p, f"{s['ms_per_step']:.1f}", f"{s['cpu_ms_per_step']:.1f}", f"{s['samples_per_s']:.2f}",
                         f"{s['gflop_per_step']:.2f}", f"{s['mfu']:.3f}", ratio))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)))


if __name__ == "__main__":
    main()
