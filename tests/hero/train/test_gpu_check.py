"""scripts/gpu_check.sh: run small on a CUDA device (gpu marker); without one it says so in one line."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU message")
def test_without_cuda_it_says_so():
    r = subprocess.run([sys.executable, str(ROOT / "scripts/gpu_check.py"), "--small"], check=False, capture_output=True,
                       text=True)
    assert r.returncode != 0 and "no CUDA device" in r.stderr


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpu_check_small(tmp_path):
    out = tmp_path / "gpu.json"
    subprocess.run(["bash", str(ROOT / "scripts/gpu_check.sh"), "--small", "--out", str(out)], check=True,
                   env={**__import__("os").environ, "PYTHON": sys.executable}, timeout=480)
    res = json.loads(out.read_text())
    assert res["gemm_tflops"]["bf16"] > 0
    assert res["train_eager"]["ms_per_step"] > 0 and 0 < res["train_eager"]["mfu"] < 1
    assert res["train_eager"]["fused_adamw"] and res["train_eager"]["sdpa"]["math"] == "ok"
    assert "error" not in res["launcher_nccl_1proc"], res["launcher_nccl_1proc"]
    assert res["features"]["cnn_clips_per_s"] > 0
