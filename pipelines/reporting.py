"""Pictures and tables people would rather look at than read: loss curves, the results table."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from hero.storage.atomic import atomic_path, write_text_atomic

log = logging.getLogger(__name__)


def read_metrics_jsonl(path: str | Path) -> list[dict]:
    """Rows of a `hero.train` metrics.jsonl; for steps written twice (a resumed run) the later row wins."""
    rows: dict[int, dict] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                row = json.loads(line)
                rows[int(row["step"])] = row
    return [rows[k] for k in sorted(rows)]


def plot_curves(rows: Sequence[Mapping], out: str | Path, title: str, prefix: str = "train/") -> Path | None:
    """One panel per metric family (``<prefix><task>/loss`` …): loss curves against step, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = sorted({k for r in rows for k in r if k.startswith(prefix) and k.endswith("loss")})
    if not names:
        return None
    cols = min(3, len(names))
    nrows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4.2 * cols, 3.0 * nrows), squeeze=False)
    for ax, name in zip(axes.flat, names):
        pts = [(r["step"], r[name]) for r in rows if isinstance(r.get(name), (int, float))]
        if pts:
            ax.plot(*zip(*pts), lw=1.4)
        ax.set_title(name.removeprefix(prefix), fontsize=10)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    return save_png(fig, out, dpi=110)


def save_png(fig, out: str | Path, dpi: int = 110, **savefig: object) -> Path:
    """Write a matplotlib figure as a PNG whole or not at all (temp name, then rename), and close it."""
    import matplotlib.pyplot as plt

    out = Path(out)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png", **savefig)
    plt.close(fig)
    return out


def results_table(rows: Sequence[Mapping[str, object]], columns: Sequence[str]) -> str:
    """A markdown table (also readable in a terminal)."""
    def fmt(v: object) -> str:
        return f"{v:.2f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


BASELINE_COLUMNS = ("text-only", "chance")
"""The baselines of ``data/08_reporting/baselines.json`` that the results table shows, one column each."""


def baseline_columns(rows: Sequence[dict[str, object]], split: str,
                     baselines: Mapping[str, Mapping[str, float]] | None = None,
                     names: Sequence[str] = BASELINE_COLUMNS) -> list[str]:
    """Add the reference baselines to results-table rows (``{"task", "metric", ...}``), in place.

    Each row gains one column per baseline of ``names`` (default ``text-only`` and ``chance``): that baseline's
    ``<task>/<split>/<metric>`` ("" where it has none). ``baselines``: ``{baseline: {"<task>/<split>/<metric>":
    value}}``; default: what the baselines pipeline wrote to ``data/08_reporting/baselines.json``, when it has run
    (else the rows stay as they are).

    Returns:
        the added column names, for the table's header ([] when there are no baselines).
    """
    if baselines is None:
        from pipelines.paths import layer

        baselines = read_json_file(layer("08_reporting") / "baselines.json")
    if not baselines:
        return []
    for row in rows:
        for name in names:
            row[name] = baselines.get(name, {}).get(f"{row['task']}/{split}/{row['metric']}", "")
    return list(names)


def write_json_atomic(path: str | Path, obj: object) -> Path:
    write_text_atomic(path, json.dumps(obj, indent=1, sort_keys=True) + "\n")
    return Path(path)


def read_json_file(path: str | Path) -> dict | None:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def plot_retrieved_moments(examples: Sequence[Mapping], out: str | Path, title: str) -> Path | None:
    """One row per query: the ground-truth span (green) and the top predicted moments (blue when on the right
    video, grey elsewhere), on a shared time axis, with the query text and each moment's video and IoU."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not examples:
        return None
    fig, axes = plt.subplots(len(examples), 1, figsize=(10, 1.6 * len(examples)), squeeze=False)
    for ax, ex in zip(axes[:, 0], examples):
        gt = ex.get("gt")
        moments = ex.get("moments", [])
        end = max([m["ts"][1] for m in moments] + ([gt["ts"][1]] if gt else [1.0]))
        if gt:
            ax.barh(0, gt["ts"][1] - gt["ts"][0], left=gt["ts"][0], color="tab:green", height=0.6)
            ax.text(gt["ts"][1] + 0.3, 0, f"truth ({gt['vid_name']})", va="center", fontsize=7)
        for m in moments:
            right = gt is not None and m["vid_name"] == gt["vid_name"]
            ax.barh(m["rank"], m["ts"][1] - m["ts"][0], left=m["ts"][0], height=0.6,
                    color="tab:blue" if right else "0.7")
            iou = "" if m.get("iou") is None else f" IoU {m['iou']:.2f}"
            ax.text(m["ts"][1] + 0.3, m["rank"], f"#{m['rank']} {m['vid_name']}{iou}", va="center", fontsize=7)
        ax.set_ylim(len(moments) + 0.7, -0.7)
        ax.set_xlim(0, end * 1.35)
        ax.set_yticks([])
        ax.set_title(f"“{ex.get('desc', '')}”", fontsize=9, loc="left")
    axes[-1, 0].set_xlabel("seconds")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_png(fig, out, dpi=100)
