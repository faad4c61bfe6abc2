"""Bucketed row counts for CPU bf16 products (`hero.model.linear`): the same results, and the shapes the kernels see."""

import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from hero.model.linear import Linear, bucket, kernels_built_per_shape, linear
from hero.train.bench import _trainer, bench_config


def test_bucket_rounds_up_by_at_most_an_eighth_to_eight_sizes_per_octave():
    for rows in range(1, 5000):
        b = bucket(rows)
        assert rows <= b <= max(rows + 15, rows * 9 // 8 + 1), rows
        assert b % 16 == 0
    assert len({bucket(r) for r in range(1025, 2049)}) == 8
    assert bucket(900) == 960 and bucket(117) == 128 and bucket(256) == 256


def test_kernels_built_per_shape_only_for_cpu_low_precision():
    x = torch.zeros(3, 4)
    assert not kernels_built_per_shape(x)
    assert kernels_built_per_shape(x.bfloat16())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert kernels_built_per_shape(x)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=False):
        assert not kernels_built_per_shape(x)


def test_fp32_is_plain_linear_bit_for_bit():
    torch.manual_seed(0)
    lin = Linear(8, 5)
    x = torch.randn(3, 7, 8)
    assert torch.equal(lin(x), F.linear(x, lin.weight, lin.bias))


@pytest.mark.parametrize("shape", [(37, 16), (5, 9, 16), (256, 16)])
def test_bf16_autocast_same_values_and_gradients_as_f_linear(shape):
    torch.manual_seed(0)
    lin = Linear(16, 24)
    x = torch.randn(*shape, requires_grad=True)
    outs, grads = [], []
    for buckets in (True, False):
        lin.bucket_rows = buckets
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = lin(x)
        assert y.shape == (*shape[:-1], 24) and y.dtype == torch.bfloat16 and y.is_contiguous()
        g = torch.autograd.grad(y.float().square().sum(), (x, lin.weight, lin.bias))
        outs.append(y.float())
        grads.append(g)
    torch.testing.assert_close(outs[0], outs[1], atol=2e-2, rtol=2e-2)
    for a, b in zip(*grads):
        assert a.dtype == b.dtype == torch.float32
        torch.testing.assert_close(a, b, atol=5e-2, rtol=2e-2)


def test_zero_rows_pass_through():
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert linear(torch.zeros(0, 4), torch.zeros(3, 4)).shape == (0, 3)


class _MatmulShapes(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.rows: list[tuple[str, int, torch.dtype]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = str(func.overloadpacket)
        if name in ("aten.mm", "aten.addmm"):
            a, b = (args[1], args[2]) if name == "aten.addmm" else (args[0], args[1])
            self.rows.append((name, a.shape[0], a.dtype))   # M of the product (K of a weight gradient is a's rows)
            self.rows.append((name, a.shape[1], a.dtype))
        return func(*args, **(kwargs or {}))


def test_a_bf16_training_step_runs_every_large_product_at_bucketed_sizes():
    """Through the real Trainer on the benchmark's job (MLM with the tied decoder, MFM, FOM, VSM): every bf16 product's
    row count and inner size is a `bucket` size or one of the model's fixed widths; the reference path's are not."""
    loader = _trainer(bench_config("hero-tiny", "fp32", steps=8, frames=(9, 13)), False)._loader()
    batches = [next(loader) for _ in range(4)]
    fixed = set()
    found = {}
    for reference in (False, True):
        tr = _trainer(bench_config("hero-tiny", "bf16", frames=(9, 13)), reference)
        cfg = tr.model.encoder.cfg
        fixed = {1, cfg.hidden_size, 2 * cfg.hidden_size, 3 * cfg.hidden_size, cfg.intermediate_size, cfg.feature_dim,
                 cfg.vocab_size, cfg.embedding_rows, cfg.max_frames}
        shapes = _MatmulShapes()
        with shapes:
            for b in batches:
                tr.train_step([b])
        sizes = {n for name, n, dt in shapes.rows if dt == torch.bfloat16}
        found[reference] = {n for n in sizes if n not in fixed and n != bucket(n)}
    assert not found[False], f"unbucketed bf16 product sizes on the default path: {sorted(found[False])}"
    assert found[True], "the reference path should run products at the batch's own sizes"
