"""The sweep's worker loop on real Optuna storages: pruning, exact totals with several worker processes,
recovery of trials whose worker died. The objectives are cheap stand-ins; the storages, the pruner, the
processes and the kills are real."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from pipelines.sweep.config import RecoveryConfig, SamplerConfig
from pipelines.sweep.objective import rung_loop
from pipelines.sweep.study import counts, in_budget, open_study, run_worker

ROOT = Path(__file__).resolve().parents[2]
FAST = RecoveryConfig(heartbeat_interval=0.2, grace_period=30, poll=0.2)

WORKER = textwrap.dedent("""
    import json, os, sys, time
    from pipelines.sweep.config import RecoveryConfig, SamplerConfig
    from pipelines.sweep.study import open_study, run_worker

    url, n_trials, sleep, marks = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
    study = open_study("s", url, "minimize")

    def objective(trial):
        x = trial.suggest_float("x", -1.0, 1.0)
        with open(os.path.join(marks, f"{trial.number}-{os.getpid()}"), "w") as f:
            f.write(json.dumps(x))
        time.sleep(sleep)
        return x * x

    run_worker(study, objective, n_trials, sampler=SamplerConfig(type="random"),
               recovery=RecoveryConfig(heartbeat_interval=1.0, grace_period=30, poll=0.2))
""")


def start_worker(tmp_path, url, n_trials, sleep):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    marks = tmp_path / "marks"
    marks.mkdir(exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, str(script), url, str(n_trials), str(sleep), str(marks)], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def marks(tmp_path):
    """(trial number, pid) of every objective call the workers made."""
    return sorted(tuple(map(int, p.name.split("-"))) for p in (tmp_path / "marks").iterdir())


def test_a_trial_with_bad_intermediate_values_is_pruned_and_stops_training():
    """The median pruner sees the rung values; the bad trial stops after its first rung."""
    study = optuna.create_study(direction="maximize",
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0))
    metric = {0: [0.5, 0.6, 0.7], 1: [0.6, 0.7, 0.8], 2: [0.1, 0.9, 0.9], 3: [0.7, 0.8, 0.9]}
    trained: dict[int, list[int]] = {}

    def objective(trial):
        steps = trained.setdefault(trial.number, [])
        return rung_loop(trial, [10, 20, 30], train_to=steps.append,
                         validate=lambda step: metric[trial.number][step // 10 - 1])

    assert run_worker(study, objective, 4, recovery=FAST) == {"COMPLETE": 3, "PRUNED": 1}
    bad = study.trials[2]
    assert bad.state == TrialState.PRUNED and bad.intermediate_values == {10: 0.1}
    assert trained[2] == [10]  # no training past the rung where it was pruned
    assert trained[3] == [10, 20, 30] and study.best_trial.number == 3


@pytest.mark.parametrize("scheme", ["journal", pytest.param("sqlite", marks=pytest.mark.slow)])  # sqlite: ~17 s
def test_two_worker_processes_complete_exactly_n_trials(tmp_path, scheme):
    url = f"journal:{tmp_path / 'study.log'}" if scheme == "journal" else f"sqlite:///{tmp_path / 'study.db'}"
    open_study("s", url, "minimize")  # created once, before the workers
    procs = [start_worker(tmp_path, url, 6, 0.4) for _ in range(2)]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    study = open_study("s", url, "minimize")
    assert counts(study) == {"COMPLETE": 6}, outs
    ran = marks(tmp_path)
    assert sorted(n for n, _ in ran) == list(range(6))  # every trial ran once: none lost, none twice
    assert len({pid for _, pid in ran}) == 2, "both workers took trials"
    assert len({t.params["x"] for t in study.trials}) == 6  # the per-trial seeds keep workers apart


def test_a_killed_worker_s_trial_is_rerun_with_its_params(tmp_path):
    """A worker is killed mid-trial; the next worker on this host fails that trial at once (its process is
    gone), re-enqueues its params, and the study still ends with exactly n_trials complete."""
    url = f"journal:{tmp_path / 'study.log'}"
    study = open_study("s", url, "minimize")
    proc = start_worker(tmp_path, url, 3, 60.0)
    deadline = time.monotonic() + 60
    # killed once its trial has drawn its params and sent a heartbeat naming its process (killed before those,
    # a trial has no params to re-run and no pid to find gone; on a loaded machine RUNNING comes well before them)
    from pipelines.sweep.study import HEARTBEAT

    while not any(t.params and HEARTBEAT in t.system_attrs for t in study.get_trials(states=(TrialState.RUNNING,))):
        assert time.monotonic() < deadline and proc.poll() is None, "the worker never started a trial"
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()  # reaped: its pid is gone
    (dead,) = study.get_trials(states=(TrialState.RUNNING,))

    def objective(trial):
        return trial.suggest_float("x", -1.0, 1.0) ** 2

    assert run_worker(study, objective, 3, sampler=SamplerConfig(type="random"), recovery=FAST) == {
        "COMPLETE": 3, "FAIL": 1}
    failed = study.trials[dead.number]
    assert failed.state == TrialState.FAIL and "worker process" in failed.user_attrs["failed_because"]
    (retry,) = [t for t in study.trials if t.user_attrs.get("retry_of") == dead.number]
    assert retry.state == TrialState.COMPLETE and retry.params == dead.params


def test_an_abandoned_running_trial_is_recovered_after_the_grace_period(tmp_path):
    """A trial left RUNNING with no heartbeat (another host, or a worker that died before its first beat)
    is failed once the grace period passes, and its params run again."""
    study = open_study("s", f"journal:{tmp_path / 'study.log'}", "minimize")
    abandoned = study.ask({"x": optuna.distributions.FloatDistribution(-1.0, 1.0)})
    time.sleep(1.2)

    def objective(trial):
        return trial.suggest_float("x", -1.0, 1.0) ** 2

    recovery = RecoveryConfig(heartbeat_interval=0.1, grace_period=1.0, poll=0.1)
    assert run_worker(study, objective, 2, recovery=recovery) == {"COMPLETE": 2, "FAIL": 1}
    assert "no heartbeat" in study.trials[abandoned.number].user_attrs["failed_because"]
    assert any(t.params == abandoned.params and t.state == TrialState.COMPLETE for t in study.trials[1:])


def test_a_resumed_study_runs_only_the_remaining_trials_and_waits_for_running_ones(tmp_path):
    """n_trials is a study total. A worker finding the total reached, with another worker's trial still
    running, waits for it rather than starting an extra one."""
    study = open_study("s", f"journal:{tmp_path / 'study.log'}", "minimize")
    run_worker(study, lambda t: t.suggest_float("x", 0, 1), 2, recovery=FAST)
    assert counts(study) == {"COMPLETE": 2}
    assert run_worker(study, lambda t: t.suggest_float("x", 0, 1), 3, recovery=FAST) == {"COMPLETE": 3}
    elsewhere = study.ask()  # "another worker's" trial, alive (this process beats for it)
    threading.Timer(1.0, lambda: study.tell(elsewhere, 0.5)).start()
    t0 = time.monotonic()
    assert run_worker(study, lambda t: t.suggest_float("x", 0, 1), 4, recovery=FAST) == {"COMPLETE": 4}
    assert time.monotonic() - t0 >= 0.9


def test_budget_is_the_first_n_trials_that_did_not_fail(tmp_path):
    """The rule every worker applies to a fresh trial: a racing worker's extra trial is never run."""
    study = open_study("s", f"journal:{tmp_path / 'study.log'}", "minimize")
    first, second, third = study.ask(), study.ask(), study.ask()
    study.tell(first, 1.0)
    study.tell(second, state=TrialState.FAIL)
    assert in_budget(study, third, 2)  # trial 1 failed: its slot is free
    assert not in_budget(study, study.ask(), 2)  # trials 0 and 2 hold both slots
    assert json.loads(json.dumps(counts(study))) == {"COMPLETE": 1, "FAIL": 1, "RUNNING": 2}


def test_report_writes_plots_summary_and_best_values(tmp_path, caplog):
    """Optuna's own plots as PNGs (importances once two trials completed), the summary, the best values."""
    from pipelines.sweep.report import best_values, report

    study = open_study("s", f"journal:{tmp_path / 'study.log'}", "maximize")

    def objective(trial):
        lr = trial.suggest_float("optim.lr", 1e-5, 1e-3, log=True)
        for step in (1, 2):
            trial.report(lr * step, step)
        return lr * 1000

    run_worker(study, objective, 1, recovery=FAST)
    with caplog.at_level("INFO"):
        info = report(study, tmp_path / "out", "retrieval/val/r5", 1, "journal:x")
    assert "parameter-importance plot needs at least 2" in caplog.text
    assert sorted(p.name for p in (tmp_path / "out").glob("*.png")) == [
        "intermediate_values.png", "optimization_history.png", "parallel_coordinate.png"]
    run_worker(study, objective, 3, recovery=FAST)
    info = report(study, tmp_path / "out", "retrieval/val/r5", 3, "journal:x")
    assert (tmp_path / "out/param_importances.png").stat().st_size > 5000
    assert json.loads((tmp_path / "out/summary.json").read_text()) == info
    assert info["counts"] == {"COMPLETE": 3} and info["best"]["trial"] == study.best_trial.number
    best = best_values(info)
    assert best["values"] == {"optim": {"lr": study.best_params["optim.lr"]}}
    assert f"trial {study.best_trial.number}" in best["note"]
