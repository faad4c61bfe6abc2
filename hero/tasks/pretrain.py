"""`PretrainModel`: the encoder, every pretraining head, and the objectives that use them.

This is the module DDP wraps and checkpoints save. MFM-NCE and MFFR share one feature-regression head,
as in HERO. ``forward(objective, inputs)`` runs one objective; the trainer picks which (see `TaskSampler`).
The decoder objective (``dec``, beyond HERO) and its head ``heads.dec`` exist only when the mix gives it a
ratio > 0, so a checkpoint holds a caption decoder only when one was trained (TVC finetuning reads that).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from hero.data.batch import VideoBatch
from hero.model.config import ModelConfig
from hero.model.hero import Hero, init_weights
from hero.tasks.base import Objective, TaskOutput
from hero.tasks.config import PretrainConfig
from hero.tasks.dec import Dec
from hero.tasks.fom import Fom
from hero.tasks.mfm import Mffr, MfmNce
from hero.tasks.mlm import Mlm
from hero.tasks.vsm import Vsm
from hero.text.tokenizer import SpecialTokens


class PretrainModel(nn.Module):
    def __init__(
        self,
        model_cfg: ModelConfig,
        pretrain_cfg: PretrainConfig,
        tokens: SpecialTokens,
        all_gather: Callable[[Tensor], Tensor] | None = None,
    ) -> None:
        super().__init__()
        self.model_cfg, self.pretrain_cfg, self.tokens = model_cfg, pretrain_cfg, tokens
        self.encoder = Hero(model_cfg)
        self.objectives: dict[str, Objective] = {
            "mlm": Mlm(pretrain_cfg, tokens),
            "mfm_nce": MfmNce(pretrain_cfg),
            "mffr": Mffr(pretrain_cfg),
            "fom": Fom(pretrain_cfg),
            "vsm": Vsm(pretrain_cfg, tokens, all_gather=all_gather if pretrain_cfg.vsm.gather_across_ranks else None),
        }
        if pretrain_cfg.tasks.get("dec", 0) > 0:
            self.objectives["dec"] = Dec(pretrain_cfg, tokens)
        heads: dict[str, nn.Module] = {}
        for objective in self.objectives.values():  # each head once (MFM-NCE and MFFR share one), in this order
            if objective.head not in heads:
                heads[objective.head] = objective.head_cls(model_cfg)
        self.heads = nn.ModuleDict(heads)
        self.heads.apply(lambda m: init_weights(m, model_cfg.init_std))

    @classmethod
    def from_preset(cls, preset, pretrain_cfg: PretrainConfig | None = None, **kwargs) -> "PretrainModel":
        """A model for ``preset`` (a `hero.presets.Preset`), its text side initialised as the preset says."""
        from hero.model.pretrained import init_text_side

        model = cls(preset.model, pretrain_cfg or PretrainConfig(), preset.tokens, **kwargs)
        init_text_side(model.encoder, preset.text_init)
        return model

    def prepare(self, objective: str, batch: VideoBatch, generator: torch.Generator, step: int) -> Any:
        """The inputs of ``objective`` for ``batch`` (masking/shuffling/query sampling, seeded by ``generator``)."""
        return self.objectives[objective].prepare(batch, generator, step)

    def forward(self, objective: str, inputs: Any) -> TaskOutput:
        obj = self.objectives[objective]
        return obj(self.encoder, self.heads[obj.head], inputs)
