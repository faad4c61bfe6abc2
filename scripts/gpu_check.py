"""The GPU check (run by scripts/gpu_check.sh): what this project reaches on one CUDA device, in minutes, offline.

    python scripts/gpu_check.py [--small] [--steps N] [--out data/08_reporting/gpu_check.json]

Measured in this run: the best bf16 (and tf32) GEMM on the device (the MFU denominator); hero-base pretraining
steps in bf16 autocast through the real `Trainer` (SDPA, fused AdamW, pinned-memory loader), with torch.compile
off and on: ms/step, samples/s, FLOPs per step (counted on a step), MFU, peak memory, and which SDPA kernels the
model's attention can use; a 1-process NCCL job started through the project's launcher (`pipelines.launch`);
the feature extractor's CNN throughput (clips/s). Prints one table and writes the JSON (temp file, then rename).
``--small`` (the gpu-marked tests): hero-tiny, few steps, no compile.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def gemm_tflops(dtype: torch.dtype, n: int = 8192, repeats: int = 20) -> float:
    """Best [n, n] @ [n, n] on the device, TFLOP/s (CUDA events)."""
    a, b = torch.randn(n, n, device="cuda", dtype=dtype), torch.randn(n, n, device="cuda", dtype=dtype)
    for _ in range(3):
        a @ b
    best = float("inf")
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        a @ b
        end.record()
        torch.cuda.synchronize()
        best = min(best, start.elapsed_time(end) / 1e3)
    return 2 * n ** 3 / best / 1e12


def run_config(preset: str, videos: int, steps: int, compile_: bool, run_dir: str):
    from hero.train.config import RunConfig

    return RunConfig.from_dict({
        "preset": preset, "data": {"source": "random", "size": 4096, "frames": [55, 65], "num_workers": 2},
        "optim": {"lr": 1e-4, "warmup_steps": 2, "fused": True},
        "train": {"global_batch": videos, "max_steps": steps, "precision": "bf16", "device": "cuda",
                  "compile": compile_, "log_every": 1000, "sinks": [], "run_dir": run_dir},
    })


def sdpa_kernels(trainer) -> dict:
    """Which SDPA backends accept the model's attention call (a [B, h, L, hd] bf16 problem with a boolean key
    mask, as the encoder issues it)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    m = trainer.preset.model
    q = torch.randn(8, m.num_heads, 64, m.head_dim, device="cuda", dtype=torch.bfloat16)
    mask = torch.ones(8, 1, 1, 64, dtype=torch.bool, device="cuda")
    out = {}
    for name, backend in (("flash", SDPBackend.FLASH_ATTENTION), ("efficient", SDPBackend.EFFICIENT_ATTENTION),
                          ("cudnn", SDPBackend.CUDNN_ATTENTION), ("math", SDPBackend.MATH)):
        try:
            with sdpa_kernel([backend]):
                torch.nn.functional.scaled_dot_product_attention(q, q, q, attn_mask=mask)
            out[name] = "ok"
        except RuntimeError as err:
            out[name] = f"no: {str(err).splitlines()[0][:80]}"
    return out


def step_flops(trainer, batch) -> float:
    from hero.data.batch import tensors_to
    from hero.model.transformer import Attention

    attn = [m for m in trainer.model.modules() if isinstance(m, Attention)]
    for m in attn:
        m.impl = "eager"
    try:
        task = trainer.tasks.task_at(trainer.step)
        inputs = trainer.model.prepare(task, batch, torch.Generator().manual_seed(0), trainer.step)
        inputs = tensors_to(inputs, trainer.device)
        with FlopCounterMode(display=False) as fc:
            with trainer.autocast():
                out = trainer.model(task, inputs)
            out.loss.backward()
        trainer.optimizer.zero_grad(set_to_none=True)
        return float(fc.get_total_flops())
    finally:
        for m in attn:
            m.impl = "sdpa"


def train_steps(preset: str, videos: int, steps: int, warmup: int, compile_: bool, peak_tflops: float) -> dict:
    from hero.train.distributed import DistInfo
    from hero.train.trainer import Trainer

    torch.cuda.reset_peak_memory_stats()
    with tempfile.TemporaryDirectory(prefix="hero-gpu-") as tmp:
        tr = Trainer(run_config(preset, videos, warmup + steps + 1, compile_, f"{tmp}/run"), DistInfo(device=torch.device("cuda")), sinks=[])
        it = tr._loader()
        t0 = time.perf_counter()
        for _ in range(warmup):
            tr.train_step([next(it)])
        torch.cuda.synchronize()
        warm_s = time.perf_counter() - t0
        batches, wait = [], 0.0
        t0 = time.perf_counter()
        for _ in range(steps):
            w = time.perf_counter()
            b = next(it)
            wait += time.perf_counter() - w
            batches.append(b)
            tr.train_step([b])
        torch.cuda.synchronize()
        dt = (time.perf_counter() - t0) / steps
        flops = step_flops(tr, batches[-1]) if not compile_ else None
        out = {"warmup_s": warm_s, "ms_per_step": 1e3 * dt, "samples_per_s": videos / dt, "data_wait_frac": wait / (dt * steps),
               "peak_mem_gib": torch.cuda.max_memory_allocated() / 2 ** 30,
               "fused_adamw": bool(tr.optimizer.defaults.get("fused")), "pin_memory": tr.device.type == "cuda"}
        if flops:
            out["tflop_per_step"] = flops / 1e12
            out["mfu"] = flops / dt / (peak_tflops * 1e12)
        if not compile_:
            out["sdpa"] = sdpa_kernels(tr)
        return out


def launcher_job(preset: str, steps: int) -> dict:
    """One process, NCCL process group, through pipelines.launch (the torchrun command the pipelines build)."""
    from pipelines.launch import launch_torchrun

    with tempfile.TemporaryDirectory(prefix="hero-gpu-ddp-") as tmp:
        cfg = run_config(preset, 8, steps, False, f"{tmp}/run").to_dict()
        cfg["train"].update(log_every=steps, sinks=["hero.train.sinks:JsonlSink"])
        t0 = time.perf_counter()
        launch_torchrun(cfg, f"{tmp}/run", {"nproc_per_node": 1})
        wall = time.perf_counter() - t0
        rows = [json.loads(line) for line in Path(tmp, "run", "metrics.jsonl").read_text().splitlines()]
        log = Path(tmp, "run", "launch.log").read_text()
        return {"wall_s": wall, "samples_per_s": rows[-1]["perf/samples_per_s"], "steps": rows[-1]["step"],
                "nccl": "nccl" in log.lower() or torch.distributed.is_nccl_available()}


def feature_throughput(batch: int, repeats: int) -> dict:
    """The extractor's CNN (EfficientNet-Lite0 feature map, bf16, channels-last) on random 192 px clips."""
    from hero.features.efficientnet import fuse_batchnorm, load_efficientnet_lite0

    model = fuse_batchnorm(load_efficientnet_lite0()).to("cuda", memory_format=torch.channels_last).eval()
    x = torch.randn(batch, 3, 192, 192, device="cuda").contiguous(memory_format=torch.channels_last)
    with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16):
        for _ in range(3):
            model.feature_map(x)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(repeats):
            model.feature_map(x)
        torch.cuda.synchronize()
    return {"cnn_clips_per_s": batch * repeats / (time.perf_counter() - t0), "batch": batch}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--small", action="store_true", help="hero-tiny, few steps, no compile (the gpu tests)")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--videos", type=int, default=32, help="videos per step at hero-base")
    ap.add_argument("--out", default=str(ROOT / "data/08_reporting/gpu_check.json"))
    args = ap.parse_args(argv)
    if not torch.cuda.is_available():
        raise SystemExit("gpu_check: no CUDA device visible (torch.cuda.is_available() is False)")
    preset, videos, steps = ("hero-tiny", 4, 3) if args.small else ("hero-base", args.videos, args.steps)
    res: dict = {"device": torch.cuda.get_device_name(), "capability": list(torch.cuda.get_device_capability()),
                 "torch": torch.__version__, "cuda": torch.version.cuda, "preset": preset, "videos_per_step": videos}
    res["gemm_tflops"] = {"bf16": gemm_tflops(torch.bfloat16, 2048 if args.small else 8192)}
    torch.backends.cuda.matmul.allow_tf32 = True
    res["gemm_tflops"]["tf32"] = gemm_tflops(torch.float32, 2048 if args.small else 8192)
    torch.backends.cuda.matmul.allow_tf32 = False
    peak = res["gemm_tflops"]["bf16"]
    res["train_eager"] = train_steps(preset, videos, steps, 2, False, peak)
    if not args.small:
        try:
            res["train_compiled"] = train_steps(preset, videos, steps, 3, True, peak)
            res["train_compiled"]["mfu"] = res["train_eager"].get("tflop_per_step", 0) * 1e12 / \
                (res["train_compiled"]["ms_per_step"] / 1e3) / (peak * 1e12)
        except Exception as err:  # compile problems are a finding, not the end of the check
            res["train_compiled"] = {"error": f"{type(err).__name__}: {str(err).splitlines()[0][:200]}"}
    try:
        res["launcher_nccl_1proc"] = launcher_job(preset, 4 if args.small else 10)
    except Exception as err:
        res["launcher_nccl_1proc"] = {"error": f"{type(err).__name__}: {str(err)[-300:]}"}
    res["features"] = feature_throughput(16 if args.small else 128, 3 if args.small else 20)
    print_table(res)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(res, indent=1))
    os.replace(tmp, out)
    print(f"wrote {out}")
    return res


def print_table(res: dict) -> None:
    rows = [("measure", "value")]
    rows += [(f"gemm {k} TFLOP/s", f"{v:.1f}") for k, v in res["gemm_tflops"].items()]
    for key in ("train_eager", "train_compiled"):
        r = res.get(key, {})
        for k in ("ms_per_step", "samples_per_s", "mfu", "peak_mem_gib", "warmup_s", "data_wait_frac", "error"):
            if k in r:
                rows.append((f"{key} {k}", f"{r[k]:.3f}" if isinstance(r[k], float) else str(r[k])))
    for k, v in res["train_eager"].get("sdpa", {}).items():
        rows.append((f"sdpa {k}", v))
    for k, v in res.get("launcher_nccl_1proc", {}).items():
        rows.append((f"launcher {k}", f"{v:.2f}" if isinstance(v, float) else str(v)))
    rows.append(("features CNN clips/s", f"{res['features']['cnn_clips_per_s']:.0f}"))
    w = max(len(r[0]) for r in rows)
    for name, value in rows:
        print(f"{name:<{w}}  {value}")


if __name__ == "__main__":
    main()
