"""Model selection on a held-out split, as HERO did: a finetuning run scores (a fixed subsample of) ``val`` every
``train.select.every`` steps with the task's own prediction writer and scorer, keeps the best checkpoint under
``<run_dir>/best/`` and stops early after ``patience`` evaluations without improvement. The test split is then
scored once, on the selected checkpoint (`hero.train.finetune.load_task_model` prefers ``best/``).

The selection state (best value and step, evaluations since the last improvement, stopped or not) is part of
every checkpoint, so a resumed run selects exactly as an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from pathlib import Path
from typing import Any

from hero.config import ConfigError

log = logging.getLogger(__name__)


class Selector:
    """Scores a finetuning run's task model on ``select.split`` and tracks the best step (rank 0 computes)."""

    def __init__(self, cfg, run_dir: str | Path) -> None:
        from hero.tasks.registry import task_of_dataset

        self.cfg, self.select, self.run_dir = cfg, cfg.train.select, Path(run_dir)
        self.dataset = cfg.task
        task = task_of_dataset(self.dataset)
        self.metric = self.select.metric or task.headlines[0]
        self.sign = 1.0 if self.select.mode == "max" else -1.0
        self.ties = [m for m in task.headlines if m != self.metric] if self.select.tie_break else []
        """The metrics that decide between evaluations whose ``metric`` is equal (higher is better), in order."""
        self.best_value: float | None = None
        self.best_ties: list[float] = []
        self.best_step: int | None = None
        self.bad_evals = 0
        self.stopped = False
        self._data: tuple[Any, ...] | None = None

    # ------------------------------------------------------------------ state (checkpointed)
    def state_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "best_value": self.best_value, "best_step": self.best_step,
                "best_ties": self.best_ties, "bad_evals": self.bad_evals, "stopped": self.stopped}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best_value, self.best_step = state["best_value"], state["best_step"]
        self.best_ties = list(state.get("best_ties", []))   # checkpoints from before tie-breaking: none
        self.bad_evals, self.stopped = int(state["bad_evals"]), bool(state["stopped"])

    # ------------------------------------------------------------------ scoring
    def _subset(self):
        """(manifest holding only the scored examples, store, tokenizer, their ground-truth file)."""
        if self._data is None:
            from hero.corpus.manifest import Manifest
            from hero.tasks.predict import annotation_path
            from hero.features.store import FeatureStore
            from hero.presets import preset_tokenizer
            from hero.storage.atomic import write_text_atomic

            data = self.cfg.data
            path = Path(data.path)
            manifest = Manifest.load(path / "manifest.json" if path.is_dir() else path)
            raw = manifest.tasks.get(self.dataset, {}).get(self.select.split, [])
            raw = [e for e in raw if e.get("vid_name") in manifest.videos]
            if self.select.max_examples:
                raw = raw[: self.select.max_examples]   # the file's order: the same subsample on every run
            if not raw:
                raise ConfigError(f"train.select.split: {self.dataset}/{self.select.split} has no labeled example "
                                  f"in {manifest.root} to select on")
            source = annotation_path(manifest, self.dataset, self.select.split)
            lines = source.read_text(encoding="utf-8").splitlines()
            keep = sorted({e["line"] for e in raw})
            subset = self.run_dir / "selection" / f"{self.dataset}_{self.select.split}.jsonl"
            write_text_atomic(subset, "".join(lines[n - 1] + "\n" for n in keep))
            tasks = {self.dataset: {self.select.split: raw}}
            manifest = dataclasses.replace(manifest, tasks=tasks)
            preset = self.cfg.build_preset()
            if data.tokenizer:
                preset = dataclasses.replace(preset, tokenizer=data.tokenizer)
            self._data = (manifest, FeatureStore(data.features), preset_tokenizer(preset), subset)
        return self._data

    def _scoring_options(self) -> dict[str, Any]:
        """Scorer settings that spare what the selection does not read (the task's `scoring_options`)."""
        from hero.tasks.registry import task_of_dataset

        return task_of_dataset(self.dataset).scoring_options({self.metric, *self.ties})

    def better(self, value: float, ties: list[float]) -> bool:
        """Whether an evaluation scoring ``value`` (and ``ties``: the tie-breaking metrics) beats the best so far."""
        return self._beats(value, ties, self.best_value, self.best_ties)

    def _beats(self, value: float, ties: list[float], ref: float | None, ref_ties: list[float]) -> bool:
        """Whether ``value`` (then ``ties``) beats ``ref`` (then ``ref_ties``); a non-finite value never does, and
        anything finite beats no reference (None) or a non-finite one."""
        if not math.isfinite(value):
            return False
        if ref is None or not math.isfinite(ref) or self.sign * (value - ref) > 0:
            return True
        return value == ref and ties > ref_ties   # lists: compared in order

    def _score(self, task_model) -> tuple[float, list[float]]:
        """(``metric``, the tie-breaking metrics) of ``task_model`` on the subsample."""
        from hero.tasks.predict import predict_split

        manifest, store, tokenizer, subset = self._subset()
        res = predict_split(task_model, self.dataset, manifest, store, tokenizer, self.select.split,
                            self.run_dir / "selection" / "predictions", annotations=subset,
                            device=next(task_model.parameters()).device, channels=self.cfg.data.channels,
                            log_every=60.0, **self._scoring_options())
        key = f"{self.dataset}/{self.select.split}/{self.metric}"
        if key not in res["metrics"]:
            raise ConfigError(f"train.select.metric: {self.metric!r} is not a metric of {self.dataset} "
                              f"(it has {sorted(k.rsplit('/', 1)[-1] for k in res['metrics'])})")
        ties = [float(res["metrics"].get(f"{self.dataset}/{self.select.split}/{m}", -math.inf)) for m in self.ties]
        return float(res["metrics"][key]), ties

    def evaluate(self, step: int, task_model) -> dict[str, float]:
        """Score ``task_model`` on the subsample (under each of its `inference_variants`, leaving it set to the best
        one, the first on a tie); update the best step; returns ``select/*`` metrics (and the variant's values)."""
        variants = task_model.inference_variants() if hasattr(task_model, "inference_variants") else ()
        if not variants:
            value, ties = self._score(task_model)
            chosen: dict[str, float] = {}
        else:
            scored = []
            for variant in variants:
                task_model.set_inference_variant(variant)
                scored.append((*self._score(task_model), variant))
            value, ties, chosen = scored[0]
            for v, t, variant in scored[1:]:
                if self._beats(v, t, value, ties):
                    value, ties, chosen = v, t, variant
            task_model.set_inference_variant(chosen)
            log.info("select: %s; kept %s", ", ".join(f"{self.metric} {v:.4f} with {_label(x)}" for v, _, x in scored),
                     _label(chosen))
        improved = self.better(value, ties)
        if improved:
            self.best_value, self.best_ties, self.best_step, self.bad_evals = value, ties, step, 0
        else:
            self.bad_evals += 1
        if self.select.patience and self.bad_evals >= self.select.patience:
            self.stopped = True
        tied = "".join(f", {m} {v:.4f}" for m, v in zip(self.ties, ties))
        log.info("select: %s %s = %.4f%s at step %d (best %.4f at step %s)%s", self.dataset, self.metric, value, tied,
                 step, self.best_value if self.best_value is not None else float("nan"), self.best_step,
                 f"; no improvement in {self.bad_evals} evaluations: stopping" if self.stopped else "")
        return {f"select/{self.metric}": value, f"select/best_{self.metric}": float(self.best_value or 0.0),
                "select/improved": float(improved), "select/best_step": float(self.best_step or 0),
                **{f"select/{k}": float(v) for k, v in chosen.items()}}


def _label(variant: dict[str, float]) -> str:
    return ", ".join(f"{k}={v:g}" for k, v in variant.items())
