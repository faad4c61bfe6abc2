"""The training engine: `RunConfig`, `run(cfg)`, `main(argv)` (``torchrun -m hero.train``) and its parts."""

from hero.train.checkpoint import ArchitectureMismatch
from hero.train.config import DataConfig, OptimConfig, RunConfig, TrainConfig, batch_layout, load_run_config
from hero.train.main import main, run
from hero.train.sinks import JsonlSink, MetricSink
from hero.train.trainer import Trainer

__all__ = ["ArchitectureMismatch", "DataConfig", "JsonlSink", "MetricSink", "OptimConfig", "RunConfig", "TrainConfig",
           "Trainer", "batch_layout", "load_run_config", "main", "run"]
