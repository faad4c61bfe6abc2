"""The Kedro project of hero-platform: pipelines that chain corpus → features → pretrain → finetune →
evaluate, launching `torchrun -m hero.train` jobs and tracking them in MLflow."""

__version__ = "0.1.0"
