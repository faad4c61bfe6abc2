import os

import pytest
import torch

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")


def pytest_report_header(config):
    """Which CPU kernels the numerical tests ran on (`make test` runs them on several families)."""
    try:
        flags = next(ln for ln in open("/proc/cpuinfo") if ln.startswith("flags")).split()
    except (OSError, StopIteration):
        flags = []
    simd = sorted(f for f in flags if f.startswith("avx512") or f in ("avx2", "amx_bf16"))
    chosen = {k: os.environ[k] for k in ("ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS", "ONEDNN_MAX_CPU_ISA")
              if k in os.environ}
    return [f"cpu: {' '.join(simd) or 'no avx2'}; torch kernels: {torch.backends.cpu.get_cpu_capability()}"
            + (f" ({', '.join(f'{k}={v}' for k, v in chosen.items())})" if chosen else " (the CPU's best)")]


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """One intra-op thread: the models under test are tiny, and on a shared 2-core machine OpenMP's spinning
    threads make runs several times slower. Subprocesses (torchrun jobs) set their own."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(autouse=True)
def _deterministic_torch():
    torch.manual_seed(0)
    yield


@pytest.fixture
def tiny():
    """The hero-tiny preset (d=32, 1 + 1 layers, 16-d features, vocab 128)."""
    from hero.presets import get_preset

    return get_preset("hero-tiny")


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(1234)
