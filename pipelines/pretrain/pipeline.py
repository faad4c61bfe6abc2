from kedro.pipeline import Pipeline, node

from pipelines.pretrain.nodes import plot_pretrain_loss, pretrain


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline([
        node(pretrain, inputs=["params:pretrain", "params:launch", "manifest_info", "features_info", "sweep_best",
                               "params:text"],
             outputs="pretrain_info", name="pretrain", tags=["pretrain"]),
        node(plot_pretrain_loss, inputs="pretrain_info", outputs="pretrain_loss_plot", name="plot_pretrain_loss",
             tags=["pretrain"]),
    ])
