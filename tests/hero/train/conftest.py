import pytest

from hero.train.config import RunConfig


@pytest.fixture
def tiny_cfg(tmp_path) -> RunConfig:
    """hero-tiny on random videos: 4 videos per step in 2 micro-batches, 6 steps, every step logged."""
    return RunConfig.from_dict({
        "preset": "hero-tiny",
        "data": {"source": "random", "size": 64, "frames": [4, 8], "sub_len": [3, 6]},
        "optim": {"lr": 1e-3, "warmup_steps": 2, "decay": "linear"},
        "train": {"global_batch": 4, "micro_batch": 2, "max_steps": 6, "log_every": 1, "seed": 3,
                  "run_dir": str(tmp_path / "run")},
    })


