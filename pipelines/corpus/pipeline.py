from kedro.pipeline import Pipeline, node

from pipelines.corpus.nodes import build_manifest, prepare_corpus


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline([
        node(prepare_corpus, inputs="params:corpus", outputs="corpus_info", name="prepare_corpus", tags=["corpus"]),
        node(build_manifest, inputs=["corpus_info", "params:corpus"], outputs="manifest_info", name="build_manifest",
             tags=["corpus"]),
    ])
