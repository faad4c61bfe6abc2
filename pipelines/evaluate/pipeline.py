from functools import partial, update_wrapper

from kedro.pipeline import Pipeline, node, pipeline

from pipelines.evaluate.nodes import evaluate_with_examples, summarize
from pipelines.finetune.pipeline import default_datasets


def create_pipeline(datasets=None, **kwargs) -> Pipeline:
    datasets = datasets or default_datasets()
    pipes = []
    for ds in datasets:
        fn = update_wrapper(partial(evaluate_with_examples, dataset=ds, references=True), evaluate_with_examples)
        pipes.append(pipeline(
            [node(fn, inputs=["finetune_info", "params:evaluate", "manifest_info", "features_info"],
                  outputs={"metrics": "eval_metrics", "examples": "eval_examples"}, name="evaluate",
                  tags=["evaluate"])],
            namespace=ds, inputs={"manifest_info", "features_info"}, parameters={"params:evaluate"},
            # the summary reads them from outside the namespace: plain names (Kedro reserves dots for namespaces)
            outputs={"eval_metrics": f"{ds}_eval_metrics", "eval_examples": f"{ds}_eval_examples"},
        ))
    pipes.append(Pipeline([node(summarize, inputs={"evaluate": "params:evaluate",
                                                   **{f"{ds}_metrics": f"{ds}_eval_metrics" for ds in datasets},
                                                   **{f"{ds}_examples": f"{ds}_eval_examples" for ds in datasets}},
                                outputs={"results_table": "results_table", "metrics": "metrics",
                                         "headline_metrics": "headline_metrics", "headline": "headline"},
                                name="summarize", tags=["evaluate"])]))
    return sum(pipes, Pipeline([]))
