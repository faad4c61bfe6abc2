"""Sampler, collate, optimizer groups, schedule, all-reduce helpers (single process)."""

import math

import pytest
import torch

from hero.presets import get_preset
from hero.tasks import PretrainConfig, PretrainModel
from hero.train.config import OptimConfig, RunConfig, batch_layout
from hero.train.data import RandomVideoDataset, StepBatchSampler, concat_videos
from hero.train.optim import build_optimizer, lr_factor


def test_sampler_splits_the_same_global_batch_over_any_world_size():
    t = RunConfig().override("train.global_batch=4", "train.micro_batch=2").train
    one = StepBatchSampler(10, batch_layout(t, 1), rank=0, seed=1)
    two = [StepBatchSampler(10, batch_layout(t, 2), rank=r, seed=1) for r in range(2)]
    for step in range(7):  # crosses epoch boundaries
        assert one.micro_batches(step) == two[0].micro_batches(step) + two[1].micro_batches(step)
    epoch0 = sum((one.micro_batches(s)[a] for s in range(2) for a in range(2)), []) + one.micro_batches(2)[0][:2]
    assert sorted(epoch0) == list(range(10))  # an epoch is a permutation
    resumed = StepBatchSampler(10, batch_layout(t, 1), rank=0, seed=1, start_step=3, max_steps=5)
    assert list(resumed) == one.micro_batches(3) + one.micro_batches(4)
    with pytest.raises(ValueError, match="sampler seed"):
        resumed.load_state_dict({**one.state_dict(), "seed": 2}, 3)


def test_random_dataset_is_deterministic_and_collates():
    p = get_preset("hero-tiny")
    ds = RandomVideoDataset(p, size=8, seed=5, frames=(3, 9))
    a, b = ds[3], ds[3]
    assert torch.equal(a.frame_feats, b.frame_feats) and torch.equal(a.sub_ids, b.sub_ids)
    items = [ds[i] for i in range(4)]
    batch = concat_videos(items, pad_id=p.tokens.pad)
    assert batch.num_videos == 4 and batch.num_subs == sum(x.num_subs for x in items)
    assert batch.num_frames == max(x.num_frames for x in items)
    assert batch.sub_video.tolist() == sum(([i] * x.num_subs for i, x in enumerate(items)), [])
    assert int(batch.frame_mask.sum()) == sum(int(x.frame_mask.sum()) for x in items)


def test_param_groups_and_head_multipliers():
    p = get_preset("hero-tiny")
    model = PretrainModel(p.model, PretrainConfig(), p.tokens)
    opt = build_optimizer(model, OptimConfig(lr=1e-3, weight_decay=0.1, head_lr_mult={"vsm": 10.0}))
    groups = {g["group"]: g for g in opt.param_groups}
    no_decay = set(groups["encoder/no_decay"]["names"])
    assert "encoder.cross.layers.0.attn.qkv.bias" in no_decay
    assert "encoder.cross.layers.0.attn_norm.weight" in no_decay
    assert "encoder.cross.layers.0.attn.qkv.weight" in groups["encoder/decay"]["names"]
    assert groups["encoder/decay"]["weight_decay"] == 0.1 and groups["encoder/no_decay"]["weight_decay"] == 0.0
    assert groups["vsm/decay"]["lr"] == pytest.approx(1e-2) and groups["mlm/decay"]["lr"] == pytest.approx(1e-3)
    n = sum(len(g["params"]) for g in opt.param_groups)
    assert n == len(list(model.parameters()))
    with pytest.raises(ValueError, match="unknown head"):
        build_optimizer(model, OptimConfig(head_lr_mult={"vsn": 2.0}))


def test_lr_mult_by_parameter_prefix_longest_wins_and_a_typo_is_an_error():
    p = get_preset("hero-tiny")
    model = PretrainModel(p.model, PretrainConfig(), p.tokens)
    cfg = OptimConfig(lr=1e-3, head_lr_mult={"vsm": 10.0},
                      lr_mult={"encoder.cross": 0.1, "encoder.cross.layers.0.mlp": 0.5, "heads.vsm": 3.0})
    groups = {g["group"]: g for g in build_optimizer(model, cfg).param_groups}
    assert "encoder.cross.layers.0.attn.qkv.weight" in groups["encoder.cross/decay"]["names"]
    assert groups["encoder.cross/decay"]["lr"] == pytest.approx(1e-4)
    assert "encoder.cross.layers.0.mlp.fc1.weight" in groups["encoder.cross.layers.0.mlp/decay"]["names"]
    assert groups["encoder.cross.layers.0.mlp/decay"]["lr"] == pytest.approx(5e-4)
    assert groups["heads.vsm/decay"]["lr"] == pytest.approx(3e-3)             # the prefix replaces head_lr_mult
    assert "encoder.temporal.layers.0.attn.qkv.weight" in groups["encoder/decay"]["names"]
    assert groups["encoder/decay"]["lr"] == pytest.approx(1e-3)
    assert sum(len(g["params"]) for g in groups.values()) == len(list(model.parameters()))
    with pytest.raises(ValueError, match="no parameter is named by"):
        build_optimizer(model, OptimConfig(lr_mult={"encoder.crosss": 0.1}))
    with pytest.raises(ValueError, match="no parameter is named by"):
        build_optimizer(model, OptimConfig(lr_mult={"encoder.cro": 0.1}))       # a dot boundary, not a substring


def test_schedule_warmup_then_decay():
    lin = OptimConfig(warmup_steps=4, decay="linear")
    assert [lr_factor(s, lin, 12) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert lr_factor(8, lin, 12) == pytest.approx(0.5) and lr_factor(12, lin, 12) == 0.0
    cos = OptimConfig(warmup_steps=0, decay="cosine", min_lr_ratio=0.1)
    assert lr_factor(0, cos, 10) == 1.0 and lr_factor(5, cos, 10) == pytest.approx(0.55)
    assert math.isclose(lr_factor(10, cos, 10), 0.1)


@pytest.mark.parametrize("fused", [True, False])
def test_an_optimizer_step_refreshes_the_models_low_precision_copies(fused):
    """The bf16 copies of the weights (`cast_param`, the tied decoder's) are refreshed when a parameter's version
    counter moves; torch's fused AdamW does not move it, so `build_optimizer` does (a step post-hook)."""
    from hero.model.linear import cast_param

    p = get_preset("hero-tiny")
    model = PretrainModel(p.model, PretrainConfig(), p.tokens)
    opt = build_optimizer(model, OptimConfig(lr=1e-2, fused=fused))
    lin = model.encoder.cross.layers[0].mlp.fc1
    word = model.encoder.text_embed.word
    before = cast_param(lin.weight, torch.bfloat16).clone(), cast_param(word.weight, torch.bfloat16).clone()
    for q in model.parameters():
        q.grad = torch.ones_like(q)
    opt.step()
    for copy, param in zip((cast_param(lin.weight, torch.bfloat16), cast_param(word.weight, torch.bfloat16)),
                           (lin.weight, word.weight)):
        assert torch.equal(copy, param.detach().to(torch.bfloat16))
    assert not torch.equal(cast_param(lin.weight, torch.bfloat16), before[0])
    assert not torch.equal(cast_param(word.weight, torch.bfloat16), before[1])
    qkv = model.encoder.cross.layers[0].attn.qkv.weight        # a view of a parameter: the same view of its copy
    assert torch.equal(cast_param(qkv[8:], torch.bfloat16), qkv[8:].detach().to(torch.bfloat16))
