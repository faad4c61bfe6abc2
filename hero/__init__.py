"""hero: a re-implementation of HERO (hierarchical video+language encoder) in plain PyTorch.

This package never imports an orchestration tool (kedro, mlflow, optuna, dvc): it runs alone under torchrun.

The public names below (``from hero import PretrainModel``) are loaded on first use: Python runs this file
before any ``hero.<module>``, and loading the model and tasks here would make ``import hero.config`` load the
top layers too (docs/architecture.md#layers).
"""

from typing import Any

__version__ = "0.1.0"

__all__ = [
    "PRESETS", "ConfigError", "Hero", "HeroOutput", "ModelConfig", "Preset", "PretrainConfig", "PretrainModel",
    "TaskSampler", "VideoBatch", "get_preset",
]


def _public() -> dict[str, Any]:
    from hero.config import ConfigError
    from hero.data.batch import VideoBatch
    from hero.model import Hero, HeroOutput, ModelConfig
    from hero.presets import PRESETS, Preset, get_preset
    from hero.tasks import PretrainConfig, PretrainModel, TaskSampler

    return {"ConfigError": ConfigError, "VideoBatch": VideoBatch, "Hero": Hero, "HeroOutput": HeroOutput,
            "ModelConfig": ModelConfig, "PRESETS": PRESETS, "Preset": Preset, "get_preset": get_preset,
            "PretrainConfig": PretrainConfig, "PretrainModel": PretrainModel, "TaskSampler": TaskSampler}


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'hero' has no attribute {name!r}")
    globals().update(_public())
    return globals()[name]
