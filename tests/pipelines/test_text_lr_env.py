"""conf/text_lr (`kedro run --env text_lr`) lowers the text side's pretraining learning rate and changes nothing else."""

import shutil
from pathlib import Path

from hero.presets import get_preset
from hero.tasks.config import PretrainConfig
from hero.tasks.pretrain import PretrainModel
from hero.train.config import OptimConfig
from hero.train.optim import build_optimizer

ROOT = Path(__file__).resolve().parents[2]


def _params(conf: Path, env: str) -> dict:
    from pipelines.settings import CONFIG_LOADER_ARGS, CONFIG_LOADER_CLASS

    return CONFIG_LOADER_CLASS(str(conf), env=env, **CONFIG_LOADER_ARGS)["parameters"]


def test_text_lr_env_changes_only_the_text_sides_pretraining_rate(tmp_path):
    conf = shutil.copytree(ROOT / "conf", tmp_path / "conf", ignore=shutil.ignore_patterns("local"))
    (conf / "local").mkdir()
    base, text_lr = _params(conf, "local"), _params(conf, "text_lr")
    optim = text_lr["pretrain"]["run"]["optim"]
    lr_mult = dict(optim.pop("lr_mult"))
    assert lr_mult == {"encoder.text_embed": 0.1, "encoder.cross": 0.1}
    assert text_lr == base
    p = get_preset("hero-tiny")   # the prefixes name parameters of the pretraining model (a typo would be an error)
    groups = {g["group"]: g for g in build_optimizer(PretrainModel(p.model, PretrainConfig(), p.tokens),
                                                     OptimConfig(lr=1e-4, lr_mult=lr_mult)).param_groups}
    assert groups["encoder.cross/decay"]["lr"] == groups["encoder.text_embed/decay"]["lr"] == 1e-5
    assert groups["encoder/decay"]["lr"] == 1e-4
