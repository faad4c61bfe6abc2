"""Pipelines, registered explicitly: `find_pipelines()` would look in `pipelines.pipelines.*`.

Each pipeline includes its upstream stages, so `kedro run --pipelines=pretrain` on a fresh clone builds the
missing corpus and features first; cached stages cost next to nothing (their nodes find their artifacts by
content address). Nodes carry their stage as a tag: `kedro run --pipelines=pretrain --tags=pretrain` runs
that stage alone (what the DVC stages do).
"""

from __future__ import annotations

from kedro.pipeline import Pipeline


def register_pipelines() -> dict[str, Pipeline]:
    from pipelines.corpus.pipeline import create_pipeline as corpus
    from pipelines.features.pipeline import create_pipeline as features
    from pipelines.evaluate.pipeline import create_pipeline as evaluate
    from pipelines.finetune.pipeline import create_pipeline as finetune
    from pipelines.pretrain.pipeline import create_pipeline as pretrain

    stages = {"corpus": corpus(), "features": features(), "pretrain": pretrain(), "finetune": finetune(),
              "evaluate": evaluate()}
    pipes: dict[str, Pipeline] = {}
    acc = Pipeline([])
    for name, stage in stages.items():
        acc = acc + stage
        pipes[name] = acc
    from pipelines.baselines.pipeline import create_pipeline as baselines

    # The reference baselines need only the manifest; with the evaluate stage they run in the same `kedro run`
    # (before its summary, which lists them beside the models: the node needs nothing the training makes).
    pipes["baselines"] = stages["corpus"] + baselines()
    pipes["evaluate"] = pipes["evaluate"] + baselines()
    acc = pipes["evaluate"]
    pipes["__default__"] = acc
    from pipelines.ablation.pipeline import create_pipeline as ablation, create_table_pipeline

    upstream = stages["corpus"] + stages["features"]
    pipes["ablation"] = upstream + ablation()
    pipes["ablation_table"] = create_table_pipeline()
    from pipelines.sweep.pipeline import create_pipeline as sweep

    pipes["sweep"] = upstream + sweep()
    from pipelines.data_ablation import pipeline as data_ablation

    pipes["data_ablation"] = upstream + data_ablation.create_pipeline()
    pipes["channel_ablation"] = upstream + stages["pretrain"] + data_ablation.create_channel_pipeline()
    pipes["data_ablation_table"] = data_ablation.create_table_pipeline()
    return pipes
