"""The Optuna side of a sweep: storage, study, sampler, pruner, and the worker loop.

Any number of workers (processes, machines) can serve one study. `run_worker` keeps three promises:

- **The trial count is a study total.** ``n_trials`` counts every trial that did not fail, whoever ran it
  and however often the sweep was restarted. Trials are numbered by the storage in one sequence, so
  "the first ``n_trials`` trials that did not fail" is the same set for every worker: a trial created
  beyond it (two workers asked for the last slot at once) is closed at once as FAIL, marked
  ``excess``, without running. The study ends with exactly ``n_trials`` COMPLETE + PRUNED trials.
- **A dead worker loses no trial.** A running trial writes a heartbeat (host, pid, time) into the
  storage's trial attributes every ``heartbeat_interval`` seconds. A worker that finds a running trial
  whose heartbeat is older than ``grace_period`` (or whose process is gone, on its own host) fails it and
  enqueues its params again (at most ``max_retry`` times). This works the same on every storage:
  Optuna's own heartbeat exists for RDB storages only, not for the journal file.
- **Workers wait for each other.** While the study's last trials run elsewhere, a worker polls instead
  of leaving: if one of those workers dies, its trial is recovered and run here.

Create the study once before starting many workers on a new sqlite file: `open_study`
retries a creation that raced another process, but sqlite's schema creation is the fragile part.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import threading
import time
import warnings
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, Self

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import FrozenTrial, Trial, TrialState

from hero.config import ConfigError
from pipelines.sweep.config import PrunerConfig, RecoveryConfig, SamplerConfig

log = logging.getLogger(__name__)

HEARTBEAT = "hero:heartbeat"
"""System attribute of a running trial: ``{"host", "pid", "time"}`` of its worker's last beat."""

Objective = Callable[[Trial], float]


def storage_url(spec: str, root: Path) -> str:
    """The storage URL that ``spec`` means: ``env:VAR`` is looked up, relative file paths join ``root``."""
    if spec.startswith("env:"):
        var = spec[4:]
        if not os.environ.get(var):
            raise ConfigError(f"sweep.storage: {spec!r} names the environment variable {var}, which is not set")
        spec = os.environ[var]
    for prefix in ("journal:", "sqlite:///"):
        if spec.startswith(prefix):
            path = spec[len(prefix):]
            if path and not path.startswith(":memory:") and not Path(path).is_absolute():
                spec = prefix + (root / path).as_posix()
    return spec


def redact(url: str) -> str:
    """``postgresql://user:secret@host/db`` -> ``postgresql://user:***@host/db`` (for logs and reports)."""
    return re.sub(r"(://[^/:@]+):[^@/]*@", r"\1:***@", url)


def make_storage(url: str) -> optuna.storages.BaseStorage:
    """A journal file (``journal:PATH``) or an RDB storage (any SQLAlchemy URL; sqlite waits on locks)."""
    if url.startswith("journal:"):
        path = Path(url[len("journal:"):])
        path.parent.mkdir(parents=True, exist_ok=True)
        from optuna.storages.journal import JournalFileBackend

        return optuna.storages.JournalStorage(JournalFileBackend(str(path)))
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite:///"):
        Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
        kwargs = {"engine_kwargs": {"connect_args": {"timeout": 60}}}
    return optuna.storages.RDBStorage(url, **kwargs)


def open_study(name: str, url: str, direction: str, pruner: optuna.pruners.BasePruner | None = None,
               attempts: int = 5) -> optuna.Study:
    """Create the study, or load it when it exists (a resumed sweep, a second worker).

    Raises:
        ConfigError: the stored study optimizes the other direction.
    """
    for attempt in range(1, attempts + 1):
        try:
            study = optuna.create_study(study_name=name, storage=make_storage(url), direction=direction,
                                        pruner=pruner, load_if_exists=True)
            break
        except Exception as err:
            if attempt == attempts:
                raise
            log.warning("opening study %s on %s failed (%s); retrying", name, redact(url), err)
            time.sleep(0.5 * attempt)
    stored = study.direction.name.lower()
    if stored != direction:
        raise ConfigError(f"sweep.objective.direction: study {name!r} in {redact(url)} was created to {stored}, "
                          f"the config says {direction}")
    return study


def make_sampler(cfg: SamplerConfig, seed: int) -> optuna.samplers.BaseSampler:
    if cfg.type == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # constant_liar
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=cfg.n_startup_trials,
                                          constant_liar=cfg.constant_liar)


def make_pruner(cfg: PrunerConfig) -> optuna.pruners.BasePruner:
    if cfg.type == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=cfg.n_startup_trials, n_warmup_steps=cfg.n_warmup_steps)
    if cfg.type == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=cfg.min_resource or "auto",
                                                      reduction_factor=cfg.reduction_factor)
    return optuna.pruners.NopPruner()


# ---------------------------------------------------------------------------------------------- recovery
def _beat_time(trial: FrozenTrial) -> float:
    beat = trial.system_attrs.get(HEARTBEAT)
    if beat:
        return float(beat["time"])
    start = trial.datetime_start or datetime.now()
    return start.timestamp()  # storages keep naive local times


def _process_gone(trial: FrozenTrial) -> bool:
    """True when the trial's worker ran on this host and its process no longer exists."""
    beat = trial.system_attrs.get(HEARTBEAT)
    if not beat or beat.get("host") != socket.gethostname() or int(beat["pid"]) == os.getpid():
        return False
    try:
        os.kill(int(beat["pid"]), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def stale_reason(trial: FrozenTrial, grace_period: float) -> str | None:
    """Why a RUNNING trial counts as abandoned, or None while its worker looks alive."""
    if _process_gone(trial):
        beat = trial.system_attrs[HEARTBEAT]
        return f"its worker process {beat['host']}:{beat['pid']} is gone"
    age = time.time() - _beat_time(trial)
    if age > grace_period:
        return f"no heartbeat for {age:.0f}s (grace period {grace_period:.0f}s)"
    return None


def recover_stale(study: optuna.Study, cfg: RecoveryConfig) -> list[int]:
    """Fail the running trials of dead workers and enqueue their params again; returns their numbers."""
    recovered = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        reason = stale_reason(trial, cfg.grace_period)
        if reason is None:
            continue
        try:  # the storage's atomic RUNNING -> FAIL, as optuna.storages.fail_stale_trials does it
            study._storage.set_trial_user_attr(trial._trial_id, "failed_because", f"stale: {reason}")
            study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        except UpdateFinishedTrialError:
            continue  # another worker recovered it, or it just finished
        except Exception as err:  # noqa: BLE001 - e.g. sqlite busy while another worker writes: next round retries
            log.warning("trial %d: %s, but failing it did not go through (%s); will retry", trial.number, reason, err)
            continue
        retries = int(trial.user_attrs.get("retries", 0))
        if retries < cfg.max_retry:
            study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number, "retries": retries + 1})
            log.warning("trial %d: %s; failed it and enqueued its params again (retry %d of %d)",
                        trial.number, reason, retries + 1, cfg.max_retry)
        else:
            log.warning("trial %d: %s; failed it (no retries left: a fresh trial takes its place)", trial.number, reason)
        recovered.append(trial.number)
    return recovered


class Heartbeat:
    """A thread that writes the trial's heartbeat every ``interval`` seconds while the trial runs."""

    def __init__(self, study: optuna.Study, trial: Trial, interval: float) -> None:
        self.storage, self.trial_id, self.interval = study._storage, trial._trial_id, interval
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"heartbeat-{trial.number}", daemon=True)

    def beat(self) -> None:
        self.storage.set_trial_system_attr(self.trial_id, HEARTBEAT, {"host": socket.gethostname(), "pid": os.getpid(),
                                                                    "time": time.time()})

    def _run(self) -> None:
        while not self.stop.wait(self.interval):
            try:
                self.beat()
            except UpdateFinishedTrialError:
                return  # another worker declared the trial dead; the main thread finds out on its next write
            except Exception as err:  # noqa: BLE001 - a storage hiccup must not kill the trial; the next beat retries
                log.warning("heartbeat of trial %d failed: %s", self.trial_id, err)

    def __enter__(self) -> Self:
        self.beat()
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


# ---------------------------------------------------------------------------------------------- worker loop
def counts(study: optuna.Study) -> dict[str, int]:
    """Trials by state (``excess``: created past ``n_trials`` by a race and closed without running)."""
    c: Counter[str] = Counter()
    for t in study.get_trials(deepcopy=False):
        c["EXCESS" if t.user_attrs.get("excess") else t.state.name] += 1
    return dict(sorted(c.items()))


def in_budget(study: optuna.Study, trial: Trial, n_trials: int) -> bool:
    """Whether ``trial`` is among the first ``n_trials`` trials that did not fail (the same answer everywhere)."""
    before = sum(1 for t in study.get_trials(deepcopy=False) if t.number < trial.number and t.state != TrialState.FAIL)
    return before < n_trials


def _run_trial(study: optuna.Study, trial: Trial, objective: Objective, cfg: RecoveryConfig) -> None:
    """Run one trial under its heartbeat and tell the study (unless another worker failed it meanwhile)."""
    value, state, error = None, None, None  # state None + a value: COMPLETE (or FAIL for NaN, Optuna's rule)
    try:
        with Heartbeat(study, trial, cfg.heartbeat_interval):
            try:
                value = objective(trial)
            except optuna.TrialPruned:
                state = TrialState.PRUNED
            except UpdateFinishedTrialError:
                raise
            except BaseException as err:  # noqa: BLE001 - recorded on the trial, then re-raised
                state, error = TrialState.FAIL, err
        if study._storage.get_trial(trial._trial_id).state != TrialState.RUNNING:
            raise UpdateFinishedTrialError(f"trial {trial.number} is no longer running")
        if error is not None:
            trial.set_user_attr("failed_because", f"{type(error).__name__}: {error}"[:1000])
        frozen = study.tell(trial, value, state=state)
    except UpdateFinishedTrialError:
        log.warning("trial %d was failed by another worker (its heartbeat looked stale); its result is dropped",
                    trial.number)
        return
    if error is not None:
        raise error
    log.info("trial %d %s%s", trial.number, frozen.state.name, f": {frozen.value}" if frozen.value is not None else "")


def run_worker(study: optuna.Study, objective: Objective, n_trials: int, *, sampler: SamplerConfig | None = None,
               recovery: RecoveryConfig | None = None, timeout: float | None = None) -> dict[str, int]:
    """Serve ``study`` until it holds ``n_trials`` finished (COMPLETE + PRUNED) trials, or ``timeout`` passes.

    Args:
        objective: ``objective(trial) -> value``; raises ``optuna.TrialPruned`` to prune. Any other exception
            fails the trial (recorded in its ``failed_because`` attribute) and is re-raised.
        sampler: trial ``n`` samples with a sampler seeded ``seed + n`` (default: TPE, seed 0).
    Returns:
        Trials by state (`counts`) when this worker stops.
    """
    sampler = sampler or SamplerConfig()
    recovery = recovery or RecoveryConfig()
    t0 = time.monotonic()
    while True:
        recover_stale(study, recovery)
        trials = study.get_trials(deepcopy=False)
        live = sum(1 for t in trials if t.state != TrialState.FAIL)
        waiting = any(t.state == TrialState.WAITING for t in trials)
        if timeout is not None and time.monotonic() - t0 >= timeout:
            log.info("sweep worker: timeout of %.0fs reached; starting no new trial", timeout)
            break
        if live >= n_trials and not waiting:
            if any(t.state == TrialState.RUNNING for t in trials):  # they may still die and need a worker
                time.sleep(recovery.poll)
                continue
            break
        trial = study.ask()
        if not in_budget(study, trial, n_trials):
            trial.set_user_attr("excess", True)
            study.tell(trial, state=TrialState.FAIL)
            continue
        study.sampler = make_sampler(sampler, sampler.seed + trial.number)
        log.info("trial %d of %d starts (study %s)", trial.number, n_trials, study.study_name)
        _run_trial(study, trial, objective, recovery)
    return counts(study)
