import os

import pytest
import torch

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")


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
