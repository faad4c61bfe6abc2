"""The encoder's appended-text extension (video QA / VIOLIN): padding invariance, gradients, no-op default."""

import pytest
import torch

from hero.config import to_dict
from hero.data.batch import VideoBatch
from hero.data.task_collate import select_videos
from hero.data.random_batch import random_video_batch
from hero.model import Hero
from hero.model.config import original_compat
from hero.presets import get_preset


def _single(b: VideoBatch, v: int) -> VideoBatch:
    """Video ``v`` of a batch on its own, trimmed to its own lengths (no padding beyond itself)."""
    return select_videos(b, torch.tensor([v])).trimmed()


def _extra(p, B, g):
    lens = torch.randint(2, 7, (B,), generator=g)
    L = int(lens.max()) + 2                                  # extra right padding on every row
    ids = torch.randint(p.tokens.random_low, p.tokens.random_high, (B, L), generator=g)
    mask = torch.arange(L)[None] < lens[:, None]
    return ids.masked_fill(~mask, p.tokens.pad), mask


@pytest.mark.parametrize("encoder,compat", [("hierarchical", "native"), ("hierarchical", "original"), ("flat", "native")])
def test_appended_text_keeps_padding_invariance(encoder, compat):
    p = get_preset("hero-tiny", encoder=encoder)
    if compat == "original":
        p = get_preset("hero-tiny", **original_compat(to_dict(p.model)))
    g = torch.Generator().manual_seed(11)
    b = random_video_batch(p.model, p.tokens, num_videos=3, frames=(3, 12), generator=g)
    ids, mask = _extra(p, 3, g)
    model = Hero(p.model).eval()
    with torch.no_grad():
        full = model(b, extra_text=(ids, mask))
        assert full.extra_states.shape == (*ids.shape, p.model.hidden_size)
        for v in range(3):
            lx = int(mask[v].sum())
            alone = model(_single(b, v), extra_text=(ids[v:v + 1, :lx], mask[v:v + 1, :lx]))
            n = int(b.frame_mask[v].sum())
            torch.testing.assert_close(full.frame_states[v, :n], alone.frame_states[0], atol=2e-5, rtol=1e-4)
            torch.testing.assert_close(full.extra_states[v, :lx], alone.extra_states[0], atol=2e-5, rtol=1e-4)


@pytest.mark.parametrize("encoder", ["hierarchical", "flat"])
def test_appended_text_changes_frames_and_gets_gradients(encoder):
    p = get_preset("hero-tiny", encoder=encoder, dropout=0.0, attention_dropout=0.0)
    g = torch.Generator().manual_seed(3)
    b = random_video_batch(p.model, p.tokens, num_videos=2, generator=g)
    ids, mask = _extra(p, 2, g)
    model = Hero(p.model)
    plain = model(b)
    assert plain.extra_states is None
    out = model(b, extra_text=(ids, mask))
    assert not torch.allclose(plain.frame_states, out.frame_states)
    # A random projection of the states: their plain sum has a true gradient of 0 (each state leaves a LayerNorm with
    # unit weight and zero bias, so it sums to a constant) and would test float rounding, not the graph.
    proj = torch.randn(p.model.hidden_size, generator=g)
    (out.extra_states[mask] @ proj).sum().backward()
    grad = model.text_embed.word.weight.grad
    used = torch.zeros(grad.shape[0], dtype=torch.bool)
    used[b.sub_ids.flatten()] = True
    used[ids.flatten()] = True
    assert grad[ids[mask].unique()].abs().sum(-1).gt(0).all()  # every appended word gets a gradient
    assert not grad[~used].any()  # rows no input touched stay exactly zero
