"""Kedro reads conf/logging.yml by default (no KEDRO_LOGGING_CONFIG needed): the catalog's per-dataset lines
("Loading data from ...", "Saving data to ...", one per dataset per node) stay below the default level, Kedro's
node progress does not."""

import os
import subprocess
import sys
from pathlib import Path

import kedro.framework.project

SCRIPT = """
import logging
from kedro.framework.project import LOGGING  # configures logging, as `kedro run` does
from kedro.io import DataCatalog, MemoryDataset
catalog = DataCatalog({"corpus_info": MemoryDataset(1), "manifest_info": MemoryDataset()})
catalog.save("manifest_info", catalog.load("corpus_info"))
logging.getLogger("kedro.runner.sequential_runner").info("Completed 1 out of 1 tasks")
"""


def _run(project, **env):
    base = {k: v for k, v in os.environ.items() if k != "KEDRO_LOGGING_CONFIG"}
    out = subprocess.run([sys.executable, "-c", SCRIPT], cwd=project, env={**base, **env}, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout + out.stderr


def test_per_dataset_lines_are_hidden_by_default(project):
    shown = _run(project)
    assert "conf/logging.yml" in shown  # the project's file, found without KEDRO_LOGGING_CONFIG
    assert "Completed 1 out of 1 tasks" in shown
    assert "Loading data from" not in shown and "Saving data to" not in shown

    # Kedro's own default configuration shows them: what the project file changes
    default = Path(kedro.framework.project.__file__).parent / "default_logging.yml"
    assert "Loading data from corpus_info" in _run(project, KEDRO_LOGGING_CONFIG=str(default))
