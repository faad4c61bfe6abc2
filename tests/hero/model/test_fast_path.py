"""The default (fast) encoder path against the reference path: packed cross-modal level, outputs computed only
where read, cheaper dropout masks, the word-embedding gradient built from the rows used."""

import contextlib

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from hero.config import to_dict
from hero.data.masking import mask_frames
from hero.data.random_batch import random_video_batch
from hero.model import Hero, use_reference_path
from hero.model.config import original_compat
from hero.model.dropout import Dropout, dropout, residual_dropout
from hero.model.embeddings import RowGradEmbedding
from hero.presets import get_preset

TOL = {"atol": 2e-5, "rtol": 1e-4}


def _preset(compat: str, norm_style: str = "post"):
    p = get_preset("hero-tiny", cross_layers=2, temporal_layers=2)
    model = to_dict(p.model)
    if compat == "original":
        model = original_compat(model)
    else:
        model["norm_style"] = norm_style
    return get_preset("hero-tiny", **model)


def _batch(p, seed=7):
    return random_video_batch(p.model, p.tokens, num_videos=3, frames=(3, 14), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("compat,norm_style", [("native", "post"), ("native", "pre"), ("original", "post")])
def test_packed_cross_modal_level_equals_padded(compat, norm_style):
    p = _preset(compat, norm_style)
    b = _batch(p)
    model = Hero(p.model).eval()
    masked = mask_frames(b.frame_mask, prob=0.3, generator=torch.Generator().manual_seed(1))
    extra = (torch.randint(5, 100, (3, 4)), torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0], [1, 1, 1, 1]], dtype=torch.bool))
    read = b.sub_mask & (torch.rand(b.sub_mask.shape, generator=torch.Generator().manual_seed(2)) < 0.3)
    read[:, 0] = False
    with torch.no_grad():
        outs = {}
        for reference in (True, False):
            use_reference_path(model, reference)
            outs[reference] = (model(b, frame_masked=masked, text_states=True), model(b, frame_masked=masked),
                               model(b, extra_text=extra), model.encode_subtitles(b, read=read),
                               model.encode_text(b.sub_ids, b.sub_mask))
    (ref_all, _, ref_extra, ref_mlm, ref_text), (all_, frames, extra_out, mlm, text) = outs[True], outs[False]
    for out in (all_, frames):
        torch.testing.assert_close(out.frame_states, ref_all.frame_states, **TOL)
        torch.testing.assert_close(out.fused_frames, ref_all.fused_frames, **TOL)
    valid = b.sub_mask
    torch.testing.assert_close(all_.text_states[valid], ref_all.text_states[valid], **TOL)
    assert frames.text_states is None                       # nothing computed for text nobody reads
    torch.testing.assert_close(extra_out.frame_states, ref_extra.frame_states, **TOL)
    torch.testing.assert_close(extra_out.extra_states, ref_extra.extra_states, **TOL)
    torch.testing.assert_close(mlm[read], ref_mlm[read], **TOL)
    assert read.any() and (mlm[~read] == 0).all()           # positions nobody reads are not computed
    torch.testing.assert_close(text[valid], ref_text[valid], **TOL)


def test_packed_level_gradients_equal_padded():
    """Without dropout, one backward pass gives the same parameter gradients on both paths. (The loss weighs the
    outputs by fixed random vectors: a plain sum or sum of squares of LayerNorm outputs is nearly constant, and
    the gradients below it would be rounding noise.)"""
    p = get_preset("hero-tiny", cross_layers=2, dropout=0.0, attention_dropout=0.0)
    b = _batch(p, seed=3)
    model = Hero(p.model)
    gen = torch.Generator().manual_seed(4)
    w_frames = torch.randn(int(b.frame_mask.sum()), p.model.hidden_size, generator=gen)
    w_text = torch.randn(int(b.sub_mask.sum()), p.model.hidden_size, generator=gen)
    grads = {}
    for reference in (True, False):
        use_reference_path(model, reference)
        model.zero_grad(set_to_none=True)
        out = model(b)
        ((out.frame_states[b.frame_mask] * w_frames).sum()
         + (model.encode_subtitles(b)[b.sub_mask] * w_text).sum()).backward()
        grads[reference] = {n: q.grad.to_dense().clone() for n, q in model.named_parameters() if q.grad is not None}
    assert grads[True].keys() == grads[False].keys()
    for name in grads[True]:
        torch.testing.assert_close(grads[False][name], grads[True][name], atol=1e-5, rtol=1e-4, msg=name)


@pytest.mark.parametrize("vocab", [None, 46])
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_tied_decode_matches_linear_across_steps_accumulation_and_weight_updates(precision, vocab):
    """`RowGradEmbedding.decode` (persistent low-precision copy, weight gradient written in place) gives
    F.linear's logits and every gradient, under autocast too: over steps that decode (two micro-batches), steps
    that only look rows up (the reused buffer must hold no stale decoder gradient) and weight updates in between
    (the cast copy must follow them). With ``rows`` (the vocabulary without the table's padding rows) it equals
    the full product with the padding columns sliced off, and contiguous; the padding rows get no decoder
    gradient, and the bias gradient keeps the bias's full shape."""
    torch.manual_seed(0)
    rows, dim = 50, 8
    fast, plain = RowGradEmbedding(rows, dim), nn.Embedding(rows, dim)
    plain.weight.data.copy_(fast.weight.data)
    bias_f = nn.Parameter(torch.randn(rows))
    bias_p = nn.Parameter(bias_f.detach().clone())
    autocast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if precision == "bf16" else contextlib.nullcontext
    tol = {"atol": 2e-2, "rtol": 2e-2} if precision == "bf16" else {"atol": 1e-5, "rtol": 1e-5}
    steps = [("decode", 2), ("lookup", 1), ("decode", 1), ("decode", 1), ("lookup", 2)]
    for kind, micro in steps:
        for emb, bias in ((fast, bias_f), (plain, bias_p)):
            emb.weight.grad = bias.grad = None
        for m in range(micro):
            ids = torch.randint(0, rows, (3, 4), generator=torch.Generator().manual_seed(len(kind) * 10 + m))
            outs = []
            for emb, bias in ((fast, bias_f), (plain, bias_p)):
                with autocast():
                    h = emb(ids).mean(1)                                                   # [3, D]
                    if kind == "decode":
                        if emb is fast:
                            logits = emb.decode(h, bias, rows=vocab)
                            assert logits.is_contiguous() and logits.shape[1] == (vocab or rows)
                        else:
                            logits = F.linear(h, emb.weight, bias)[:, :vocab]
                        outs.append(logits)
                        loss = F.cross_entropy(logits.float(), torch.tensor([1, 7, 9]))
                    else:
                        loss = h.float().square().sum()
                loss.backward()
            if outs:
                assert outs[0].dtype == outs[1].dtype
                torch.testing.assert_close(outs[0], outs[1], **tol)
        grad_p = plain.weight.grad.to_dense()
        torch.testing.assert_close(fast.weight.grad.to_dense(), grad_p, **tol)
        if kind == "decode":
            torch.testing.assert_close(bias_f.grad, bias_p.grad, **tol)
            assert fast.weight.grad is fast._dense                  # the fast path ran: written in place
            assert (getattr(fast.weight, "_hero_cast", None) is not None) == (precision == "bf16")
        with torch.no_grad():                                       # an optimizer step: the weights change in place
            for emb in (fast, plain):
                emb.weight.sub_(0.5 * grad_p)


def test_row_grad_embedding_matches_dense_across_steps_and_accumulation():
    """Each backward's ``.grad`` equals nn.Embedding's: stale rows of the reused buffer are cleared, a second
    micro-batch accumulates, and a dense gradient from a tied use makes the gradient dense."""
    torch.manual_seed(0)
    fast, dense = RowGradEmbedding(40, 8), nn.Embedding(40, 8)
    dense.weight.data.copy_(fast.weight.data)
    steps = [[torch.tensor([[1, 2, 2, 5]])], [torch.tensor([[7, 8]]), torch.tensor([[8, 30]])], [torch.tensor([[3]])]]
    for k, micro in enumerate(steps):
        for emb in (fast, dense):
            emb.weight.grad = None
            for ids in micro:
                w = torch.arange(1.0, 1.0 + ids.numel() * 8).view(*ids.shape, 8)
                loss = (emb(ids) * w).sum()
                if k == 2:                                    # a tied decoder: a dense gradient as well
                    loss = loss + (emb.weight @ torch.ones(8)).square().sum()
                loss.backward()
        assert not fast.weight.grad.is_sparse
        torch.testing.assert_close(fast.weight.grad, dense.weight.grad)


def test_reference_path_switch_reaches_every_part():
    p = get_preset("hero-tiny")
    model = use_reference_path(Hero(p.model))
    assert not model.packed and not model.text_embed.word.row_grad
    assert all(not m.cheap_mask for m in model.modules() if isinstance(m, Dropout))
    use_reference_path(model, False)
    assert model.packed and model.text_embed.word.row_grad
    assert all(m.cheap_mask for m in model.modules() if isinstance(m, Dropout))


def test_cheap_dropout_is_inverted_dropout():
    x = torch.randn(400_000, requires_grad=True)
    torch.manual_seed(5)
    y = dropout(x, 0.1, True)
    kept = y != 0
    frac = kept.float().mean().item()
    assert abs(frac - 0.9) < 5 * (0.9 * 0.1 / x.numel()) ** 0.5   # 5 sigma
    torch.testing.assert_close(y[kept], x[kept] / 0.9)
    y.backward(torch.ones_like(y))
    torch.testing.assert_close(x.grad, kept.float() / 0.9)
    torch.manual_seed(5)
    assert torch.equal(dropout(x.detach(), 0.1, True) != 0, kept)  # a function of the seed (exact resume)
    assert dropout(x, 0.1, False) is x and dropout(x, 0.0, True) is x
    with pytest.raises(ValueError, match="dropout probability"):
        Dropout(1.5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_residual_dropout_is_the_sum_with_the_same_mask(dtype):
    """residual + dropout(x) in one pass: the same mask as `dropout` for the same seed, the same values (fp32:
    the same floats; a bf16 x is scaled in fp32 before the sum, so within one bf16 rounding), and gradients:
    the residual's passes through, x's is masked and scaled."""
    res = torch.randn(300, 64, requires_grad=True)
    x = torch.randn(300, 64, dtype=dtype, requires_grad=True)
    torch.manual_seed(11)
    y = residual_dropout(res, x, 0.1, True)
    torch.manual_seed(11)
    ref = res.detach() + dropout(x.detach(), 0.1, True)
    assert y.dtype == ref.dtype == torch.float32
    if dtype == torch.float32:
        assert torch.equal(y, ref)
    else:
        torch.testing.assert_close(y, ref, rtol=0.01, atol=0.01)
    kept = (y - res.detach()) != 0
    assert 0.85 < kept.float().mean().item() < 0.95
    g = torch.randn(300, 64)
    y.backward(g)
    assert torch.equal(res.grad, g)
    assert x.grad.dtype == dtype
    torch.testing.assert_close(x.grad.float(), (g * kept / 0.9).to(dtype).float())
    assert residual_dropout(res, x, 0.1, False).equal(res + x)
    # another shape (broadcast) or no dropout: the plain sum of the two
    assert residual_dropout(res, x[:1], 0.0, True).equal(res + x[:1])


def test_row_grad_embedding_state_dict_is_nn_embeddings():
    emb = RowGradEmbedding(10, 4)
    emb(torch.tensor([1, 2])).sum().backward()
    assert list(emb.state_dict()) == ["weight"] and [n for n, _ in emb.named_parameters()] == ["weight"]


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_norm_project_equals_layernorm_then_linear(precision):
    """`norm_project` (no input gradient; the weight and LayerNorm gradients from one g^T xhat product): the same
    output and parameter gradients as autograd through LayerNorm and Linear, with a trained-looking gamma and beta,
    under bf16 autocast too (row counts bucketed there)."""
    from hero.model.embeddings import norm_project
    from hero.model.linear import Linear

    torch.manual_seed(0)
    norm, proj = nn.LayerNorm(40, eps=1e-5), Linear(40, 12)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
        norm.bias.normal_(0, 0.3)
    x = torch.randn(3, 37, 40) * 4 + 1
    params = [norm.weight, norm.bias, proj.weight, proj.bias]
    autocast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if precision == "bf16" else contextlib.nullcontext
    tol = {"atol": 5e-2, "rtol": 3e-2} if precision == "bf16" else {"atol": 1e-4, "rtol": 1e-4}
    results = []
    for fused in (True, False):
        with autocast():
            y = norm_project(x, norm, proj) if fused else proj(norm(x))
        weights = torch.linspace(-1, 1, y.numel()).view_as(y)
        results.append((y.float(), torch.autograd.grad((y.float() * weights).sum(), params)))
    (y, grads), (y_ref, grads_ref) = results
    assert y.shape == y_ref.shape == (3, 37, 12)
    torch.testing.assert_close(y, y_ref, **tol)
    for g, g_ref in zip(grads, grads_ref):
        assert g.dtype == torch.float32
        torch.testing.assert_close(g, g_ref, **tol)


@pytest.mark.parametrize("compat", ["native", "original"])
def test_frame_projection_under_mfm_equals_reference_with_mask_vector_gradient(compat):
    """The default path projects MFM's mask vector once for every masked frame; the reference projects each masked
    frame's input: same outputs and gradients (mask vector included), also with the original's unmasked vector."""
    p = _preset(compat)
    b = _batch(p)
    model = Hero(p.model).train()
    emb = model.frame_embed
    with torch.no_grad():
        emb.mask_vector.normal_(0, 0.5)
        if emb.unmasked_vector is not None:
            emb.unmasked_vector.normal_(0, 0.1)
    masked = mask_frames(b.frame_mask, prob=0.3, generator=torch.Generator().manual_seed(1))
    feats = b.frame_feats.masked_fill(masked.unsqueeze(-1), 0.0)
    params = [emb.mask_vector, emb.feat_norm.weight, emb.feat_norm.bias, emb.proj.weight, emb.proj.bias]
    outs = {}
    for reference in (True, False):
        emb.reference_path = reference
        y = emb.project(feats, masked)
        outs[reference] = (y, torch.autograd.grad((y * torch.linspace(-1, 1, y.numel()).view_as(y)).sum(), params))
    torch.testing.assert_close(outs[False][0], outs[True][0], **TOL)
    for g, g_ref in zip(outs[False][1], outs[True][1]):
        torch.testing.assert_close(g, g_ref, atol=1e-4, rtol=1e-4)
    assert outs[True][1][0].abs().sum() > 0
    emb.reference_path = False                               # features MFM did not zero: the general form
    y = emb.project(b.frame_feats, masked)
    emb.reference_path = True
    torch.testing.assert_close(y, emb.project(b.frame_feats, masked), **TOL)
