"""The search space is data: dotted keys of the pretrain run config, each with a distribution.

``check_space`` proves, before any trial runs, that every key exists and that every bound gives a valid
`RunConfig` (an int field swept as a float, a ratio range that can sum to 0, a mask probability of 1 all
fail here, naming ``sweep.space.<key>``). ``suggest`` draws one point from an Optuna trial, and
``apply_values`` merges a point into a run config; the same merge applies the tuned values of
``params:sweep_best`` to the next pretraining run.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from hero.config import ConfigError, merge, parse_overrides
from hero.train.config import RunConfig
from pipelines.sweep.config import ParamSpec


def nested(values: Mapping[str, Any]) -> dict[str, Any]:
    """``{"optim.lr": 1e-4}`` -> ``{"optim": {"lr": 1e-4}}`` (JSON is YAML, so each value keeps its type)."""
    return parse_overrides(f"{key}={json.dumps(value)}" for key, value in values.items())


def apply_values(run: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """``run`` with the dotted ``values`` merged in (a swept task ratio replaces that ratio only)."""
    return merge(run, nested(values))


def flat(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """The inverse of `nested`: leaves of a nested mapping under their dotted keys."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping) and value:
            out.update(flat(value, path))
        else:
            out[path] = value
    return out


def _ends(spec: ParamSpec) -> list[Any]:
    if spec.type == "categorical":
        return list(spec.choices or [])
    cast = int if spec.type == "int" else float
    return [cast(spec.low), cast(spec.high)]


def check_space(space: Mapping[str, ParamSpec], run: Mapping[str, Any]) -> None:
    """Every key, at each end of its range (each choice), and all lows / all highs together, make a valid run.

    ``model.*`` keys are refused: the finetuning job loads the pretrained weights, so both share one architecture.

    Raises:
        ConfigError: ``sweep.space.<key>: ...`` with the run config's own complaint.
    """
    for key, spec in space.items():
        if key.split(".")[0] == "model":
            raise ConfigError(f"sweep.space.{key}: model keys are not swept: pretraining and finetuning must share "
                              "one architecture (conf/base/globals.yml)")
        for value in _ends(spec):
            try:
                RunConfig.from_dict(apply_values(run, {key: value}))
            except ConfigError as err:
                raise ConfigError(f"sweep.space.{key}: {value!r} gives an invalid pretrain run config: {err}") from None
    for end in (0, -1):
        point = {key: _ends(spec)[end] for key, spec in space.items()}
        try:
            RunConfig.from_dict(apply_values(run, point))
        except ConfigError as err:
            which = "low end (first choice)" if end == 0 else "high end (last choice)"
            raise ConfigError(f"sweep.space: every parameter at its {which} gives an invalid pretrain run "
                              f"config: {err}") from None


def suggest(trial: Any, space: Mapping[str, ParamSpec]) -> dict[str, Any]:
    """One point of ``space`` from an Optuna trial (fixed params of a re-enqueued trial come back as they were)."""
    values: dict[str, Any] = {}
    for key, s in space.items():
        if s.type == "float":
            values[key] = trial.suggest_float(key, s.low, s.high, log=s.log, step=s.step)
        elif s.type == "int":
            values[key] = trial.suggest_int(key, int(s.low), int(s.high), log=s.log, step=int(s.step or 1))
        else:
            values[key] = trial.suggest_categorical(key, list(s.choices or []))
    return values
