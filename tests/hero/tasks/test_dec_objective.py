"""Decoder pretraining (``dec``): the loss falls on a tiny batch, the generated subtitles are hidden from the
encoder, the head exists only when the mix uses it, the sampler draws it at its ratio, and TVC starts from it."""

from collections import Counter

import pytest
import torch

from hero.config import ConfigError, from_dict
from hero.data.random_batch import random_video_batch
from hero.presets import get_preset
from hero.tasks import CaptioningTask, PretrainConfig, PretrainModel, TaskSampler
from hero.tasks.captioning import CaptioningConfig
from hero.tasks.dec import Dec, memory_span
from hero.tasks.downstream import PretrainedKeyError

MIX = {"mlm": 2, "mfm_nce": 2, "fom": 1, "vsm": 2, "dec": 1}


def _model(encoder="hierarchical", tasks=MIX, **pretrain):
    p = get_preset("hero-tiny", encoder=encoder, dropout=0.0, attention_dropout=0.0)
    return p, PretrainModel(p.model, from_dict(PretrainConfig, {"tasks": tasks, **pretrain}), p.tokens)


def _batch(p, seed=0, n=3):
    return random_video_batch(p.model, p.tokens, num_videos=n, frames=(8, 14), generator=torch.Generator().manual_seed(seed))


def test_loss_falls_on_a_tiny_batch_and_logs_loss_and_token_accuracy():
    torch.manual_seed(0)
    p, model = _model()
    inputs = model.prepare("dec", _batch(p, seed=1), torch.Generator().manual_seed(0), step=0)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses, accs = [], []
    for _ in range(30):
        out = model("dec", inputs)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        losses.append(out.loss.item())
        accs.append(out.metrics["dec/token_acc"].item())
    assert set(out.metrics) == {"dec/loss", "dec/token_acc"} and out.counters == {"dec/skipped_videos": 0}
    assert out.count == int((inputs.caption_out >= 0).sum())
    assert losses[-1] < 0.5 * losses[0], f"{losses[0]:.3f} -> {losses[-1]:.3f}"
    assert accs[-1] > accs[0]


@pytest.mark.parametrize("encoder", ["hierarchical", "flat"])
def test_gradients_reach_the_encoder_and_the_decoder(encoder):
    p, model = _model(encoder)
    out = model("dec", model.prepare("dec", _batch(p), torch.Generator().manual_seed(0), step=0))
    out.loss.backward()
    enc = model.encoder.flat if encoder == "flat" else model.encoder.temporal
    assert torch.isfinite(out.loss)
    assert sum(float(q.grad.abs().sum()) for q in enc.parameters() if q.grad is not None) > 0
    assert float(model.heads["dec"].layers[0].cross_attn.kv.weight.grad.abs().sum()) > 0


def test_targets_are_the_chosen_subtitles_and_the_memory_is_the_clip_around_them():
    p, model = _model(dec={"captions_per_video": 2, "context_frames": 1})
    batch = _batch(p)
    inputs = model.prepare("dec", batch, torch.Generator().manual_seed(0), step=0)
    hidden = (inputs.batch.sub_mask.sum(1) == 1) & (batch.sub_mask.sum(1) > 1)
    rows = hidden.nonzero(as_tuple=True)[0]
    assert torch.equal(rows, inputs.rows)
    assert len(rows) == 2 * batch.num_videos == inputs.caption_in.shape[0]    # distinct subtitles, two per video
    for i, r in enumerate(rows.tolist()):
        text = batch.sub_ids[r, 1:][batch.sub_mask[r, 1:]].tolist()
        assert inputs.caption_in[i, : len(text) + 1].tolist() == [p.tokens.cls, *text]
        assert inputs.caption_out[i, : len(text) + 1].tolist() == [*text, p.tokens.sep]
        frames = batch.sub_frames[r][batch.sub_frames[r] >= 0]
        n = int(batch.frame_mask[batch.sub_video[r]].sum())
        assert int(inputs.memory_start[i]) == max(0, int(frames.min()) - 1)
        assert int(inputs.memory_end[i]) == min(n, int(frames.max()) + 2)
    assert (inputs.batch.sub_mask[:, 0]).all() and torch.equal(inputs.batch.sub_frames, batch.sub_frames)
    start, end = memory_span(batch, rows, 0)
    assert (end > start).all()


@pytest.mark.parametrize("encoder", ["hierarchical", "flat"])
def test_hidden_subtitles_do_not_reach_the_encoder(encoder):
    """Rewrite the tokens of the subtitles the decoder generates: the encoder's output (the decoder's memory) does
    not move, though the same rewrite moves it when the subtitles are not hidden."""
    p, model = _model(encoder)
    model.eval()
    dec: Dec = model.objectives["dec"]
    batch = _batch(p)
    inputs = dec.prepare(batch, torch.Generator().manual_seed(0), step=0)
    rows = inputs.rows
    g = torch.Generator().manual_seed(1)
    ids = batch.sub_ids.clone()
    new = torch.randint(p.tokens.random_low, p.tokens.random_high, ids.shape, generator=g)
    where = batch.sub_mask.clone()
    where[:, 0] = False
    where[~torch.isin(torch.arange(batch.num_subs), rows)] = False
    ids[where] = new[where]
    changed = batch.replace(sub_ids=ids)
    again = dec.prepare(changed, torch.Generator().manual_seed(0), step=0)
    assert torch.equal(again.rows, rows)                                        # the same subtitles were chosen...
    assert not torch.equal(again.caption_out, inputs.caption_out)              # ...and their new text is the target
    with torch.no_grad():
        memory, mask = dec.memory(model.encoder, inputs)
        memory2, mask2 = dec.memory(model.encoder, again)
        assert torch.equal(mask, mask2) and torch.equal(memory, memory2)
        visible = model.encoder(batch).frame_states                          # without hiding: the rewrite shows
        visible2 = model.encoder(changed).frame_states
    assert (visible - visible2).abs().max() > 1e-4


def test_video_without_subtitle_text_is_skipped_and_an_empty_batch_scores_nothing():
    p, model = _model()
    batch = _batch(p, n=2)
    blank = batch.replace(sub_mask=batch.sub_mask & (torch.arange(batch.sub_ids.shape[1]) == 0))
    inputs = model.prepare("dec", blank, torch.Generator().manual_seed(0), step=0)
    out = model("dec", inputs)
    assert out.count == 0 and out.counters == {"dec/skipped_videos": 2} and float(out.loss.detach()) == 0.0
    out.loss.backward()                                                          # still reaches the head (DDP)


def test_the_decoder_head_exists_only_when_the_mix_uses_it():
    p = get_preset("hero-tiny")
    assert "dec" not in PretrainModel(p.model, PretrainConfig(), p.tokens).heads
    off = from_dict(PretrainConfig, {"tasks": {**MIX, "dec": 0}})
    assert "dec" not in PretrainModel(p.model, off, p.tokens).heads
    on = PretrainModel(p.model, from_dict(PretrainConfig, {"tasks": MIX}), p.tokens)
    assert "dec" in on.heads and "dec" in on.objectives
    assert set(on.heads["dec"].state_dict()) == set(CaptioningTask(p.model, CaptioningConfig(), p.tokens).head.state_dict())


def test_default_mix_is_unchanged_and_config_errors_name_their_path():
    assert PretrainConfig().tasks == {"mlm": 2.0, "mfm_nce": 2.0, "fom": 1.0, "vsm": 2.0}
    with pytest.raises(ConfigError, match=r"^pretrain\.dec\.context_frames: must be >= 0"):
        from_dict(PretrainConfig, {"dec": {"context_frames": -1}}, _path="pretrain")
    with pytest.raises(ConfigError, match=r"max_caption_len: must be in \[2, max_positions=16\]"):
        from_dict(PretrainConfig, {"dec": {"max_positions": 16, "max_caption_len": 20}})


def test_sampler_draws_the_decoder_objective_at_its_ratio():
    s = TaskSampler(MIX, seed=5)
    n = 16000
    counts = Counter(s.stream(0, n))
    total = sum(MIX.values())
    for name, w in MIX.items():
        assert abs(counts[name] / n - w / total) < 0.015, (name, counts[name] / n)


def test_tvc_starts_from_the_pretrained_decoder_when_the_checkpoint_has_one(caplog):
    p, pre = _model()
    with caplog.at_level("INFO", logger="hero.tasks.captioning"):
        task = CaptioningTask.from_pretrained(pre.state_dict(), model_cfg=p.model, tokens=p.tokens)
    src = pre.heads["dec"].state_dict()
    own = task.head.state_dict()
    assert set(own) == set(src) and all(torch.equal(own[k], src[k]) for k in src)   # every tensor, the lm too
    assert task.decoder_init.source == "heads.dec" and task.decoder_init.new == []
    assert len(task.decoder_init.loaded) == len(own) and task.pretrained_missing_keys == []
    assert "decoder from the pretraining checkpoint (heads.dec -> head): %d tensors loaded, 0 new" % len(own) in caplog.text


def test_tvc_without_a_pretrained_decoder_is_initialised_as_before(caplog):
    p = get_preset("hero-tiny")
    pre = PretrainModel(p.model, PretrainConfig(), p.tokens)                  # today's checkpoints: no heads.dec
    torch.manual_seed(7)
    task = CaptioningTask.from_pretrained(pre.state_dict(), model_cfg=p.model, tokens=p.tokens)
    torch.manual_seed(7)
    fresh = CaptioningTask(p.model, CaptioningConfig(), p.tokens)
    assert task.decoder_init.source == "heads.mlm"
    assert sorted(task.decoder_init.loaded) == sorted(f"head.lm.{k}" for k in pre.heads["mlm"].state_dict())
    torch.testing.assert_close(task.head.lm.dense.weight, pre.heads["mlm"].dense.weight)
    for k, v in fresh.head.state_dict().items():                              # the decoder: the task's own init
        if not k.startswith("lm."):
            assert torch.equal(task.head.state_dict()[k], v), k


def test_a_pretrained_decoder_of_another_shape_is_refused_naming_both():
    p, pre = _model(dec={"decoder_layers": 3})
    with pytest.raises(PretrainedKeyError, match=r"finetune\.decoder_layers.*3 layers.*task's 2"):
        CaptioningTask.from_pretrained(pre.state_dict(), model_cfg=p.model, tokens=p.tokens)
    task = CaptioningTask.from_pretrained(pre.state_dict(), CaptioningConfig(decoder_layers=3), model_cfg=p.model,
                                          tokens=p.tokens)
    assert task.decoder_init.source == "heads.dec" and len(task.head.layers) == 3
