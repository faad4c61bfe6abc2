"""The packed CPU attention (`hero.model.packed_attention`) against torch's SDPA on the padded layout."""

import math

import pytest
import torch
import torch.nn.functional as F

from hero.model.dropout import _keep_mask
from hero.model.packed_attention import packed_attention
from hero.model.transformer import Packing, attention_mask

B, L, H, HD = 3, 9, 2, 4
D = H * HD


def _setup(dtype=torch.float64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    valid = torch.rand(B, L, generator=gen) > 0.35
    valid[:, 0] = True
    valid[1, 1:] = False                                    # a sequence of one position
    packing = Packing.of(valid)
    qkv = torch.randn(packing.index.numel(), 3 * D, generator=gen, dtype=torch.float64).to(dtype)
    return valid, packing, qkv.requires_grad_()


def _sdpa(qkv, valid, packing, mode, select=None):
    q, k, v = packing.unpack(qkv).view(B, L, 3, H, HD).permute(2, 0, 3, 1, 4)
    y = F.scaled_dot_product_attention(q, k, v, attn_mask=attention_mask(valid, mode, qkv.dtype))
    y = packing.pack(y.transpose(1, 2).reshape(B, L, D))
    return y if select is None else y[select]


@pytest.mark.parametrize("mode", ["boolean", "additive"])
@pytest.mark.parametrize("selected", [False, True])
def test_equals_sdpa_forward_and_backward(mode, selected):
    valid, packing, qkv = _setup()
    select = torch.arange(0, packing.index.numel(), 2) if selected else None
    mask = attention_mask(valid, mode, qkv.dtype)
    y = packed_attention(qkv, mask, packing.index, packing.shape, H, 0.0, select)
    g = torch.randn_like(y)
    (grad,) = torch.autograd.grad((y * g).sum(), qkv)
    ref = _sdpa(qkv, valid, packing, mode, select)
    (ref_grad,) = torch.autograd.grad((ref * g).sum(), qkv)
    torch.testing.assert_close(y, ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-12, atol=1e-12)


def test_gradcheck():
    valid, packing, qkv = _setup(seed=1)
    mask = attention_mask(valid, "boolean", qkv.dtype)
    assert torch.autograd.gradcheck(lambda t: packed_attention(t, mask, packing.index, packing.shape, H, 0.0), (qkv,))


def test_dropout_is_the_cheap_mask_on_the_probabilities():
    """The one random draw of a call is the keep-mask of the [B*h, L, L] probabilities (so a seed fixes it); the
    output and gradient are those of softmax(scores) * keep / (1 - p) @ v."""
    valid, packing, qkv = _setup()
    mask = attention_mask(valid, "boolean", qkv.dtype)
    p = 0.25
    torch.manual_seed(3)
    y = packed_attention(qkv, mask, packing.index, packing.shape, H, p)
    g = torch.randn_like(y)
    (grad,) = torch.autograd.grad((y * g).sum(), qkv)
    torch.manual_seed(3)
    keep = _keep_mask(torch.Size([B * H, L, L]), p, qkv.device, qkv.dtype)
    q, k, v = packing.unpack(qkv).view(B, L, 3, H, HD).permute(2, 0, 3, 1, 4).reshape(3, B * H, L, HD)
    scores = q @ k.transpose(1, 2) / math.sqrt(HD) + torch.where(valid, 0.0, -math.inf).repeat_interleave(H, 0)[:, None]
    ref = (scores.softmax(-1) * keep / (1 - p)) @ v
    ref = packing.pack(ref.view(B, H, L, HD).transpose(1, 2).reshape(B, L, D))
    (ref_grad,) = torch.autograd.grad((ref * g).sum(), qkv)
    torch.testing.assert_close(y, ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-12, atol=1e-12)
    assert 0.6 < keep.mean().item() < 0.9


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_low_precision_inputs_are_computed_in_fp32(dtype):
    """As torch's math path on the CPU: bf16 projections are attended in fp32; the gradient comes back in bf16."""
    valid, packing, qkv = _setup(dtype=dtype)
    mask = attention_mask(valid, "boolean", torch.float32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = packed_attention(qkv, mask, packing.index, packing.shape, H, 0.0)
    assert y.dtype == torch.float32
    ref = _sdpa(qkv.detach().float(), valid, packing, "boolean")
    torch.testing.assert_close(y, ref, rtol=1e-5, atol=1e-5)
    y.sum().backward()
    assert qkv.grad.dtype == dtype


@pytest.mark.parametrize("length", [5, 15, 16, 40])
def test_softmax_of_short_and_long_rows_equals_torchs(length):
    """Rows shorter than torch's vector width go through max / exp / sum (torch's kernel is slow there): the same
    values and gradients, with -inf (masked) entries too."""
    from hero.model.packed_attention import _softmax_, _softmax_backward_

    gen = torch.Generator().manual_seed(length)
    scores = torch.randn(6, length, length, generator=gen, dtype=torch.float64)
    scores[:, :, -1] = -math.inf
    grad = torch.randn(6, length, length, generator=gen, dtype=torch.float64)
    probs = _softmax_(scores.clone())
    torch.testing.assert_close(probs, scores.softmax(-1), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(_softmax_backward_(grad.clone(), probs),
                               torch._softmax_backward_data(grad, probs, -1, probs.dtype), rtol=1e-12, atol=1e-12)
