"""Subnormal flushing (hero.train.precision)."""


def test_flushing_subnormals_leaves_numpy_float_limits_intact():
    """Flushing before numpy computes its float limits made np.finfo warn ("smallest subnormal ... is zero") on
    every training job's first use of numpy; a fresh process shows it."""
    import subprocess
    import sys

    code = ("import warnings; warnings.simplefilter('error')\n"
            "from hero.train.precision import flush_denormals; flush_denormals()\n"
            "import numpy as np; np.finfo(np.float64).smallest_subnormal; np.finfo(np.float32).smallest_subnormal\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
