"""Pretraining objectives (MLM, MFM-NCE, MFFR, FOM, VSM) and the per-step task sampler."""

from hero.tasks.base import Objective, TaskOutput
from hero.tasks.config import OBJECTIVE_NAMES, PretrainConfig, VsmConfig
from hero.tasks.mix import TaskSampler
from hero.tasks.pretrain import PretrainModel

__all__ = ["OBJECTIVE_NAMES", "Objective", "PretrainConfig", "PretrainModel", "TaskOutput", "TaskSampler", "VsmConfig"]
