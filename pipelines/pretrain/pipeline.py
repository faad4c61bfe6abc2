from kedro.pipeline import Pipeline, node

from pipelines.pretrain.nodes import pretrain


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline([
        node(pretrain, inputs=["params:pretrain", "params:launch", "manifest_info", "features_info",
                                 "params:sweep_best", "params:text"],
             outputs="pretrain_info", name="pretrain", tags=["pretrain"]),
    ])
