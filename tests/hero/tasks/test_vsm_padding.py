"""The start/end convolutions of VSM / moment retrieval see no padding: a video's span logits are the same however
far its batch is padded and whatever the padded frames hold (``compat: original`` keeps the released model's leak)."""

import torch

from hero.model.config import ModelConfig, original_compat
from hero.config import to_dict
from hero.presets import get_preset
from hero.tasks.vsm import VsmHead


def _logits(cfg: ModelConfig, pad: int, garbage: float):
    torch.manual_seed(0)
    head = VsmHead(cfg)
    g = torch.Generator().manual_seed(1)
    q = torch.randn(2, cfg.hidden_size, generator=g)
    frames = torch.randn(2, 6, cfg.hidden_size, generator=g)
    mask = torch.tensor([[True] * 6, [True] * 4 + [False] * 2])
    frames = torch.cat([frames, garbage * torch.randn(2, pad, cfg.hidden_size, generator=g)], 1)
    mask = torch.cat([mask, torch.zeros(2, pad, dtype=torch.bool)], 1)
    frames[1, 4:] = garbage * torch.randn(frames.shape[1] - 4, cfg.hidden_size, generator=g)
    with torch.no_grad():
        st, ed = head.span_logits(q, frames, mask)
    return st[:, :6], ed[:, :6], mask[:, :6]


def test_span_logits_do_not_depend_on_padding():
    cfg = get_preset("hero-tiny").model
    st0, ed0, m = _logits(cfg, pad=0, garbage=0.0)
    st1, ed1, _ = _logits(cfg, pad=5, garbage=3.0)
    torch.testing.assert_close(st1[m], st0[m], rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(ed1[m], ed0[m], rtol=1e-6, atol=1e-6)


def test_compat_original_convolves_the_padding_as_the_release_does():
    cfg = ModelConfig(**original_compat(to_dict(get_preset("hero-tiny").model)))
    st0, _, m = _logits(cfg, pad=0, garbage=0.0)
    st1, _, _ = _logits(cfg, pad=5, garbage=3.0)
    assert (st1[1, 2:4] - st0[1, 2:4]).abs().max() > 1e-3  # the last real frames see the padded ones
