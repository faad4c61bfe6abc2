import pytest
import torch

from hero.data.batch import VideoBatch
from hero.data.task_collate import select_videos
from hero.data.random_batch import random_video_batch
from hero.model import Hero
from hero.presets import get_preset


@pytest.mark.parametrize("encoder", ["hierarchical", "flat"])
def test_output_shapes(encoder):
    p = get_preset("hero-tiny", encoder=encoder)
    b = random_video_batch(p.model, p.tokens, num_videos=3)
    out = Hero(p.model).eval()(b, text_states=True)
    B, T = b.frame_mask.shape
    assert out.frame_states.shape == (B, T, p.model.hidden_size)
    assert out.text_states.shape == (*b.sub_ids.shape, p.model.hidden_size)
    assert torch.isfinite(out.frame_states).all()


def _single(b: VideoBatch, v: int) -> VideoBatch:
    """Video ``v`` of a batch on its own, trimmed to its own lengths (no padding beyond itself)."""
    return select_videos(b, torch.tensor([v])).trimmed()


@pytest.mark.parametrize("encoder", ["hierarchical", "flat"])
@pytest.mark.parametrize("compat", ["native", "original"])
def test_padding_never_changes_valid_outputs(encoder, compat):
    from hero.model.config import original_compat
    from hero.config import to_dict

    p = get_preset("hero-tiny", encoder=encoder)
    overrides = original_compat({}) if compat == "original" else {}
    if compat == "original" and encoder == "flat":
        pytest.skip("compat=original is hierarchical only")
    p = get_preset("hero-tiny", **{**to_dict(p.model), **overrides})
    b = random_video_batch(p.model, p.tokens, num_videos=3, frames=(3, 14), generator=torch.Generator().manual_seed(7))
    model = Hero(p.model).eval()
    with torch.no_grad():
        full = model(b, text_states=True)
        for v in range(3):
            alone = model(_single(b, v), text_states=True)
            n = int(b.frame_mask[v].sum())
            torch.testing.assert_close(full.frame_states[v, :n], alone.frame_states[0], atol=2e-5, rtol=1e-4)
            rows = (b.sub_video == v).nonzero(as_tuple=True)[0]
            valid = b.sub_mask[rows]
            torch.testing.assert_close(full.text_states[rows][valid], alone.text_states[valid[:, :alone.text_states.shape[1]]],
                                       atol=2e-5, rtol=1e-4)


def test_unmatched_frames_bypass_cross_modal_level(tiny):
    """A frame aligned to no subtitle enters the temporal level as the feature residual alone (HERO a.5)."""
    b = random_video_batch(tiny.model, tiny.tokens, num_videos=2, unmatched_prob=0.5, generator=torch.Generator().manual_seed(3))
    model = Hero(tiny.model).eval()
    owner = b.frame_owner()
    unmatched = (owner < 0) & b.frame_mask
    assert unmatched.any()
    with torch.no_grad():
        fused = model(b).fused_frames
        residual = model.frame_residual(b.frame_feats)
    torch.testing.assert_close(fused[unmatched], residual[unmatched])
    assert not torch.allclose(fused[~unmatched & b.frame_mask], residual[~unmatched & b.frame_mask])


def test_subtitles_do_not_attend_across_each_other(tiny):
    """Changing one subtitle's tokens changes nothing at the cross-modal level of the other subtitles."""
    b = random_video_batch(tiny.model, tiny.tokens, num_videos=1, frames=(10, 10), generator=torch.Generator().manual_seed(5))
    assert b.num_subs >= 2
    ids = b.sub_ids.clone()
    ids[0, 1:] = tiny.tokens.random_low + 1
    model = Hero(tiny.model).eval()
    with torch.no_grad():
        a = model.encode_subtitles(b)
        c = model.encode_subtitles(b.replace(sub_ids=ids))
    torch.testing.assert_close(a[1:], c[1:])
    assert not torch.allclose(a[0], c[0])


def test_too_many_frames_is_a_clear_error(tiny):
    b = random_video_batch(tiny.model, tiny.tokens, num_videos=1, frames=(8, 8))
    model = Hero(get_preset("hero-tiny", max_frames=4).model)
    with pytest.raises(ValueError, match="max_frames"):
        model(b)
