"""What a finished (or stopped) sweep leaves behind: Optuna's plots, a summary, and its best values (saved by the
``sweep_best`` dataset, `pipelines.datasets.SweepBestDataset`)."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from hero.storage.atomic import write_text_atomic
from pipelines.reporting import save_png, write_json_atomic
from pipelines.sweep.space import nested
from pipelines.sweep.study import counts

log = logging.getLogger(__name__)

def save_plots(study: optuna.Study, out_dir: Path) -> list[Path]:
    """Optuna's matplotlib plots as PNGs: history, intermediate values, parallel coordinates, importances.

    Importances need two finished trials and a parameter that varies; with fewer they are skipped (logged).
    """
    import matplotlib

    matplotlib.use("Agg")
    from optuna.visualization import matplotlib as ovm

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    plots = {"optimization_history": ovm.plot_optimization_history,
             "intermediate_values": ovm.plot_intermediate_values,
             "parallel_coordinate": ovm.plot_parallel_coordinate}
    if len(complete) >= 2:
        plots["param_importances"] = ovm.plot_param_importances
    else:
        log.info("sweep: %d complete trial(s); the parameter-importance plot needs at least 2, skipped", len(complete))
    written = []
    for name, fn in plots.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            try:
                ax = fn(study)
            except (ValueError, RuntimeError) as err:  # e.g. importances when no parameter varies
                log.info("sweep: plot %s skipped: %s", name, err)
                continue
        fig = (ax.flat[0] if hasattr(ax, "flat") else ax).figure
        written.append(save_png(fig, out_dir / f"{name}.png", dpi=110, bbox_inches="tight"))
    return written


def summary(study: optuna.Study, metric: str, n_trials: int, storage: str) -> dict[str, Any]:
    """Best value and params, trial counts by state, and where the study lives (credentials redacted)."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    best = None
    if complete:
        t = study.best_trial
        best = {"trial": t.number, "value": t.value, "params": t.params}
    return {"study": study.study_name, "storage": storage, "direction": study.direction.name.lower(),
            "metric": metric, "n_trials": n_trials, "counts": counts(study), "best": best}


def best_values(info: dict[str, Any]) -> dict[str, Any]:
    """What the ``sweep_best`` dataset saves: the best trial's values as a partial pretrain run config, with a note
    on where they come from; ``{}`` (nothing written) while no trial is complete."""
    best = info.get("best")
    if best is None:
        return {}
    return {"values": nested(best["params"]),
            "note": f"study {info['study']}, trial {best['trial']}, {info['metric']} = {best['value']:.6g}"}


def report(study: optuna.Study, out_dir: Path, metric: str, n_trials: int, storage: str) -> dict[str, Any]:
    """Plots and ``summary.json`` into ``out_dir``; returns the summary."""
    plots = save_plots(study, out_dir)
    info = summary(study, metric, n_trials, storage)
    info["plots"] = [str(p) for p in plots]
    if info["best"] is not None:
        best = info["best"]
        log.info("sweep %s: best %s = %.4g (trial %d)", study.study_name, metric, best["value"], best["trial"])
    else:
        log.warning("sweep %s: no complete trial yet; the last best values stay as they are", study.study_name)
    write_json_atomic(out_dir / "summary.json", info)
    return info
