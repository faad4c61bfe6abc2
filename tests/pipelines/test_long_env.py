"""conf/long (`kedro run --env long`) changes the pretraining budget and nothing else."""

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _params(conf: Path, env: str) -> dict:
    from pipelines.settings import CONFIG_LOADER_ARGS, CONFIG_LOADER_CLASS

    return CONFIG_LOADER_CLASS(str(conf), env=env, **CONFIG_LOADER_ARGS)["parameters"]


def test_long_env_changes_only_the_pretraining_steps(tmp_path):
    conf = shutil.copytree(ROOT / "conf", tmp_path / "conf", ignore=shutil.ignore_patterns("local"))
    (conf / "local").mkdir()
    base, long = _params(conf, "local"), _params(conf, "long")
    assert long["pretrain"]["run"]["train"]["max_steps"] == 1000 > base["pretrain"]["run"]["train"]["max_steps"]
    long["pretrain"]["run"]["train"].update(max_steps=base["pretrain"]["run"]["train"]["max_steps"],
                                            ckpt_every=base["pretrain"]["run"]["train"]["ckpt_every"])
    assert long == base
