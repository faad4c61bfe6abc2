import os

import pytest
import torch

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")


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
