"""Reading an appended text (QA pair, statement) at the cross-modal level: `Hero.forward(extra_text_states=True)`
and `SubtitleTextReader`, the ``read_text`` option of video QA and VIOLIN."""

import pytest
import torch

from hero.data.random_batch import random_video_batch
from hero.data.task_collate import video_examples
from hero.model.hero import Hero, use_reference_path
from hero.presets import get_preset
from hero.tasks.downstream import SubtitleTextReader
from hero.tasks.video_inference import ViolinConfig, ViolinTask, collate_violin
from hero.tasks.video_qa import VideoQaConfig, VideoQaTask, collate_video_qa

from task_helpers import overfit


def _preset():
    return get_preset("hero-tiny", dropout=0.0, attention_dropout=0.0)


def _batch(p, n=3, seed=0):
    return random_video_batch(p.model, p.tokens, num_videos=n, frames=(6, 10), generator=torch.Generator().manual_seed(seed))


def _extra(p, n, length=6, seed=1):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(p.tokens.random_low, p.tokens.random_high, (n, length), generator=g)
    mask = torch.ones(n, length, dtype=torch.bool)
    mask[0, 4:] = False                                        # a shorter text: padding must not matter
    return ids.masked_fill(~mask, p.tokens.pad), mask


def test_extra_cross_states_packed_equals_reference_and_ignore_padding():
    p = _preset()
    torch.manual_seed(0)
    enc = Hero(p.model).eval()
    batch = _batch(p)
    ids, mask = _extra(p, batch.num_videos)
    with torch.no_grad():
        packed = enc(batch, extra_text=(ids, mask), extra_text_states=True)
        ref = use_reference_path(enc)(batch, extra_text=(ids, mask), extra_text_states=True)
    S, L = batch.sub_ids.shape[0], ids.shape[1]
    assert packed.extra_cross_states.shape == (S, L, p.model.hidden_size)
    valid = mask[batch.sub_video]
    torch.testing.assert_close(packed.extra_cross_states[valid], ref.extra_cross_states[valid], atol=1e-4, rtol=1e-4)
    # without the flag nothing extra is computed or returned
    with torch.no_grad():
        assert use_reference_path(enc, False)(batch, extra_text=(ids, mask)).extra_cross_states is None


def test_extra_cross_states_read_their_own_subtitle():
    """Row s is where the text met subtitle s: changing subtitle s changes row s, not the rows of another video."""
    p = _preset()
    torch.manual_seed(0)
    enc = Hero(p.model).eval()
    batch = _batch(p)
    ids, mask = _extra(p, batch.num_videos)
    s = int((batch.sub_mask.sum(1) > 0).nonzero()[0])
    other = batch.sub_video != batch.sub_video[s]
    changed = batch.sub_ids.clone()
    changed[s, 0] = (changed[s, 0] + 1 - p.tokens.random_low) % (p.tokens.random_high - p.tokens.random_low) + p.tokens.random_low
    with torch.no_grad():
        a = enc(batch, extra_text=(ids, mask), extra_text_states=True).extra_cross_states
        b = enc(batch, sub_ids=changed, extra_text=(ids, mask), extra_text_states=True).extra_cross_states
    row = mask[batch.sub_video[s]]
    assert (a[s][row] - b[s][row]).abs().max() > 1e-3
    torch.testing.assert_close(a[other], b[other])


def test_reader_scores_each_copy_by_its_best_subtitle():
    p = _preset()
    torch.manual_seed(0)
    reader = SubtitleTextReader(p.model)
    states = torch.randn(3, 4, p.model.hidden_size)
    mask = torch.ones(3, 4, dtype=torch.bool)
    owner = torch.tensor([0, 0, 2])
    with torch.no_grad():
        scores = reader(states, mask, owner, num_copies=3)
        per_row = torch.stack([reader(states[i:i + 1], mask[i:i + 1], torch.tensor([0]), 1)[0] for i in range(3)])
    torch.testing.assert_close(scores[0], per_row[:2].max())
    torch.testing.assert_close(scores[2], per_row[2])
    assert float(scores[1]) == 0.0                               # a copy without subtitles
    with torch.no_grad():
        assert reader(states[:0], mask[:0], owner[:0], num_copies=2).tolist() == [0.0, 0.0]


def _qa_examples(p, batch, seed=0, answers=4):
    """Each question's right answer is a run of its video's subtitle tokens; the wrong ones are random."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for i, v in enumerate(video_examples(batch)):
        subs = [s for s in v["sub_ids"] if len(s) >= 2]
        right = list(subs[0][:3]) if subs else [p.tokens.random_low]
        wrong = [torch.randint(p.tokens.random_low, p.tokens.random_high, (3,), generator=g).tolist() for _ in range(answers - 1)]
        idx = i % answers
        out.append({"video": v, "q_ids": [p.tokens.random_low + 1], "answer_ids": wrong[:idx] + [right] + wrong[idx:],
                    "answer_idx": idx, "ts": None})
    return out


def _qa_task(**option):
    p = _preset()
    batch = _batch(p, n=4, seed=3)
    cfg = VideoQaConfig(num_answers=4, **option)
    inputs = collate_video_qa(_qa_examples(p, batch), p.tokens, cfg, clip_len=1.5)
    torch.manual_seed(0)
    return VideoQaTask(p.model, cfg, p.tokens), inputs


def _violin_task(**option):
    p = _preset()
    batch = _batch(p, n=3)
    g = torch.Generator().manual_seed(0)

    def toks():
        return torch.randint(p.tokens.random_low, p.tokens.random_high, (4,), generator=g).tolist()

    ex = [{"video": v, "statement_ids": toks(), "label": i % 2, "paired_ids": toks()}
          for i, v in enumerate(video_examples(batch))]
    cfg = ViolinConfig(pair_loss=1.0, **option)
    inputs = collate_violin(ex, p.tokens, cfg, clip_len=1.5)
    torch.manual_seed(0)
    return ViolinTask(p.model, cfg, p.tokens), inputs


def test_video_qa_with_read_text_trains_the_reader_and_fits():
    task, inputs = _qa_task(read_text=True)
    out = task(inputs)
    out.loss.backward()
    # weights only: the pooling bias and the answer-wise bias cancel in a softmax and get no gradient
    assert all(float(m.weight.grad.abs().sum()) > 0 for m in (task.head.text.pool, task.head.text.pred.fc1))
    losses = overfit(task, inputs, steps=30)
    assert losses[-1] < 0.3 * losses[0], losses[::6]
    assert float(task(inputs).metrics["video_qa/acc"]) == 1.0


def test_violin_with_read_text_trains_the_reader_and_fits():
    task, inputs = _violin_task(read_text=True)
    task(inputs).loss.backward()
    assert all(float(m.weight.grad.abs().sum()) > 0 for m in (task.head.text.pool, task.head.text.pred.fc1))
    losses = overfit(task, inputs, steps=30)
    assert losses[-1] < 0.3 * losses[0], losses[::6]


def test_read_text_needs_per_subtitle_sequences():
    p = get_preset("hero-tiny", encoder="flat")
    batch = _batch(p)
    ids, mask = _extra(p, batch.num_videos)
    with pytest.raises(ValueError, match="flat encoder"):
        Hero(p.model)(batch, extra_text=(ids, mask), extra_text_states=True)


# ---------------------------------------------------------------------- text_match
def test_text_match_scores_by_the_best_subtitle_of_the_own_video():
    from hero.tasks.downstream import SubtitleTextMatch

    m = SubtitleTextMatch(init_scale=2.0).eval()
    subs = torch.nn.functional.normalize(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), dim=-1)
    text = torch.nn.functional.normalize(torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]), dim=-1)
    with torch.no_grad():
        got = m(text, subs, sub_video=torch.tensor([0, 0, 1]), text_video=torch.tensor([0, 1, 2]))
    # text 0 -> subtitle 0 (cos 1); text 1 -> video 1's only subtitle (cos 0.707); video 2 has none
    torch.testing.assert_close(got, torch.tensor([2.0, 2.0 * 2 ** -0.5, 0.0]))
    m.train()
    with torch.no_grad():
        m(text, subs, sub_video=torch.tensor([0, 0, 1]), text_video=torch.tensor([0, 1, 2]))
    assert abs(float(m.shift.detach()) - (1 + 2 ** -0.5) / 2) < 1e-6 and bool(m.shift_initialised)   # the first batch's mean


def test_video_qa_with_text_match_trains_the_encoder_through_it_and_fits():
    task, inputs = _qa_task(text_match=True)
    task(inputs).loss.backward()
    assert task.head.match.scale.grad is not None and _grad_sum(task.encoder.cross) > 0
    losses = overfit(task, inputs, steps=30)
    assert losses[-1] < 0.3 * losses[0], losses[::6]


def test_violin_with_text_match_fits():
    task, inputs = _violin_task(text_match=True)
    losses = overfit(task, inputs, steps=30)
    assert losses[-1] < 0.3 * losses[0], losses[::6]
    assert bool(task.head.match.shift_initialised)


def _grad_sum(module):
    return sum(float(q.grad.abs().sum()) for q in module.parameters() if q.grad is not None)
