"""Confidence intervals for a metric and for the difference of two arms, by a bootstrap over examples and seeds.

An arm is a matrix ``[seeds, examples]`` of per-example metric values (one row per training seed, the columns the
same evaluation examples in the same order, e.g. from ``DownstreamTask.per_example``); its metric is the mean of
the matrix, i.e. the mean over seeds of each seed's score.

One bootstrap replicate draws, with replacement,

- ``examples`` column indices: the same indices for both arms (the comparison is *paired*: both arms are judged on
  the same resampled test set, so the difficulty of the examples cancels out of the difference);
- ``seeds`` row indices: the same indices for both arms when they have the same number of seeds (seed ``i`` of
  both arms shares its data order and initialisation draw), otherwise each arm's rows independently;

and computes the resampled mean of each arm and their difference. The interval is the percentile interval: the
``alpha / 2`` and ``1 - alpha / 2`` quantiles of the ``n_boot`` replicates (numpy's linear interpolation). The
point estimate is the difference of the plain means, not of the replicates. Everything is deterministic given
``seed`` (numpy's PCG64). With one seed per arm, only the examples are resampled (the seed draw is then a no-op),
so the interval says nothing about training noise; use several seeds for that.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

_CHUNK = 256
"""Replicates drawn and reduced at a time, bounding memory at [_CHUNK, examples] weights; fixed, so the draws (and
the intervals) do not depend on the machine."""


@dataclass(frozen=True)
class Interval:
    """A point estimate and its percentile bootstrap interval (same units as the per-example values)."""

    estimate: float
    low: float
    high: float
    n_boot: int
    alpha: float

    @property
    def excludes_zero(self) -> bool:
        """The whole interval lies strictly above or strictly below 0."""
        return self.low > 0.0 or self.high < 0.0


def as_matrix(values: np.ndarray | Sequence[float] | Sequence[Sequence[float]], what: str = "values") -> np.ndarray:
    """``[seeds, examples]`` float64 from a matrix, or from one vector (a single seed).

    Raises:
        ValueError: not 1-D/2-D, no seed or no example, or a value that is not finite (``what`` names the input).
    """
    a = np.asarray(values, dtype=np.float64)
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2 or a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(f"{what}: expected a non-empty [seeds, examples] matrix, got shape {np.shape(values)}")
    if not np.isfinite(a).all():
        raise ValueError(f"{what}: per-example values must be finite (found NaN or inf)")
    return a


def per_example_matrix(runs: Sequence[Mapping[str, float]], ids: Sequence[str] | None = None,
                       what: str = "runs") -> tuple[list[str], np.ndarray]:
    """One arm's ``[seeds, examples]`` matrix from its per-seed ``{example id: value}`` dicts.

    Args:
        runs: one dict per seed (e.g. ``per_example(...)[metric]`` of each seed's predictions).
        ids: the column order (default: the first run's). Every run must hold exactly these ids.
    Raises:
        ValueError: no run, or a run whose ids differ from ``ids`` (names the run and an id that differs).
    """
    if not runs:
        raise ValueError(f"{what}: no runs")
    cols = list(ids) if ids is not None else list(runs[0])
    want = set(cols)
    for i, run in enumerate(runs):
        if set(run) != want:
            odd = sorted(set(run) ^ want)[:3]
            raise ValueError(f"{what}[{i}]: its example ids differ from the others' (e.g. {odd}); every seed and "
                             "arm must be scored on the same examples")
    return cols, as_matrix([[run[c] for c in cols] for run in runs], what)


def _check(n_boot: int, alpha: float) -> None:
    if n_boot < 1:
        raise ValueError(f"n_boot: must be >= 1, got {n_boot}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha: must be in (0, 1), got {alpha}")


def _weights(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """[size, n] resampling weights: counts of n draws with replacement from n items, divided by n."""
    idx = rng.integers(0, n, size=(size, n)) + n * np.arange(size)[:, None]
    return np.bincount(idx.ravel(), minlength=size * n).reshape(size, n) / n


def _replicates(arms: Sequence[np.ndarray], n_boot: int, seed: int) -> list[np.ndarray]:
    """Each arm's resampled mean in each of ``n_boot`` replicates: [n_boot] per arm. The example draw is shared;
    the seed draw is shared when all arms have the same number of seeds, else drawn per arm."""
    rng = np.random.default_rng(seed)
    n_examples = arms[0].shape[1]
    shared_seeds = len({a.shape[0] for a in arms}) == 1
    out: list[list[np.ndarray]] = [[] for _ in arms]
    for start in range(0, n_boot, _CHUNK):
        size = min(_CHUNK, n_boot - start)
        ex = _weights(rng, n_examples, size)                                         # [size, E]
        seeds = _weights(rng, arms[0].shape[0], size) if shared_seeds else None
        for i, a in enumerate(arms):
            sw = seeds if seeds is not None else _weights(rng, a.shape[0], size)     # [size, S]
            # mean of the resampled matrix = seed weights . a . example weights, per replicate
            out[i].append((np.einsum("bs,se->be", sw, a) * ex).sum(axis=1))
    return [np.concatenate(r) for r in out]


def _interval(estimate: float, reps: np.ndarray, n_boot: int, alpha: float) -> Interval:
    low, high = np.quantile(reps, [alpha / 2, 1 - alpha / 2])
    return Interval(estimate=estimate, low=float(low), high=float(high), n_boot=n_boot, alpha=alpha)


def bootstrap_mean(a: np.ndarray | Sequence[Sequence[float]], n_boot: int = 2000, seed: int = 0,
                   alpha: float = 0.05) -> Interval:
    """One arm's mean over seeds and examples with its percentile interval (seeds and examples resampled).

    a: [seeds, examples] (or [examples] for one seed).
    """
    _check(n_boot, alpha)
    m = as_matrix(a, "a")
    (reps,) = _replicates([m], n_boot, seed)
    return _interval(float(m.mean()), reps, n_boot, alpha)


def paired_bootstrap(a: np.ndarray | Sequence[Sequence[float]], b: np.ndarray | Sequence[Sequence[float]],
                     n_boot: int = 2000, seed: int = 0, alpha: float = 0.05) -> Interval:
    """mean(a) - mean(b) with its paired percentile interval (see the module docstring).

    Args:
        a, b: [seeds, examples] per-example values of two arms on the same examples, columns in the same order
            (a 1-D array is one seed). The seed counts may differ.
    Raises:
        ValueError: the arms have different numbers of examples, or bad values / n_boot / alpha.
    """
    _check(n_boot, alpha)
    ma, mb = as_matrix(a, "a"), as_matrix(b, "b")
    if ma.shape[1] != mb.shape[1]:
        raise ValueError(f"a has {ma.shape[1]} examples and b {mb.shape[1]}: a paired comparison needs the same "
                         "examples in both arms")
    ra, rb = _replicates([ma, mb], n_boot, seed)
    return _interval(float(ma.mean()) - float(mb.mean()), ra - rb, n_boot, alpha)


__all__ = ["Interval", "as_matrix", "bootstrap_mean", "paired_bootstrap", "per_example_matrix"]
