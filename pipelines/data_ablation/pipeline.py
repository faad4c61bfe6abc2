from kedro.pipeline import Pipeline, node

from pipelines.data_ablation.nodes import (
    build_corpora,
    data_ablation_table,
    domain_baselines,
    run_channel_ablation,
    run_data_ablation,
)


def create_pipeline(**kwargs) -> Pipeline:
    """The domain ablation: the corpora (tag ``data_ablation_corpora``), then one variant (tag ``data_ablation``)."""
    return Pipeline([
        node(build_corpora, inputs=["params:data_ablation", "params:corpus", "params:features", "manifest_info",
                                    "features_info"],
             outputs="data_ablation_corpora", name="build_data_ablation_corpora", tags=["data_ablation_corpora"]),
        node(run_data_ablation, inputs=["params:data_ablation_variant", "params:data_ablation", "params:pretrain",
                                        "params:finetune", "params:evaluate", "params:launch", "data_ablation_corpora"],
             outputs="data_ablation_result", name="run_data_ablation", tags=["data_ablation"]),
    ])


def create_channel_pipeline(**kwargs) -> Pipeline:
    return Pipeline([
        node(run_channel_ablation, inputs=["params:channel_ablation_variant", "params:channel_ablation", "params:finetune",
                                           "params:evaluate", "params:launch", "manifest_info", "features_info",
                                           "pretrain_info"],
             outputs="channel_ablation_result", name="run_channel_ablation", tags=["channel_ablation"]),
    ])


def create_table_pipeline(**kwargs) -> Pipeline:
    """Each domain's reference baselines (no training), then docs/results_data.md."""
    return Pipeline([
        node(domain_baselines, inputs=["data_ablation_corpora", "params:data_ablation", "params:baselines",
                                       "params:evaluate", "params:finetune"],
             outputs="data_ablation_baselines", name="data_ablation_baselines", tags=["data_ablation_table"]),
        node(data_ablation_table, inputs=["params:data_ablation", "params:channel_ablation", "data_ablation_baselines"],
             outputs="data_ablation_table", name="data_ablation_table", tags=["data_ablation_table"]),
    ])
