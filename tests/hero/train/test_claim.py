"""Two jobs on one run folder: the second waits for the first, then finds the run finished (no interleaving)."""

import json
import subprocess
import sys
import time

import yaml

from hero.train.claim import CLAIM_FILE, claim_run_dir


def test_two_processes_on_one_run_dir_train_it_once(tmp_path):
    run_dir = tmp_path / "run"
    cfg = {"preset": "hero-tiny", "data": {"source": "random", "size": 32, "frames": [4, 8]},
           "train": {"global_batch": 4, "max_steps": 30, "log_every": 1, "ckpt_every": 10, "run_dir": str(run_dir)}}
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(cfg))
    cmd = [sys.executable, "-m", "hero.train", "--config", str(tmp_path / "run.yaml")]
    first = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (run_dir / CLAIM_FILE).exists() or not (run_dir / CLAIM_FILE).read_text():
        assert time.time() < deadline and first.poll() is None, first.communicate()[1][-2000:]
        time.sleep(0.05)
    second = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    out, err = first.communicate(timeout=300)
    assert first.returncode == 0 and second.returncode == 0, err[-1500:] + second.stderr[-1500:]
    assert f"training {run_dir}: held by pid" in second.stderr and "waiting for it to finish" in second.stderr
    assert "nothing to do" in second.stderr
    steps = [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 31))  # one writer, each step once
    assert (run_dir / CLAIM_FILE).read_text() == ""  # an idle claim is empty


def test_a_claim_is_released_on_error(tmp_path):
    try:
        with claim_run_dir(tmp_path / "r"):
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    with claim_run_dir(tmp_path / "r"):  # would block forever if the first claim were still held
        assert "pid" in (tmp_path / "r" / CLAIM_FILE).read_text()
