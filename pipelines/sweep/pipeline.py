from kedro.pipeline import Pipeline, node

from pipelines.sweep.nodes import sweep


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline([
        node(sweep, inputs=["params:sweep", "params:pretrain", "params:finetune", "params:evaluate", "params:launch",
                            "manifest_info", "features_info", "params:corpus", "params:features"],
             outputs=["sweep_summary", "sweep_best"], name="sweep", tags=["sweep"]),
    ])
