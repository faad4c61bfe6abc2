from kedro.pipeline import Pipeline, node

from pipelines.baselines.nodes import compute_baselines


def create_pipeline(**kwargs) -> Pipeline:
    """Chance and text-only baselines of every task; needs the corpus manifest only (no features, no training)."""
    return Pipeline([node(compute_baselines, inputs=["manifest_info", "params:baselines", "params:evaluate", "params:finetune"],
                          outputs="baselines_info", name="baselines", tags=["baselines"])])
