"""Video-only (subtitle-less) videos (hero-fidelity a.5): the channel transform, and every pretraining objective on
batches holding such videos (MFM-NCE, MFFR and FOM use them; MLM and VSM skip them, counted, without a NaN)."""

import pytest
import torch

from hero.data.channels import apply_channels, empty_subtitles
from hero.data.collate import collate_videos
from hero.data.random_batch import random_video_batch
from hero.data.task_collate import video_examples
from hero.presets import get_preset
from hero.tasks import PretrainConfig, PretrainModel, VsmConfig
from hero.train.distributed import all_gather_own_first

OBJECTIVES = ["mlm", "mfm_nce", "mffr", "fom", "vsm"]


def test_channels_transform_a_video_example():
    feats = torch.randn(12, 16)
    ex = {"video_id": "v", "frame_feats": feats, "sub_ids": [[2, 7, 8], [2, 9]], "sub_frames": [[0, 1, 2], [5, 6]]}
    assert apply_channels(ex, "both", sep=2) is ex
    video = apply_channels(ex, "video", sep=2)
    assert video["sub_ids"] == [[2], [2], [2]]                                        # no text, no subtitle timing
    assert video["sub_frames"] == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9], [10, 11]]        # every frame in a 5-group
    assert video["frame_feats"] is feats or torch.equal(video["frame_feats"], feats)
    subs = apply_channels(ex, "subtitles", sep=2)
    assert subs["sub_ids"] == ex["sub_ids"] and subs["sub_frames"] == ex["sub_frames"]
    assert subs["frame_feats"].shape == (12, 16) and not subs["frame_feats"].any()
    assert ex["sub_ids"] == [[2, 7, 8], [2, 9]] and torch.equal(ex["frame_feats"], feats)  # input untouched
    assert empty_subtitles(0, sep=2) == ([], [])
    with pytest.raises(ValueError, match=r"channels: 'audio' is not one of \['both', 'video', 'subtitles'\]"):
        apply_channels(ex, "audio", sep=2)


def _batch(preset, gen, video_only, form="a5"):
    """Three random videos; those in ``video_only`` lose their subtitles: the HERO a.5 way (separator-only
    subtitles over 5-frame groups), or with no subtitle row at all (``form="none"``: every frame unmatched)."""
    b = random_video_batch(preset.model, preset.tokens, num_videos=3, frames=(6, 12), generator=gen)
    drop = (lambda e: apply_channels(e, "video", preset.tokens.sep)) if form == "a5" else (
        lambda e: {**e, "sub_ids": [], "sub_frames": []})
    examples = [drop(e) if i in video_only else e for i, e in enumerate(video_examples(b))]
    return collate_videos(examples, pad_id=preset.tokens.pad)


def _model(preset, **pretrain):
    torch.manual_seed(0)
    return PretrainModel(preset.model, PretrainConfig(**pretrain), preset.tokens)


@pytest.mark.parametrize("encoder, form", [("hierarchical", "a5"), ("flat", "a5"), ("hierarchical", "none")])
@pytest.mark.parametrize("objective", OBJECTIVES)
def test_a_subtitle_less_video_flows_through_every_objective(objective, encoder, form, gen):
    preset = get_preset("hero-tiny", encoder=encoder)
    batch = _batch(preset, gen, video_only={1}, form=form)
    rows = (batch.sub_video == 1).nonzero(as_tuple=True)[0]
    assert not batch.sub_mask[rows, 1:].any()
    owned = batch.frame_owner()[1][batch.frame_mask[1]] >= 0
    assert owned.all() if form == "a5" else (len(rows) == 0 and not owned.any())
    model = _model(preset)
    inputs = model.prepare(objective, batch, gen, step=0)
    out = model(objective, inputs)
    assert torch.isfinite(out.loss) and out.count > 0
    assert all(torch.isfinite(v) for v in out.metrics.values())
    out.loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    if objective == "mlm":
        assert out.counters == {"mlm/skipped_videos": 1}
        assert not (inputs.labels[rows] >= 0).any()                                   # nothing scored there
    elif objective == "vsm":
        assert out.counters == {"vsm/skipped_videos": 1}
        assert 1 not in inputs.query_video.tolist() and {0, 2} <= set(inputs.query_video.tolist())
    else:
        assert out.counters == {}
        used = inputs.masked[1] if objective in ("mfm_nce", "mffr") else inputs.targets[1] >= 0
        assert used.any()                                                             # its frames are predicted


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_a_batch_of_only_video_only_videos(objective, gen, tiny):
    batch = _batch(tiny, gen, video_only={0, 1, 2})
    model = _model(tiny)
    out = model(objective, model.prepare(objective, batch, gen, step=0))
    out.loss.backward()
    assert torch.isfinite(out.loss)
    if objective in ("mlm", "vsm"):   # nothing to score: a zero loss that still reaches its head, counted
        assert out.loss.item() == 0.0 and out.count == 0 and out.counters == {f"{objective}/skipped_videos": 3}
        head = model.heads[objective]
        assert any(p.grad is not None for p in head.parameters())
        assert all(not p.grad.any() for p in model.parameters() if p.grad is not None)
    else:
        assert out.count > 0 and out.loss.item() > 0


def test_vsm_with_gathered_queries_and_none_of_its_own(gen, tiny):
    """With cross-rank gathering every rank must join the collectives, even one without a query of its own."""
    batch = _batch(tiny, gen, video_only={0, 1, 2})
    torch.manual_seed(0)
    model = PretrainModel(tiny.model, PretrainConfig(vsm=VsmConfig(gather_across_ranks=True, drop_svmr_prob=0.0)),
                          tiny.tokens, all_gather=all_gather_own_first)
    out = model("vsm", model.prepare("vsm", batch, gen, step=0))
    assert out.loss.item() == 0.0 and out.count == 0 and out.counters == {"vsm/skipped_videos": 3}
    assert all(torch.isfinite(v) for v in out.metrics.values()) and "vsm/loss_st_ed" not in out.metrics
    out.loss.backward()
