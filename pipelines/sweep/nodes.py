"""The sweep node: an Optuna study over the pretraining mix and hyperparameters on a short proxy (DESIGN §6)."""

from __future__ import annotations

import logging
from typing import Any

from pipelines import tracking
from pipelines.paths import layer, relative
from pipelines.settings import project_root
from pipelines.sweep.config import SweepConfig
from pipelines.sweep.objective import ProxyObjective, proxy_pretrain_config
from pipelines.sweep.report import best_values, report
from pipelines.sweep.space import check_space
from pipelines.sweep.study import (
    counts,
    make_pruner,
    open_study,
    redact,
    run_worker,
    storage_url,
)

log = logging.getLogger(__name__)


def sweep(sweep: dict[str, Any], pretrain: dict[str, Any], finetune: dict[str, Any], evaluate: dict[str, Any],
          launch: dict[str, Any], manifest_info: dict[str, Any], features_info: dict[str, Any],
          corpus: dict[str, Any] | None = None, features: dict[str, Any] | None = None) -> tuple[dict, dict]:
    """Serve the study ``sweep.study`` until it holds ``sweep.n_trials`` finished trials, then report it.

    Starting the same command on more machines (sharing the storage and the data folder) adds workers; a
    restarted sweep recovers its dead trials and runs the remaining ones only (pipelines.sweep.study).

    Returns:
        The summary (also ``data/08_reporting/sweep/<study>/summary.json``): best value and params, trial counts by
        state, the plots; and the best values for the ``sweep_best`` dataset, which the next pretraining merges in.
    """
    cfg = SweepConfig.from_params(sweep)
    corpora = None
    if cfg.objective.corpora:  # the mixture weights can be searched (data.corpora.<name>.weight)
        from pipelines.data_ablation.nodes import build_corpora

        corpora = build_corpora({"corpora": cfg.objective.corpora}, corpus or {}, features or {}, manifest_info,
                                features_info)
    pretrain_cfg = proxy_pretrain_config(cfg, pretrain["run"], manifest_info, features_info, corpora)
    check_space(cfg.space, pretrain_cfg)
    objective = ProxyObjective(cfg, pretrain_cfg, finetune, evaluate, launch, manifest_info, features_info)
    url = storage_url(cfg.storage, project_root())
    study = open_study(cfg.study, url, cfg.objective.direction, pruner=make_pruner(cfg.pruner))
    parent = tracking.current().parent
    parent.set_tags({"sweep.study": cfg.study, "sweep.storage": redact(url)})
    log.info("sweep %s on %s: %d trials in all, %s", cfg.study, redact(url), cfg.n_trials,
             ", ".join(f"{k} {v}" for k, v in counts(study).items()) or "new study")
    run_worker(study, objective, cfg.n_trials, sampler=cfg.sampler, recovery=cfg.recovery, timeout=cfg.timeout)
    out_dir = layer("08_reporting") / "sweep" / cfg.study
    info = report(study, out_dir, cfg.objective.metric_key, cfg.n_trials, redact(url))
    for path in info["plots"]:
        parent.log_artifact(path, "sweep")
    parent.log_artifact(out_dir / "summary.json", "sweep")
    if info["best"] is not None:
        parent.log_metrics({"sweep/best_value": info["best"]["value"]})
    info["plots"] = [relative(p) for p in info["plots"]]
    return info, best_values(info)
