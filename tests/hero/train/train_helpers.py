"""Helpers shared by the trainer tests (importable by name: pytest puts this folder on sys.path)."""

import json
from pathlib import Path


def read_metrics(run_dir) -> list[dict]:
    """metrics.jsonl rows; for a resumed run the last row written for each step wins."""
    rows: dict[int, dict] = {}
    for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines():
        row = json.loads(line)
        rows[row["step"]] = {**rows.get(row["step"], {}), **row}
    return [rows[k] for k in sorted(rows)]


def strip_perf(row: dict) -> dict:
    return {k: v for k, v in row.items() if not k.startswith("perf/")}


class ListSink:
    """A sink built by import path from the config (as pipelines/ builds its MLflow sink)."""

    rows: list = []

    def __init__(self, run_dir):
        ListSink.rows = []

    def log(self, metrics, step):
        ListSink.rows.append((step, dict(metrics)))

    def close(self):
        ListSink.rows.append("closed")


class KillOnceSink:
    """Kills its own process with SIGKILL when it logs step ``$HERO_TEST_KILL_AT_STEP``, once per run_dir
    (a marker file remembers it), to test recovery under ``torchrun --max-restarts``."""

    def __init__(self, run_dir):
        import os

        self.marker = Path(run_dir) / "killed.marker"
        self.at = int(os.environ.get("HERO_TEST_KILL_AT_STEP", "-1"))

    def log(self, metrics, step):
        import os
        import signal

        if step == self.at and not self.marker.exists():
            self.marker.write_text(os.environ.get("TORCHELASTIC_RESTART_COUNT", "?"))
            os.kill(os.getpid(), signal.SIGKILL)

    def close(self):
        pass
