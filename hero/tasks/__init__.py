"""Pretraining objectives (MLM, MFM-NCE, MFFR, FOM, VSM), the per-step task sampler, and the downstream
tasks with their `TASKS` registry (name -> Task class)."""

from hero.tasks.base import Objective, TaskOutput
from hero.tasks.config import OBJECTIVE_NAMES, PretrainConfig, VsmConfig
from hero.tasks.downstream import DownstreamTask
from hero.tasks.mix import TaskSampler
from hero.tasks.moment_retrieval import MomentRetrievalTask
from hero.tasks.pretrain import PretrainModel

TASKS: dict[str, type[DownstreamTask]] = {
    MomentRetrievalTask.name: MomentRetrievalTask,
}
"""Downstream task families by name; every class has ``from_pretrained`` and a ``config_cls``."""

__all__ = ["OBJECTIVE_NAMES", "TASKS", "DownstreamTask", "MomentRetrievalTask", "Objective", "PretrainConfig",
           "PretrainModel", "TaskOutput", "TaskSampler", "VsmConfig"]
