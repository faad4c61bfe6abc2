from kedro.pipeline import Pipeline, node

from pipelines.features.nodes import extract_features


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline([
        node(extract_features, inputs=["manifest_info", "params:features"], outputs="features_info",
             name="extract_features", tags=["features"]),
    ])
