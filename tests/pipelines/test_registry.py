from pipelines.pipeline_registry import register_pipelines


def test_pipelines_are_registered_with_their_upstream():
    pipes = register_pipelines()
    assert set(pipes) == {"corpus", "features", "pretrain", "finetune", "evaluate", "ablation", "ablation_table", "sweep",
                          "data_ablation", "channel_ablation", "data_ablation_table", "__default__"}
    names = lambda p: {n.name for n in p.nodes}  # noqa: E731
    assert names(pipes["pretrain"]) == {"prepare_corpus", "build_manifest", "extract_features", "pretrain"}
    assert names(pipes["corpus"]) < names(pipes["features"]) < names(pipes["pretrain"]) < names(pipes["__default__"])
    for ds in ("tvr", "tvqa", "violin", "tvc", "retrieval"):
        assert f"{ds}.finetune" in names(pipes["finetune"]) and f"{ds}.evaluate" in names(pipes["evaluate"])
    assert "summarize" in names(pipes["__default__"])


def test_every_node_is_tagged_with_its_stage():
    pipes = register_pipelines()
    for stage in ("corpus", "features", "pretrain", "finetune", "evaluate"):
        only = pipes["__default__"].only_nodes_with_tags(stage)
        assert only.nodes, stage
        assert all(stage in n.tags for n in only.nodes)
