"""conf/local is read last under a named environment too (pipelines/config_loader.py)."""

import pytest

from pipelines.config_loader import LocalLastConfigLoader


def _conf(tmp_path, local: dict[str, str]):
    files = {
        "base/parameters_launch.yml": "launch: {nproc_per_node: 1, nnodes: 1}\n",
        "base/parameters_corpus.yml": "corpus: {path: synthetic, reader: {clip_len: 1.5}}\n",
        "base/parameters_text.yml": "text: {tokenizer: null}\n",
        "base/globals.yml": "model: {preset: hero-mini}\n",
        "exp/parameters_corpus.yml": "corpus: {path: /data/tv}\n",
        "exp/globals.yml": "model: {preset: hero-base}\n",
        **{f"local/{k}": v for k, v in local.items()},
    }
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    return str(tmp_path)


def load(conf, env, key="parameters", runtime_params=None):
    return LocalLastConfigLoader(conf, env=env, base_env="base", default_run_env="local", runtime_params=runtime_params)[key]


def test_local_is_read_after_a_named_environment(tmp_path):
    conf = _conf(tmp_path, {"parameters_launch.yml": "launch: {nproc_per_node: 8, nnodes: 2}\n",
                            "parameters_text.yml": "text: {tokenizer: /models/roberta}\n",
                            "globals.yml": "cluster: {nodes: 2}\n", "README.md": "not config\n"})
    p = load(conf, "exp")
    assert p["launch"] == {"nproc_per_node": 8, "nnodes": 2}            # local replaces the key whole
    assert p["corpus"] == {"path": "/data/tv"}                           # the environment's, untouched by local
    assert p["text"] == {"tokenizer": "/models/roberta"}
    assert load(conf, "exp", "globals") == {"model": {"preset": "hero-base"}, "cluster": {"nodes": 2}}
    # --params: merged into the keys as Kedro merges them, and never make local replace a key it does not define
    p = load(conf, "exp", runtime_params={"corpus": {"features": "/data/feats"}, "launch": {"nnodes": 4}})
    assert p["corpus"] == {"path": "/data/tv", "features": "/data/feats"}
    assert p["launch"] == {"nproc_per_node": 8, "nnodes": 4}
    # no --env: Kedro's own base + local, unchanged
    assert load(conf, None)["corpus"] == {"path": "synthetic", "reader": {"clip_len": 1.5}}
    assert load(conf, None)["launch"]["nproc_per_node"] == 8


@pytest.mark.parametrize("local", [{}, {"README.md": "# only a readme\n"}])
def test_an_empty_local_changes_nothing(tmp_path, local):
    conf = _conf(tmp_path, local)
    if not local:
        (tmp_path / "local").mkdir(exist_ok=True)
    p = load(conf, "exp")
    assert p["launch"] == {"nproc_per_node": 1, "nnodes": 1} and p["corpus"] == {"path": "/data/tv"}


def test_the_project_uses_it():
    from pipelines import settings

    assert settings.CONFIG_LOADER_CLASS is LocalLastConfigLoader
