from functools import partial, update_wrapper

from kedro.pipeline import Pipeline, node, pipeline

from pipelines.evaluate.nodes import evaluate_task, summarize
from pipelines.finetune.pipeline import DATASETS


def create_pipeline(datasets=DATASETS, **kwargs) -> Pipeline:
    pipes = []
    for ds in datasets:
        fn = update_wrapper(partial(evaluate_task, dataset=ds), evaluate_task)
        pipes.append(pipeline(
            [node(fn, inputs=["finetune_info", "params:evaluate", "manifest_info", "features_info"],
                  outputs="eval_metrics", name="evaluate", tags=["evaluate"])],
            namespace=ds, inputs={"manifest_info", "features_info"}, parameters={"params:evaluate"},
        ))
    pipes.append(Pipeline([node(summarize, inputs={"evaluate": "params:evaluate",
                                                   **{f"{ds}_metrics": f"{ds}.eval_metrics" for ds in datasets}},
                                outputs={"results_table": "results_table", "metrics": "metrics",
                                         "headline_metrics": "headline_metrics", "headline": "headline"},
                                name="summarize", tags=["evaluate"])]))
    return sum(pipes, Pipeline([]))
