import pytest

from pipelines.pipeline_registry import register_pipelines


def test_pipelines_are_registered_with_their_upstream():
    pipes = register_pipelines()
    assert set(pipes) == {"corpus", "features", "pretrain", "finetune", "evaluate", "baselines", "ablation",
                          "ablation_table", "sweep", "data_ablation", "channel_ablation", "data_ablation_table",
                          "__default__"}
    names = lambda p: {n.name for n in p.nodes}  # noqa: E731
    assert names(pipes["pretrain"]) == {"prepare_corpus", "build_manifest", "extract_features", "pretrain",
                                        "plot_pretrain_loss"}
    assert names(pipes["corpus"]) < names(pipes["features"]) < names(pipes["pretrain"]) < names(pipes["__default__"])
    for ds in ("tvr", "tvqa", "violin", "tvc", "retrieval"):
        assert f"{ds}.finetune" in names(pipes["finetune"]) and f"{ds}.evaluate" in names(pipes["evaluate"])
    assert "summarize" in names(pipes["__default__"])
    # the baselines need the manifest only, and run before the summary that lists them
    assert names(pipes["baselines"]) == {"prepare_corpus", "build_manifest", "baselines"}
    order = [n.name for n in pipes["__default__"].nodes]
    assert order.index("baselines") < order.index("summarize")


def test_every_node_is_tagged_with_its_stage():
    pipes = register_pipelines()
    for stage in ("corpus", "features", "pretrain", "finetune", "baselines", "evaluate"):
        only = pipes["__default__"].only_nodes_with_tags(stage)
        assert only.nodes, stage
        assert all(stage in n.tags for n in only.nodes)


@pytest.mark.slow
def test_kedro_viz_builds_the_graph_of_every_pipeline(project):
    """`kedro viz build` (the static form of `kedro viz run`) renders each registered pipeline's nodes."""
    import json
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "HERO_PROJECT_ROOT"}
    out = subprocess.run([sys.executable, "-m", "kedro", "viz", "build"], cwd=project, env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    graph = json.loads((project / "build/api/main").read_text())
    assert {p["id"] for p in graph["pipelines"]} == set(register_pipelines())
    tasks = {n["name"] for n in graph["nodes"] if n["type"] == "task"}
    assert {"prepare_corpus", "extract_features", "pretrain", "summarize"} <= tasks
    default = json.loads((project / "build/api/pipelines/__default__").read_text())
    assert len([n for n in default["nodes"] if n["type"] == "task"]) == len(register_pipelines()["__default__"].nodes)
