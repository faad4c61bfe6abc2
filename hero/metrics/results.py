"""The results table: per (task, metric), each arm's mean over seeds with its 95% interval, reference rows given
as plain numbers (chance, a text-only baseline), and the paired difference of two arms with a verdict.

The verdict is read off the interval of the difference (`hero.metrics.intervals.paired_bootstrap`), never off the
point estimates: ``gain`` when the whole interval is above 0, ``loss`` when it is below, ``no difference``
otherwise (an interval touching 0 included). Inputs are per-example values (``DownstreamTask.per_example``), one
set per seed and arm, on the same examples for every arm. ``intervals_section`` is the method's description for
the report.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from hero.metrics.intervals import Interval, as_matrix, bootstrap_mean, paired_bootstrap, per_example_matrix

ArmValues = np.ndarray | Sequence[Mapping[str, float]]
"""One arm's per-example values: a [seeds, examples] matrix, or one ``{example id: value}`` dict per seed."""

GAIN, LOSS, NO_DIFFERENCE = "gain", "loss", "no difference"
MISSING = "–"


@dataclass(frozen=True)
class MetricResults:
    """One row's inputs: a metric of a task, each arm's per-example values, and reference numbers."""

    task: str
    metric: str
    arms: Mapping[str, ArmValues]
    """Arm name (``pretrained``, ``scratch``, a variant) -> its values; every arm on the same examples."""
    references: Mapping[str, float | None] = field(default_factory=dict)
    """Reference name (``chance``, ``text-only``) -> its value in the metric's units (None: not computed)."""


@dataclass(frozen=True)
class RowSummary:
    """One row of the table, as numbers (what the markdown shows; also what a tracker would log)."""

    task: str
    metric: str
    examples: int
    seeds: dict[str, int]
    arms: dict[str, Interval]
    references: dict[str, float | None]
    differences: dict[tuple[str, str], Interval | None]
    """(treatment, control) -> mean(treatment) - mean(control) with its paired interval; None when an arm is absent."""

    def verdict(self, treatment: str, control: str) -> str:
        return verdict(self.differences.get((treatment, control)))


ZERO = 1e-10
"""Differences within this of 0 are 0: two arms of equal values resampled with different seed draws differ by
float rounding alone (~1e-14), far below any real difference (100 / (seeds × examples))."""


def verdict(difference: Interval | None) -> str:
    """``gain`` when the difference's interval lies above 0, ``loss`` below, ``no difference`` when it holds 0
    (`ZERO`: rounding is not a difference), ``–`` when there is no difference to judge."""
    if difference is None:
        return MISSING
    if difference.low > ZERO:
        return GAIN
    if difference.high < -ZERO:
        return LOSS
    return NO_DIFFERENCE


def _matrices(row: MetricResults) -> dict[str, np.ndarray]:
    """Each arm as a [seeds, examples] matrix, columns in one order for all arms (ids matched for dict input)."""
    where = f"{row.task}/{row.metric}"
    if not row.arms:
        raise ValueError(f"{where}: no arm has per-example values")
    out: dict[str, np.ndarray] = {}
    ids: list[str] | None = None
    for arm, values in row.arms.items():
        if isinstance(values, np.ndarray):
            out[arm] = as_matrix(values, f"{where} {arm}")
        else:
            ids, out[arm] = per_example_matrix(values, ids, f"{where} {arm}")
    sizes = {arm: m.shape[1] for arm, m in out.items()}
    if len(set(sizes.values())) > 1:
        raise ValueError(f"{where}: the arms have different numbers of examples {sizes}; a paired comparison needs "
                         "every arm scored on the same examples")
    return out


def summarize(rows: Sequence[MetricResults], comparisons: Sequence[tuple[str, str]] = (("pretrained", "scratch"),),
              *, n_boot: int = 2000, seed: int = 0, alpha: float = 0.05) -> list[RowSummary]:
    """Each row's arm means and intervals (`bootstrap_mean`) and, for each (treatment, control) in
    ``comparisons`` whose arms the row has, the paired difference (`paired_bootstrap`), all with ``n_boot``
    resamples drawn from ``seed``."""
    out = []
    for row in rows:
        mats = _matrices(row)
        diffs: dict[tuple[str, str], Interval | None] = {}
        for a, b in comparisons:
            both = a in mats and b in mats
            diffs[(a, b)] = paired_bootstrap(mats[a], mats[b], n_boot, seed, alpha) if both else None
        out.append(RowSummary(
            task=row.task, metric=row.metric, examples=next(iter(mats.values())).shape[1],
            seeds={arm: m.shape[0] for arm, m in mats.items()},
            arms={arm: bootstrap_mean(m, n_boot, seed, alpha) for arm, m in mats.items()},
            references=dict(row.references), differences=diffs))
    return out


def metric_rows(task: str, arms: Mapping[str, Sequence[Mapping[str, Mapping[str, float]]]], metrics: Sequence[str],
                references: Mapping[str, Mapping[str, float | None]] | None = None) -> list[MetricResults]:
    """Rows from ``per_example`` outputs: ``arms`` = arm -> one ``per_example(...)`` result per seed
    (``metric -> {id: value}``); ``references`` = metric -> {reference name: value}.

    Raises:
        ValueError: a seed's result lacks one of ``metrics`` (names the arm, seed and metric).
    """
    rows = []
    for metric in metrics:
        per_arm: dict[str, ArmValues] = {}
        for arm, seeds in arms.items():
            for i, result in enumerate(seeds):
                if metric not in result:
                    raise ValueError(f"{task} {arm}[{i}]: no per-example values for {metric!r} "
                                     f"(has {sorted(result)})")
            per_arm[arm] = [result[metric] for result in seeds]
        rows.append(MetricResults(task, metric, per_arm, dict((references or {}).get(metric, {}))))
    return rows


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _mean_cell(iv: Interval | None, digits: int) -> str:
    return MISSING if iv is None else f"{iv.estimate:.{digits}f} [{iv.low:.{digits}f}, {iv.high:.{digits}f}]"


def _signed(x: float, digits: int) -> str:
    return f"{round(x, digits) + 0.0:+.{digits}f}"    # + 0.0: a rounding residue never shows as -0.00


def _diff_cell(iv: Interval | None, digits: int) -> str:
    if iv is None:
        return MISSING
    return f"{_signed(iv.estimate, digits)} [{_signed(iv.low, digits)}, {_signed(iv.high, digits)}]"


def _size_cell(s: RowSummary) -> str:
    """``3 × 217``, or ``3/1 × 217`` when the arms have different numbers of seeds (in arm order)."""
    counts = [s.seeds[a] for a in s.arms]
    seeds = str(counts[0]) if len(set(counts)) == 1 else "/".join(map(str, counts))
    return f"{seeds} × {s.examples}"


def _ordered(names: Sequence[Sequence[str]]) -> list[str]:
    return list(dict.fromkeys(n for group in names for n in group))


def render_markdown(summaries: Sequence[RowSummary],
                    comparisons: Sequence[tuple[str, str]] = (("pretrained", "scratch"),), *,
                    digits: int = 2, note: bool = True) -> str:
    """The markdown table: task | metric | each arm (mean [low, high]) | each reference | per comparison,
    ``A − B`` (difference [low, high]) and its verdict | seeds × examples. Arms and references appear in the order
    first met; a cell a row lacks shows ``–``. ``note`` adds one line saying how intervals and verdicts are made."""
    arms = _ordered([list(s.arms) for s in summaries])
    refs = _ordered([list(s.references) for s in summaries])

    def leading(s: RowSummary) -> list[str]:
        return [*(_mean_cell(s.arms.get(a), digits) for a in arms),
                *(MISSING if s.references.get(r) is None else f"{s.references[r]:.{digits}f}" for r in refs)]

    table = _table(summaries, comparisons, [*arms, *refs], leading, digits)
    if note and summaries:
        iv = next((i for s in summaries for i in s.arms.values()), None)
        if iv is not None:
            table += (f"\nMean over seeds [{100 * (1 - iv.alpha):g}% interval]; differences paired over the same "
                      f"examples; bootstrap over examples and seeds, {iv.n_boot} resamples, percentile method. "
                      f"\"{GAIN}\" / \"{LOSS}\" only when the interval of the difference excludes 0.\n")
    return table


def render_comparisons(summaries: Sequence[RowSummary], comparisons: Sequence[tuple[str, str]], *,
                       digits: int = 2) -> str:
    """A table of paired differences alone: task | metric | per comparison, ``A − B`` (difference [low, high]) and
    its verdict | seeds × examples (e.g. each arm against a reference given as a one-seed arm: ``seeds`` then reads
    ``2/2/1``, in arm order). Rows with none of ``comparisons`` are left out; "" when none is left."""
    kept = [s for s in summaries if any(s.differences.get(c) is not None for c in comparisons)]
    return _table(kept, comparisons, [], lambda s: [], digits) if kept else ""


def _table(summaries: Sequence[RowSummary], comparisons: Sequence[tuple[str, str]], columns: Sequence[str],
           leading, digits: int) -> str:
    """task | metric | ``columns`` (``leading(summary)``'s cells) | per comparison, ``A − B`` and its verdict |
    seeds × examples."""
    header = ["task", "metric", *columns]
    for a, b in comparisons:
        header += [f"{a} − {b}", "verdict" if len(comparisons) == 1 else f"verdict ({a} vs {b})"]
    header.append("seeds × examples")
    lines = ["| " + " | ".join(_cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    for s in summaries:
        cells = [s.task, s.metric, *leading(s)]
        for a, b in comparisons:
            cells += [_diff_cell(s.differences.get((a, b)), digits), s.verdict(a, b)]
        cells.append(_size_cell(s))
        lines.append("| " + " | ".join(_cell(str(c)) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def results_markdown(rows: Sequence[MetricResults],
                     comparisons: Sequence[tuple[str, str]] = (("pretrained", "scratch"),), *,
                     n_boot: int = 2000, seed: int = 0, alpha: float = 0.05, digits: int = 2) -> str:
    """`summarize` then `render_markdown`."""
    return render_markdown(summarize(rows, comparisons, n_boot=n_boot, seed=seed, alpha=alpha), comparisons,
                           digits=digits)


def intervals_section(n_boot: int = 2000, alpha: float = 0.05) -> str:
    """The report's "Intervals" section: what is resampled, the interval and the verdict rule."""
    level = f"{100 * (1 - alpha):g}%"
    return f"""## Intervals

Every number in a comparison is the mean over seeds of a metric, with a {level} interval. The inputs are the
metric's per-example values (`DownstreamTask.per_example`: per query or question a hit as 100 or a miss as 0,
under the `average` retrieval tie rule 100 × the chance of a hit, per TVC clip its CIDEr-D with the split's
document frequencies), one set per training seed and arm, on the same
evaluation examples; their mean is the number the scorer reports.

- **Resampled**: in each of {n_boot} bootstrap resamples, the evaluation examples are drawn with replacement, the
  same draw for every arm (paired: both arms are judged on the same resampled test set), and the seeds are drawn
  with replacement, the same draw for both arms when they have the same number of seeds (seed *i* of one arm is
  paired with seed *i* of the other), independently per arm otherwise. The resample's value is the mean of the
  drawn (seed, example) values; for a comparison, the difference of the two arms' resample means.
- **Interval**: the percentile interval, the {100 * alpha / 2:g}th and {100 * (1 - alpha / 2):g}th percentiles
  of the {n_boot} resample values (numpy's linear interpolation). The point estimate is the plain mean (difference),
  not a resample average. The draws come from a fixed random seed, so a table is reproducible.
- **Verdict**: "gain" only when the whole interval of the difference lies above 0, "loss" when it lies below 0,
  "no difference" otherwise, an interval that touches 0 included (within 1e-10 of 0 counts as 0: arms of equal
  values resampled with different seed draws differ by float rounding alone). Point estimates never decide a
  verdict.
- **Reference columns** (chance, text-only) are single numbers computed without training; they carry no
  interval. The comparison of an arm with the text-only baseline (`results.md`, below its main table) is paired
  like any other, the baseline taking part as an arm with one seed: its predictions involve no training and no
  randomness, so only the examples are resampled for it.
- **Limits**: with one seed per arm, only the examples are resampled, and the interval says nothing about
  seed-to-seed variation. With few seeds and a large seed-to-seed spread, the interval is too narrow; when
  per-(seed, example) noise dominates, resampling both seeds and examples makes it too wide. Measured on
  simulated per-example values (the model of `tests/hero/metrics/test_intervals.py`: 80 examples, 400 simulated
  experiments, 2000 resamples), the 95% interval covered the true difference in 94% of experiments with one
  seed and no seed effect, 91% with 3 seeds and a small seed shift, 84% with 3 seeds when the seed spread
  dominates (92% with 5 seeds), and 99.8% when per-(seed, example) noise dominates.
"""


__all__ = ["GAIN", "LOSS", "NO_DIFFERENCE", "MetricResults", "RowSummary", "intervals_section", "metric_rows",
           "render_comparisons", "render_markdown", "results_markdown", "summarize", "verdict"]
