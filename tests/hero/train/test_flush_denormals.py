"""`flush_denormals` (x86 FTZ/DAZ, set by every training process) leaves numpy's float limits true and quiet:
computed after flushing, numpy finds the smallest subnormal equal to 0 and warns on every job's stderr."""

import subprocess
import sys

SCRIPT = """
import warnings
warnings.simplefilter("always")
import numpy as np, torch
from hero.train.precision import flush_denormals
flush_denormals()
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    # the bits, not the value: under DAZ a subnormal reads as 0 in any arithmetic, conversions included
    tiny = [np.finfo(t).smallest_subnormal.tobytes().hex() for t in (np.float16, np.float32, np.float64)]
    torch.zeros(3).numpy().sum()
print(repr((torch.set_flush_denormal(True), tiny, [str(w.message) for w in caught])))
"""


def test_numpy_limits_are_computed_before_subnormals_are_flushed():
    # a fresh process: flushing is per process (and per thread), and numpy caches its limits on first use
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "Warning" not in out.stderr, out.stderr[-2000:]
    flushed, tiny, caught = eval(out.stdout.strip().splitlines()[-1])  # noqa: S307 (our own print)
    assert caught == []
    if flushed:  # the CPU flushes subnormals: numpy still knows them
        assert all(set(t) != {"0"} for t in tiny), tiny  # not the cached zero
