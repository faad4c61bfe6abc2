"""Pictures and tables people would rather look at than read: loss curves, the results table."""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

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


def _atomic_target(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix)
    os.close(fd)
    return Path(tmp)


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
    out = Path(out)
    tmp = _atomic_target(out)
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, out)
    return out


def results_table(rows: Sequence[Mapping[str, object]], columns: Sequence[str]) -> str:
    """A markdown table (also readable in a terminal)."""
    def fmt(v: object) -> str:
        return f"{v:.2f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def write_json_atomic(path: str | Path, obj: object) -> Path:
    path = Path(path)
    tmp = _atomic_target(path)
    tmp.write_text(json.dumps(obj, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, path)
    return path


def read_json_file(path: str | Path) -> dict | None:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
