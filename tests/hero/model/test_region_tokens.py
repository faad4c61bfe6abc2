"""Region tokens (``model.regions``): the packed and the reference path agree, the Temporal Transformer still sees
one token per clip, a masked clip's regions are hidden, and the configurations that cannot have them refuse."""

import pytest
import torch

from hero.config import ConfigError
from hero.data.masking import mask_frames
from hero.data.random_batch import random_video_batch
from hero.model import Hero, use_reference_path
from hero.model.config import original_compat
from hero.presets import get_preset

TOL = {"atol": 2e-5, "rtol": 1e-4}


def _preset(**kw):
    return get_preset("hero-tiny", cross_layers=2, temporal_layers=2, regions=True, region_dim=24, **kw)


def _batch(p, seed=7, num_regions=3):
    return random_video_batch(p.model, p.tokens, num_videos=3, frames=(3, 14), num_regions=num_regions,
                              generator=torch.Generator().manual_seed(seed))


def test_packed_equals_reference_with_regions():
    p = _preset()
    b = _batch(p)
    model = Hero(p.model).eval()
    masked = mask_frames(b.frame_mask, prob=0.3, generator=torch.Generator().manual_seed(1))
    extra = (torch.randint(5, 100, (3, 4)), torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0], [1, 1, 1, 1]], dtype=torch.bool))
    read = b.sub_mask.clone()
    read[:, 0] = False
    outs = {}
    with torch.no_grad():
        for reference in (True, False):
            use_reference_path(model, reference)
            outs[reference] = (model(b, frame_masked=masked, text_states=True), model(b, extra_text=extra),
                               model.encode_subtitles(b, read=read))
    (ref, ref_x, ref_mlm), (out, out_x, mlm) = outs[True], outs[False]
    torch.testing.assert_close(out.frame_states, ref.frame_states, **TOL)
    torch.testing.assert_close(out.fused_frames, ref.fused_frames, **TOL)
    torch.testing.assert_close(out.text_states[b.sub_mask], ref.text_states[b.sub_mask], **TOL)
    torch.testing.assert_close(out_x.extra_states, ref_x.extra_states, **TOL)
    torch.testing.assert_close(mlm[read], ref_mlm[read], **TOL)
    assert out.frame_states.shape[:2] == b.frame_mask.shape           # the temporal level: one token per clip


def test_packed_gradients_equal_reference_with_regions():
    p = _preset(dropout=0.0, attention_dropout=0.0)
    b = _batch(p, seed=3)
    model = Hero(p.model)
    # a fixed random read-out: the sum of squares of LayerNorm outputs is nearly constant, its gradient float noise
    readout = torch.randn(p.model.hidden_size, generator=torch.Generator().manual_seed(0))
    grads = {}
    for reference in (True, False):
        use_reference_path(model, reference)
        model.zero_grad(set_to_none=True)
        (model(b).frame_states[b.frame_mask] @ readout).sum().backward()
        grads[reference] = {n: q.grad.to_dense().clone() for n, q in model.named_parameters() if q.grad is not None}
    assert any(n.startswith("region_embed.") for n in grads[False])    # the regions reach the loss
    for name in grads[True]:
        torch.testing.assert_close(grads[False][name], grads[True][name], atol=1e-5, rtol=1e-4, msg=name)


def test_regions_change_the_output():
    p = _preset()
    b = _batch(p)
    model = Hero(p.model).eval()
    with torch.no_grad():
        a = model(b).frame_states
        shifted = b.region_feats + torch.randn(b.region_feats.shape, generator=torch.Generator().manual_seed(4))
        c = model(b.replace(region_feats=shifted)).frame_states   # (a constant shift: LayerNorm would remove it)
        d = model(b.replace(region_boxes=b.region_boxes.flip(-1))).frame_states
    matched = (b.frame_owner() >= 0) & b.frame_mask
    assert not torch.allclose(a[matched], c[matched]) and not torch.allclose(a[matched], d[matched])


@pytest.mark.parametrize("reference", [False, True])
def test_masked_clip_regions_are_hidden(reference):
    """Whatever a masked clip's regions hold, the outputs are the same: they are zeroed and out of attention."""
    p = _preset()
    b = _batch(p, seed=11)
    model = use_reference_path(Hero(p.model).eval(), reference)
    masked = mask_frames(b.frame_mask, prob=0.4, generator=torch.Generator().manual_seed(5))
    noise = torch.randn(b.region_feats.shape, generator=torch.Generator().manual_seed(9)) * 5
    other = b.replace(region_feats=torch.where(masked[..., None, None], noise, b.region_feats),
                      region_boxes=torch.where(masked[..., None, None], b.region_boxes.flip(-1), b.region_boxes))
    assert not torch.equal(other.region_feats, b.region_feats)
    with torch.no_grad():
        a = model(b, frame_masked=masked, text_states=True)
        c = model(other, frame_masked=masked, text_states=True)
        unmasked = model(other, text_states=True)
    torch.testing.assert_close(c.frame_states, a.frame_states, **TOL)
    torch.testing.assert_close(c.text_states[b.sub_mask], a.text_states[b.sub_mask], **TOL)
    # without the mask the same change is seen (the test would pass vacuously otherwise)
    assert not torch.allclose(unmasked.frame_states[b.frame_mask], a.frame_states[b.frame_mask], atol=1e-3)


def test_model_asking_for_regions_needs_a_batch_with_them():
    p = _preset()
    b = _batch(p, num_regions=0)
    with pytest.raises(ValueError, match="model.regions: the batch has no region features"):
        Hero(p.model)(b)


def test_default_model_ignores_regions_and_has_no_region_weights():
    p = get_preset("hero-tiny", cross_layers=2, temporal_layers=2)
    model = Hero(p.model).eval()
    assert not any("region" in n for n, _ in model.named_parameters())
    plain = random_video_batch(p.model, p.tokens, num_videos=2, generator=torch.Generator().manual_seed(1))
    regions = {"region_feats": torch.randn(*plain.frame_mask.shape, 2, 5), "region_boxes": torch.rand(*plain.frame_mask.shape, 2, 4)}
    with torch.no_grad():
        assert torch.equal(model(plain.replace(**regions)).frame_states, model(plain).frame_states)


@pytest.mark.parametrize("extra", [{"encoder": "flat"}, "original"])
def test_regions_refused_where_they_cannot_live(extra):
    """compat: original (the released HERO) and the flat encoder refuse region tokens, naming the key."""
    base = {"regions": True}
    model = original_compat(base) if extra == "original" else {**base, **extra}
    with pytest.raises(ConfigError, match=r"model\.regions: "):
        get_preset("hero-tiny", **model)
