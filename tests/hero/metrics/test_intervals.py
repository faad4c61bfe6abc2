"""The paired bootstrap over examples and seeds: coverage, width, the degenerate and the obvious cases."""

import numpy as np
import pytest

from hero.metrics.intervals import as_matrix, bootstrap_mean, paired_bootstrap, per_example_matrix

TRUE_DIFF = 0.3


def simulate(rng, seeds_a, seeds_b, n=80, seed_sd=0.1):
    """Two arms on the same n examples: a shared difficulty, an arm-specific example effect, a per-seed shift
    and per-(seed, example) noise. The population difference of the means is TRUE_DIFF."""
    shared = rng.normal(0, 1, (1, n))

    def arm(mean, seeds):
        return (mean + shared + 0.7 * rng.normal(0, 1, (1, n)) + seed_sd * rng.normal(0, 1, (seeds, 1))
                + 0.5 * rng.normal(0, 1, (seeds, n)))

    return arm(TRUE_DIFF, seeds_a), arm(0.0, seeds_b)


@pytest.mark.parametrize("seeds, seed_sd", [(3, 0.1), (1, 0.0)])
def test_interval_covers_the_true_difference_at_about_the_nominal_rate(seeds, seed_sd):
    rng = np.random.default_rng(0)
    covered = 0
    for i in range(200):
        a, b = simulate(rng, seeds, seeds, seed_sd=seed_sd)
        iv = paired_bootstrap(a, b, n_boot=200, seed=i)
        covered += iv.low <= TRUE_DIFF <= iv.high
    assert 0.9 <= covered / 200 <= 0.99


def test_pairing_removes_the_shared_example_difficulty():
    # the same arms resampled unpaired (independent example draws) would carry the shared difficulty's variance
    rng = np.random.default_rng(1)
    a, b = simulate(rng, 1, 1, n=200)
    paired = paired_bootstrap(a, b, n_boot=500)
    ra, rb = bootstrap_mean(a, n_boot=500, seed=1), bootstrap_mean(b, n_boot=500, seed=2)
    unpaired_width = np.hypot(ra.high - ra.low, rb.high - rb.low)
    assert paired.high - paired.low < 0.8 * unpaired_width


def test_interval_shrinks_with_more_examples():
    rng = np.random.default_rng(2)
    widths = []
    for n in (50, 800):
        a, b = simulate(rng, 3, 3, n=n, seed_sd=0.0)
        iv = paired_bootstrap(a, b, n_boot=500)
        widths.append(iv.high - iv.low)
    assert widths[1] < 0.5 * widths[0]


def test_identical_arms_give_exactly_zero():
    a = np.random.default_rng(3).random((3, 40))
    iv = paired_bootstrap(a, a.copy(), n_boot=300)
    assert (iv.estimate, iv.low, iv.high) == (0.0, 0.0, 0.0)
    assert not iv.excludes_zero


def test_a_huge_difference_excludes_zero_and_its_sign_is_kept():
    rng = np.random.default_rng(4)
    hit = (rng.random((3, 100)) < 0.9).astype(float) * 100
    miss = (rng.random((2, 100)) < 0.1).astype(float) * 100
    up = paired_bootstrap(hit, miss, n_boot=300)
    down = paired_bootstrap(miss, hit, n_boot=300)
    assert up.low > 0 and up.excludes_zero
    assert down.high < 0 and down.excludes_zero
    assert up.estimate == pytest.approx(hit.mean() - miss.mean())


def test_deterministic_given_the_seed_and_the_estimate_is_the_plain_mean_difference():
    rng = np.random.default_rng(5)
    a, b = simulate(rng, 3, 2)
    first, again, other = (paired_bootstrap(a, b, n_boot=300, seed=s) for s in (7, 7, 8))
    assert first == again
    assert (first.low, first.high) != (other.low, other.high)
    assert first.estimate == pytest.approx(a.mean() - b.mean())
    assert first.low < first.estimate < first.high


def test_unequal_seed_counts_resample_seeds_per_arm():
    # arm a has 4 seeds that disagree strongly, arm b one seed: a's seed spread must widen the interval
    rng = np.random.default_rng(6)
    base = rng.normal(0, 1, (1, 100))
    steady = np.repeat(base, 4, axis=0)
    spread = base + np.array([[-2.0], [-1.0], [1.0], [2.0]])
    narrow = paired_bootstrap(steady, base, n_boot=500)
    wide = paired_bootstrap(spread, base, n_boot=500)
    assert narrow.high - narrow.low < 1e-12
    assert wide.high - wide.low > 1.0


def test_bootstrap_mean_of_one_arm():
    # no seed effect: the width is about the normal interval's, 2 x 1.96 x sd / sqrt(seeds x examples)
    rng = np.random.default_rng(7)
    a = rng.normal(5.0, 1.0, (2, 400))
    iv = bootstrap_mean(a, n_boot=500)
    assert iv.estimate == pytest.approx(a.mean())
    assert iv.low < iv.estimate < iv.high
    assert 0.7 < (iv.high - iv.low) / (2 * 1.96 * a.std() / np.sqrt(a.size)) < 1.5
    flat = bootstrap_mean(np.full((3, 10), 2.0), n_boot=50)
    assert flat.low == pytest.approx(2.0, abs=1e-12) and flat.high == pytest.approx(2.0, abs=1e-12)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="same examples"):
        paired_bootstrap(np.zeros((2, 5)), np.zeros((2, 6)))
    with pytest.raises(ValueError, match="b: per-example values must be finite"):
        paired_bootstrap(np.zeros(3), np.array([0.0, np.nan, 1.0]))
    with pytest.raises(ValueError, match="n_boot"):
        bootstrap_mean(np.zeros(3), n_boot=0)
    with pytest.raises(ValueError, match="alpha"):
        bootstrap_mean(np.zeros(3), alpha=1.5)
    with pytest.raises(ValueError, match=r"a: expected a non-empty \[seeds, examples\]"):
        as_matrix(np.zeros((2, 0)), "a")


def test_per_example_matrix_aligns_seeds_by_id():
    ids, m = per_example_matrix([{"q1": 1.0, "q2": 0.0}, {"q2": 100.0, "q1": 0.0}], ids=["q2", "q1"])
    assert ids == ["q2", "q1"]
    assert m.tolist() == [[0.0, 1.0], [100.0, 0.0]]
    with pytest.raises(ValueError, match=r"scratch\[1\]: its example ids differ"):
        per_example_matrix([{"q1": 1.0}, {"q3": 1.0}], what="scratch")
