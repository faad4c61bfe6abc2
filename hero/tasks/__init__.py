"""Pretraining objectives (MLM, MFM-NCE, MFFR, FOM, VSM), the per-step task sampler, and the downstream
tasks with their `TASKS` registry (name -> Task class)."""

from hero.tasks.base import Objective, TaskOutput
from hero.tasks.captioning import CaptioningTask
from hero.tasks.config import OBJECTIVE_NAMES, PretrainConfig, VsmConfig
from hero.tasks.downstream import DownstreamTask
from hero.tasks.mix import TaskSampler
from hero.tasks.moment_retrieval import MomentRetrievalTask
from hero.tasks.pretrain import PretrainModel
from hero.tasks.text_video_retrieval import TextVideoRetrievalTask
from hero.tasks.video_inference import ViolinTask
from hero.tasks.video_qa import VideoQaTask

TASKS: dict[str, type[DownstreamTask]] = {
    MomentRetrievalTask.name: MomentRetrievalTask,
    VideoQaTask.name: VideoQaTask,
    ViolinTask.name: ViolinTask,
    TextVideoRetrievalTask.name: TextVideoRetrievalTask,
    CaptioningTask.name: CaptioningTask,
}
"""Downstream task families by name; every class has ``from_pretrained`` and a ``config_cls``."""

TASK_OF_DATASET: dict[str, str] = {
    "tvr": "moment_retrieval", "how2r": "moment_retrieval", "didemo": "moment_retrieval",
    "tvqa": "video_qa", "how2qa": "video_qa", "violin": "violin", "msrvtt": "text_video_retrieval", "retrieval": "text_video_retrieval",
    "tvc": "captioning",
}
"""HERO's dataset names -> task family (docs/hero-fidelity.md c)."""

__all__ = ["OBJECTIVE_NAMES", "TASKS", "TASK_OF_DATASET", "CaptioningTask", "DownstreamTask", "MomentRetrievalTask",
           "Objective", "PretrainConfig", "PretrainModel", "TaskOutput", "TaskSampler", "TextVideoRetrievalTask",
           "VideoQaTask", "ViolinTask", "VsmConfig"]
