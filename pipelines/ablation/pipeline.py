from kedro.pipeline import Pipeline, node

from pipelines.ablation.nodes import ablation_table, run_ablation


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline([
        node(run_ablation, inputs=["params:ablation_variant", "params:ablation", "params:pretrain", "params:finetune", "params:evaluate",
                                   "params:launch", "params:features", "manifest_info", "features_info"],
             outputs="ablation_result", name="run_ablation", tags=["ablation"]),
    ])


def create_table_pipeline(**kwargs) -> Pipeline:
    return Pipeline([node(ablation_table, inputs=["params:ablation", "params:evaluate"], outputs="ablation_table",
                          name="ablation_table", tags=["ablation_table"])])
