"""Pretraining objectives (MLM, MFM-NCE, MFFR, FOM, VSM), the per-step task sampler, and the downstream task
families, each registered once in `hero.tasks.registry` (``TASKS``: family name -> task class)."""

from hero.tasks.base import Objective, TaskOutput
from hero.tasks.captioning import CaptioningTask
from hero.tasks.config import OBJECTIVE_NAMES, PretrainConfig, RankingLossConfig, SpanLossConfig, VsmConfig
from hero.tasks.downstream import DownstreamTask
from hero.tasks.mix import TaskSampler
from hero.tasks.moment_retrieval import MomentRetrievalTask
from hero.tasks.prediction import PredictContext, PredictOptions, Written
from hero.tasks.pretrain import PretrainModel
from hero.tasks.registry import TASKS, datasets, headlines, register_task, task_of_dataset
from hero.tasks.text_video_retrieval import TextVideoRetrievalTask
from hero.tasks.video_inference import ViolinTask
from hero.tasks.video_qa import VideoQaTask

__all__ = ["OBJECTIVE_NAMES", "TASKS", "CaptioningTask", "DownstreamTask", "MomentRetrievalTask", "Objective",
           "PredictContext", "PredictOptions", "PretrainConfig", "PretrainModel", "RankingLossConfig",
           "SpanLossConfig", "TaskOutput", "TaskSampler", "TextVideoRetrievalTask", "VideoQaTask", "ViolinTask",
           "VsmConfig", "Written", "datasets", "headlines", "register_task", "task_of_dataset"]
