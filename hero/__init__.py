"""hero: a re-implementation of HERO (hierarchical video+language encoder) in plain PyTorch.

This package never imports an orchestration tool (kedro, mlflow, optuna, dvc): it runs alone under torchrun.
"""

__version__ = "0.1.0"

from hero.config import ConfigError
from hero.data.batch import VideoBatch
from hero.model import Hero, HeroOutput, ModelConfig
from hero.presets import PRESETS, Preset, get_preset
from hero.tasks import PretrainConfig, PretrainModel, TaskSampler

__all__ = [
    "PRESETS", "ConfigError", "Hero", "HeroOutput", "ModelConfig", "Preset", "PretrainConfig", "PretrainModel",
    "TaskSampler", "VideoBatch", "get_preset",
]
