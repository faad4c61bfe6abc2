from functools import partial, update_wrapper

from kedro.pipeline import Pipeline, node, pipeline

from hero.tasks import TASKS
from pipelines.finetune.nodes import finetune_task


def default_datasets() -> tuple[str, ...]:
    """One dataset per registered task (its first: tvr, tvqa, violin, tvc, retrieval): the namespaces the finetune
    and evaluate pipelines build (``finetune.datasets`` picks which of them run)."""
    return tuple(next(iter(task.datasets)) for task in TASKS.values())


DATASETS = default_datasets()
"""The built-in tasks' datasets, as registered when this module was imported."""


def create_pipeline(datasets=None, **kwargs) -> Pipeline:
    """One namespace per downstream dataset: ``tvr.finetune_info``, ``tvqa.finetune_info`` …"""
    pipes = []
    for ds in datasets or default_datasets():
        fn = update_wrapper(partial(finetune_task, dataset=ds), finetune_task)
        pipes.append(pipeline(
            [node(fn, inputs=["params:finetune", "params:launch", "manifest_info", "features_info", "pretrain_info",
                              "params:text"],
                  outputs="finetune_info", name="finetune", tags=["finetune"])],
            namespace=ds,
            inputs={"manifest_info", "features_info", "pretrain_info"},
            parameters={"params:finetune", "params:launch", "params:text"},
        ))
    return sum(pipes, Pipeline([]))
