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


def random_feature_store(manifest, store_dir, dim: int, *, regions: tuple[int, int] | None = None, seed: int = 0):
    """A feature store of random ``dim``-d features for every video of ``manifest`` (what the trainer tests read
    instead of extracting); ``regions=(R, Dr)`` adds R random Dr-d region features per clip with valid boxes.
    Returns the store folder."""
    import numpy as np

    from hero.features.store import StoreWriter, consolidate

    rng = np.random.default_rng(seed)
    w = StoreWriter(store_dir)
    for vid, entry in manifest.videos.items():
        extra = {}
        if regions:
            R, Dr = regions
            xy = rng.uniform(0, 0.5, size=(entry.num_clips, R, 2))
            extra = {"regions": rng.normal(size=(entry.num_clips, R, Dr)).astype(np.float32),
                     "boxes": np.concatenate([xy, xy * 0 + 0.5], -1).astype(np.float32)}
        w.add(vid, rng.normal(size=(entry.num_clips, dim)).astype(np.float32), key=f"k-{vid}",
              clip_len=manifest.clip_len, extractor="random", dim=dim, **extra)
    w.close()
    consolidate(store_dir)
    return str(store_dir)
