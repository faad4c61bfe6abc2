"""Every pretraining objective: finite loss, gradients into both transformers, overfits one batch."""

import pytest
import torch

from hero.config import from_dict
from hero.data.random_batch import random_video_batch
from hero.presets import get_preset
from hero.tasks import PretrainConfig, PretrainModel

OBJECTIVES = ["mlm", "mfm_nce", "mffr", "fom", "vsm"]


def _model(encoder="hierarchical", **pretrain):
    p = get_preset("hero-tiny", encoder=encoder, dropout=0.0, attention_dropout=0.0)
    return p, PretrainModel(p.model, from_dict(PretrainConfig, pretrain), p.tokens)


def _batch(p, seed=0, n=3):
    return random_video_batch(p.model, p.tokens, num_videos=n, frames=(8, 14), generator=torch.Generator().manual_seed(seed))


def _grad_norm(module):
    return sum(float(q.grad.abs().sum()) for q in module.parameters() if q.grad is not None)


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_finite_loss_and_gradients_reach_both_levels(objective):
    p, model = _model()
    batch = _batch(p)
    inputs = model.prepare(objective, batch, torch.Generator().manual_seed(0), step=0)
    out = model(objective, inputs)
    assert out.loss.dim() == 0 and torch.isfinite(out.loss)
    out.loss.backward()
    assert _grad_norm(model.encoder.cross) > 0
    if objective != "mlm":  # MLM reads the cross-modal level only, as in HERO
        assert _grad_norm(model.encoder.temporal) > 0
    assert all(torch.isfinite(v) for v in out.metrics.values())


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_flat_encoder_serves_every_head(objective):
    p, model = _model("flat")
    out = model(objective, model.prepare(objective, _batch(p), torch.Generator().manual_seed(0), step=0))
    out.loss.backward()
    assert torch.isfinite(out.loss) and _grad_norm(model.encoder.flat) > 0


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_overfits_a_single_batch(objective):
    torch.manual_seed(0)
    p, model = _model(vsm={"drop_svmr_prob": 0.0})
    batch = _batch(p, seed=1)
    inputs = model.prepare(objective, batch, torch.Generator().manual_seed(0), step=0)  # fixed masks: pure overfit
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(40):
        out = model(objective, inputs)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        losses.append(out.loss.item())
    assert losses[-1] < 0.5 * losses[0], f"{objective}: {losses[0]:.3f} -> {losses[-1]:.3f}"


def test_vsm_blanks_query_subtitles_from_context():
    p, model = _model()
    batch = _batch(p)
    inputs = model.prepare("vsm", batch, torch.Generator().manual_seed(0), step=0)
    q_per_video = model.pretrain_cfg.vsm.queries_per_video
    assert inputs.query_ids.shape[0] == q_per_video * batch.num_videos
    assert (inputs.query_ids[:, 0] == p.tokens.cls).all()
    blanked = inputs.batch.sub_mask.sum(1) == 1
    assert blanked.any() and (inputs.batch.sub_mask[:, 0]).all()
    # each query's own video, and its start/end inside that video's frames
    n = batch.frame_mask.sum(1)[inputs.query_video]
    assert (inputs.start >= 0).all() and (inputs.end > inputs.start).all() and (inputs.end < n).all()


def test_vsm_hard_negatives_switch_on_at_the_configured_step():
    p, model = _model(vsm={"hard_negative_start_step": 5})
    batch = _batch(p)
    g = torch.Generator().manual_seed(0)
    assert not model.prepare("vsm", batch, g, step=4).hard
    assert model.prepare("vsm", batch, g, step=5).hard


def test_ranking_loss_hand_case():
    from hero.tasks.config import VsmConfig
    from hero.tasks.vsm import ranking_loss

    scores = torch.tensor([[0.9, 0.5], [0.2, 0.6]])       # query 0 -> video 0, query 1 -> video 1
    ctx, q = ranking_loss(scores, torch.tensor([0, 1]), VsmConfig(margin=0.1), hard=False)
    # ctx: q0: max(0, .1 + .5 - .9) = 0; q1: max(0, .1 + .2 - .6) = 0
    assert ctx.item() == pytest.approx(0.0)
    scores = torch.tensor([[0.5, 0.55], [0.5, 0.6]])
    ctx, q = ranking_loss(scores, torch.tensor([0, 1]), VsmConfig(margin=0.1), hard=False)
    # ctx: q0: .1 + .55 - .5 = .15; q1: .1 + .5 - .6 = 0 -> mean .075
    # neg queries: video 0 vs query 1: .1 + .5 - .5 = .1; video 1 vs query 0: .1 + .55 - .6 = .05 -> mean .075
    assert ctx.item() == pytest.approx(0.075) and q.item() == pytest.approx(0.075)


def test_mfm_nce_negatives_optionally_include_padding():
    p, model = _model()
    batch = _batch(p)
    assert (~batch.frame_mask).any()
    g = torch.Generator().manual_seed(0)
    inputs = model.prepare("mfm_nce", batch, g, 0)
    a = model("mfm_nce", inputs).loss
    model.objectives["mfm_nce"].padded_negatives = True
    b = model("mfm_nce", inputs).loss
    assert a.item() != b.item()


def test_top1_correct_is_argmax_except_that_a_tie_for_the_maximum_is_wrong():
    from hero.tasks.mlm import top1_correct

    torch.manual_seed(0)
    logits, labels = torch.randn(64, 1000), torch.randint(0, 1000, (64,))
    labels[:20] = logits[:20].argmax(-1)                     # some right, most wrong
    assert torch.equal(top1_correct(logits, labels), logits.argmax(-1) == labels)
    tied = torch.tensor([[0.0, 2.0, 2.0, 1.0], [0.0, 2.0, 1.0, 1.0]])
    assert top1_correct(tied, torch.tensor([1, 1])).tolist() == [False, True]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_consuming_cross_entropy_gives_torchs_loss_and_gradient(dtype):
    """`mlm_loss(..., consume=True)` (the gradient written into the logits' own memory, in row blocks, over a
    number of rows that is not a multiple of the block) equals F.cross_entropy on the fp32 logits, loss and
    gradient, also through a product before it; a second backward is refused."""
    import torch.nn.functional as F
    from hero.tasks.mlm import mlm_loss

    torch.manual_seed(0)
    h = torch.randn(19, 16, dtype=dtype, requires_grad=True)
    w = torch.randn(301, 16, dtype=dtype)
    labels = torch.randint(0, 301, (19,))
    grads, losses = [], []
    for consume in (False, True):
        logits = h @ w.t()
        loss = mlm_loss(logits, labels, consume=consume)
        (loss * 3).backward(retain_graph=consume)
        grads.append(h.grad.clone())
        losses.append(loss.detach())
        h.grad = None
        if consume:
            with pytest.raises(RuntimeError, match="cannot run twice"):
                loss.backward()
    expected = F.cross_entropy((h @ w.t()).float(), labels)
    torch.testing.assert_close(losses[0], expected)
    tol = {"atol": 1e-5, "rtol": 1e-5} if dtype == torch.float32 else {"atol": 2e-2, "rtol": 2e-2}
    torch.testing.assert_close(losses[1], expected, **tol)
    torch.testing.assert_close(grads[1], grads[0], **tol)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_loss_and_top1_in_one_pass_equal_the_two_functions(dtype):
    """`mlm_loss_and_top1`: the consuming loss and its gradient, and `top1_correct` (ties for the maximum count
    as wrong) read from the same row blocks; over a row count that is not a multiple of the block."""
    from hero.tasks.mlm import mlm_loss, mlm_loss_and_top1, top1_correct

    torch.manual_seed(0)
    h = torch.randn(21, 16, dtype=dtype, requires_grad=True)
    w = torch.randn(301, 16, dtype=dtype)
    w[7] = w[5]                                             # rows 5 and 7 tie wherever either is the maximum
    labels = torch.randint(0, 301, (21,))
    logits = (h @ w.t()).detach()
    labels[:12] = logits[:12].argmax(-1)                    # some right, the rest almost surely wrong
    labels[:3] = torch.where(logits[:3, 5] >= logits[:3].amax(-1), 5, labels[:3])
    expected_correct = top1_correct(logits, labels)
    assert expected_correct.any() and not expected_correct.all()
    h2 = h.detach().clone().requires_grad_(True)
    loss, correct = mlm_loss_and_top1(h @ w.t(), labels)
    (loss * 3).backward()
    (mlm_loss(h2 @ w.t(), labels) * 3).backward()
    assert torch.equal(correct, expected_correct)
    torch.testing.assert_close(loss, mlm_loss(logits, labels))
    tol = {"atol": 1e-5, "rtol": 1e-5} if dtype == torch.float32 else {"atol": 2e-2, "rtol": 2e-2}
    torch.testing.assert_close(h.grad, h2.grad, **tol)
    tied = torch.tensor([[0.0, 2.0, 2.0, 1.0], [0.0, 2.0, 1.0, 1.0]], requires_grad=True) * 1
    assert mlm_loss_and_top1(tied, torch.tensor([1, 1]))[1].tolist() == [False, True]


def test_mfm_nce_negative_scores_without_mapping_negatives_to_feature_space():
    """`MfmHead.score` reorders ``pred @ head(states).t()`` as ``(pred @ W) @ hidden(states).t() + pred @ b``: the
    same scores and gradients (float64, to rounding); the reference path computes the first form."""
    from hero.model.config import ModelConfig
    from hero.tasks.mfm import MfmHead

    torch.manual_seed(0)
    head = MfmHead(ModelConfig(hidden_size=32, num_heads=2, intermediate_size=64, feature_dim=96)).double()
    pred = torch.randn(5, 96, dtype=torch.float64, requires_grad=True)
    states = torch.randn(11, 32, dtype=torch.float64, requires_grad=True)
    results = {}
    for reference in (True, False):
        head.reference_path = reference
        head.zero_grad(set_to_none=True)
        scores = head.score(pred, states)
        grads = torch.autograd.grad((scores * torch.arange(55.0, dtype=torch.float64).view(5, 11)).sum(),
                                    [pred, states, *head.parameters()])
        results[reference] = (scores, grads)
    torch.testing.assert_close(results[False][0], pred @ head(states).t(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(results[False][0], results[True][0], rtol=1e-12, atol=1e-12)
    for a, b in zip(results[False][1], results[True][1]):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
