"""Training on the default path gives the reference path's results (no dropout: the paths draw their masks
differently), and precision ``auto`` resolves as documented."""

import pytest
import torch

from hero.train.config import RunConfig
from hero.train.distributed import DistInfo
from hero.train.precision import autocast, cpu_has_fast_bf16, resolve_precision
from hero.train.trainer import Trainer


def _cfg(tmp_path, name: str, optim: dict | None = None, **train) -> RunConfig:
    return RunConfig.from_dict({
        "preset": "hero-tiny", "model": {"dropout": 0.0, "attention_dropout": 0.0, "cross_layers": 2},
        "data": {"source": "random", "size": 64, "frames": [4, 8], "sub_len": [3, 6]},
        "optim": {"lr": 1e-3, "warmup_steps": 1, **(optim or {})},
        "train": {"global_batch": 4, "micro_batch": 2, "max_steps": 8, "log_every": 100, "seed": 3, "sinks": [],
                  "run_dir": str(tmp_path / name), **train},
    })


@pytest.mark.parametrize("grad_clip", [1.0, 0.05])
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_default_path_trains_like_the_reference_path(tmp_path, precision, grad_clip):
    """fp32 within float rounding; bf16 autocast (where the CPU runs it natively: elsewhere it is a reference loop)
    within bf16 rounding, the same for both paths' sums in another order. The reference path clips with torch's
    `clip_grad_norm_`; the default one hands the coefficient to the fused AdamW step and takes the word table's
    norm over the rows a lookup-only step wrote (``grad_clip`` 0.05: every step is clipped)."""
    if precision == "bf16" and not cpu_has_fast_bf16():
        pytest.skip("no native bf16 on this CPU")
    tol = {"atol": 1e-5, "rtol": 1e-4} if precision == "fp32" else {"atol": 2e-2, "rtol": 2e-2}
    runs = {}
    for reference in (True, False):
        cfg = _cfg(tmp_path, f"ref{reference}", optim={"grad_clip": grad_clip}, precision=precision)
        tr = Trainer(cfg, DistInfo(), sinks=[]).use_reference_path(reference)
        it = tr._loader()
        logs = [tr.train_step([next(it) for _ in range(tr.layout.accum)]) for _ in range(8)]
        assert not hasattr(tr.optimizer, "grad_scale")
        runs[reference] = ([m["loss"] for m in logs], {n: p.detach().clone() for n, p in tr.model.named_parameters()},
                           [m["grad_norm"] for m in logs])
    tasks = {Trainer(_cfg(tmp_path, "t"), DistInfo(), sinks=[]).tasks.task_at(s) for s in range(8)}
    assert "mlm" in tasks and tasks - {"mlm"}           # tied (dense) and sparse-only embedding steps both ran
    if grad_clip < 1:
        assert min(runs[False][2]) > grad_clip          # the clipping branch ran on every step
    torch.testing.assert_close(runs[False][0], runs[True][0], **tol)
    torch.testing.assert_close(runs[False][2], runs[True][2], **tol)
    for name, ref in runs[True][1].items():
        torch.testing.assert_close(runs[False][1][name], ref, **tol, msg=name)


def test_clipping_folded_into_the_fused_step_and_row_norms_match_torch():
    """`clip_grad_norm(..., rows=, optimizer=)`: the norm over the given rows equals the full norm when the
    gradient is zero elsewhere; the coefficient handed to the fused AdamW step gives the parameters of torch's
    clip-then-step within float rounding; the scale is removed after the step; an unfused optimizer is clipped
    in place instead."""
    from hero.train.optim import clip_grad_norm, scales_in_step, take_step_scale

    torch.manual_seed(0)
    for fused in (True, False):
        ours = [torch.nn.Parameter(torch.randn(50, 4)), torch.nn.Parameter(torch.randn(6))]
        theirs = [torch.nn.Parameter(p.detach().clone()) for p in ours]
        opt_o = torch.optim.AdamW(ours, lr=0.1, weight_decay=0.01, fused=fused)
        opt_t = torch.optim.AdamW(theirs, lr=0.1, weight_decay=0.01, fused=fused)
        assert scales_in_step(opt_o) == fused
        for step in range(3):
            table = torch.zeros(50, 4)
            rows = torch.tensor([3, 17, 40 + step])
            table[rows] = torch.randn(3, 4)
            grads = [table, torch.randn(6)]
            for a, b, g in zip(ours, theirs, grads):
                a.grad, b.grad = g.clone(), g.clone()
            norm = clip_grad_norm(ours, 0.5, rows={ours[0]: rows}, optimizer=opt_o)
            expected = torch.nn.utils.clip_grad_norm_(theirs, 0.5)
            torch.testing.assert_close(norm, expected)
            assert norm > 0.5 and hasattr(opt_o, "grad_scale") == fused
            opt_o.step()
            take_step_scale(opt_o)
            opt_t.step()
            assert not hasattr(opt_o, "grad_scale")
            for a, b in zip(ours, theirs):
                torch.testing.assert_close(a.detach(), b.detach(), atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("max_norm", [0.0, 0.05, 1e3])
def test_clip_grad_norm_gives_torchs_norm_and_gradients(max_norm):
    """The trainer's clipping (no multiply when the coefficient is 1) leaves torch's values, bit for bit."""
    from hero.train.optim import clip_grad_norm

    torch.manual_seed(0)
    ours = [torch.nn.Parameter(torch.randn(7, 3)) for _ in range(3)]
    theirs = [torch.nn.Parameter(p.detach().clone()) for p in ours]
    for a, b in zip(ours, theirs):
        a.grad = torch.randn(7, 3) * 0.1
        b.grad = a.grad.clone()
    norm = clip_grad_norm(ours, max_norm)
    expected = torch.nn.utils.clip_grad_norm_(theirs, max_norm if max_norm > 0 else float("inf"))
    assert torch.equal(norm, expected)
    for a, b in zip(ours, theirs):
        assert torch.equal(a.grad, b.grad)
    if max_norm == 0.05:   # the clipping branch ran: the gradients were scaled down to the bound
        assert norm > 0.05 and abs(float(torch.nn.utils.get_total_norm([a.grad for a in ours])) - 0.05) < 1e-4


def test_precision_auto():
    cpu = torch.device("cpu")
    assert resolve_precision("fp32", cpu) == "fp32" and resolve_precision("bf16", cpu) == "bf16"
    assert resolve_precision("auto", cpu) == ("bf16" if cpu_has_fast_bf16() else "fp32")
    assert not cpu_has_fast_bf16({"avx2", "avx512f"})  # no bf16 instructions: fp32
    with autocast("auto", cpu)():
        y = torch.ones(2, 2) @ torch.ones(2, 2)
    assert y.dtype == (torch.bfloat16 if cpu_has_fast_bf16() else torch.float32)


def test_config_accepts_precision_auto(tmp_path):
    assert _cfg(tmp_path, "a", precision="auto").train.precision == "auto"


def test_runtime_record_names_the_resolved_precision_and_a_resume_that_changed_it(tmp_path, caplog):
    """``runtime.json`` says what ``auto`` became on this machine; a resume whose record says another precision
    (the run started on a machine of the other kind) warns that its steps are no longer an uninterrupted run's."""
    import json
    import logging

    from hero.train.main import run

    cfg = _cfg(tmp_path, "rt", precision="auto", max_steps=2, ckpt_every=1)
    run(cfg.override("train.stop_after=1"))
    path = tmp_path / "rt" / "runtime.json"
    record = json.loads(path.read_text())
    assert record["precision"] == resolve_precision("auto", torch.device("cpu"))
    assert record["precision_requested"] == "auto" and record["threads"] == torch.get_num_threads()
    other = "fp32" if record["precision"] == "bf16" else "bf16"
    path.write_text(json.dumps({**record, "precision": other}))
    with caplog.at_level(logging.WARNING, logger="hero.train.trainer"):
        run(cfg)
    assert f"trained in {other} before" in caplog.text
    assert json.loads(path.read_text())["started_in"] == other


@pytest.mark.slow
def test_bf16_loss_curve_follows_fp32(tmp_path):
    """200 steps of hero-tiny pretraining (dropout on) in bf16 autocast and in fp32 from the same start: the
    loss averaged over each 40-step window agrees within 5%."""
    curves = {}
    for prec in ("fp32", "bf16"):
        cfg = _cfg(tmp_path, prec, precision=prec, max_steps=200, micro_batch=4)
        cfg = cfg.override("model.dropout=0.1", "model.attention_dropout=0.1")
        tr = Trainer(cfg, DistInfo(), sinks=[])
        it = tr._loader()
        curves[prec] = torch.tensor([tr.train_step([next(it)])["loss"] for _ in range(200)])
    windows = {p: c.view(5, 40).mean(1) for p, c in curves.items()}
    assert windows["fp32"][-1] < windows["fp32"][0]     # it learns
    rel = ((windows["bf16"] - windows["fp32"]).abs() / windows["fp32"]).max()
    assert rel < 0.05, f"bf16 vs fp32 window means differ by {rel:.3f}: {windows}"
