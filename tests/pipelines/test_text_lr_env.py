"""conf/text_lr (`kedro run --env text_lr`) lowers the text side's pretraining learning rate and changes nothing else."""

from hero.presets import get_preset
from hero.tasks.config import PretrainConfig
from hero.tasks.pretrain import PretrainModel
from hero.train.config import OptimConfig
from hero.train.optim import build_optimizer


def test_text_lr_env_changes_only_the_text_sides_pretraining_rate(conf_params):
    base, text_lr = conf_params("local"), conf_params("text_lr")
    optim = text_lr["pretrain"]["run"]["optim"]
    lr_mult = dict(optim.pop("lr_mult"))
    assert lr_mult == {"encoder.text_embed": 0.1, "encoder.cross": 0.1}
    assert text_lr == base
    p = get_preset("hero-tiny")   # the prefixes name parameters of the pretraining model (a typo would be an error)
    groups = {g["group"]: g for g in build_optimizer(PretrainModel(p.model, PretrainConfig(), p.tokens),
                                                     OptimConfig(lr=1e-4, lr_mult=lr_mult)).param_groups}
    assert groups["encoder.cross/decay"]["lr"] == groups["encoder.text_embed/decay"]["lr"] == 1e-5
    assert groups["encoder/decay"]["lr"] == 1e-4
