from functools import partial, update_wrapper

from kedro.pipeline import Pipeline, node, pipeline

from pipelines.finetune.nodes import finetune_task

DATASETS = ("tvr", "tvqa", "violin", "tvc", "retrieval")


def create_pipeline(datasets=DATASETS, **kwargs) -> Pipeline:
    """One namespace per downstream dataset: ``tvr.finetune_info``, ``tvqa.finetune_info`` …"""
    pipes = []
    for ds in datasets:
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
