"""`kedro run` of the whole default DAG on conf/test, in a subprocess (it prints no warning), then the MLflow store
it leaves behind, read through a real `mlflow server`'s REST API (what `mlflow ui` shows)."""

import json
import re
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request

import pytest

DATASETS = ("tvr", "tvqa", "violin", "tvc", "retrieval")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(url: str, body: dict) -> dict:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


@pytest.mark.slow
@pytest.mark.timeout(3600)  # the run alone may take its subprocess timeout (1800 s) on a loaded machine
def test_default_pipeline_run_tracks_one_parent_run_with_children(project, kedro_env):
    out = subprocess.run([sys.executable, "-m", "kedro", "run", "--env", "test"], cwd=project, env=kedro_env(),
                         capture_output=True, text=True, timeout=1800)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "Downstream results" in out.stdout + out.stderr
    # a clean run warns about nothing: no Python warning (UserWarning, FutureWarning, ...) and no WARNING log line,
    # from the Kedro process or a training job's (their output is relayed with a [job] prefix)
    noisy = [line for line in (out.stdout + out.stderr).splitlines() if re.search(r"Warning\b|\bWARNING\b", line)]
    assert noisy == [], "\n".join(noisy[:20])
    assert "Loading data from" not in out.stdout + out.stderr  # Kedro's per-dataset lines: below the default level

    metrics = json.loads((project / "data/08_reporting/metrics.json").read_text())
    for ds in DATASETS:
        assert any(k.startswith(f"{ds}/val/") for k in metrics), ds
        assert any(k.startswith(f"scratch/{ds}/val/") for k in metrics), ds
        assert list((project / "data/07_model_output" / ds / "pretrained").glob("val_predictions.json*"))
    results = (project / "data/08_reporting/results.md").read_text()
    assert "| tvr |" in results
    # each arm against the text-only baseline, example by example, below the main table
    assert "| task | metric | pretrained − text-only | verdict (pretrained vs text-only) |" in results
    # the checkpoint each job was scored on: model selection's (conf/test selects at step 3 of 3)
    assert metrics["tvr/val/selected_step"] == metrics["scratch/tvr/val/selected_step"] == 3.0
    assert "Scored checkpoints (the step model selection kept on val, or the last one): " in results
    # TVR's selection also keeps a weight of the frames' span term (finetune.visual_span_weights), listed with it
    assert re.search(r"tvr pretrained 3 \(visual_span_weight [0-9.]+\), scratch 3 \(visual_span_weight [0-9.]+\)", results)
    assert metrics["tvr/val/variant/visual_span_weight"] in (1.0, 0.5, 0.25, 0.0)
    # DVC's metrics file (git-tracked): the headline metrics per task and init, nothing else
    headline = json.loads((project / "reports/metrics.json").read_text())
    assert set(headline) == set(DATASETS)
    assert set(headline["tvr"]) == {"vcmr_r1_iou0.7", "svmr_r1_iou0.5"}
    assert set(headline["tvr"]["vcmr_r1_iou0.7"]) == {"pretrained", "scratch"}

    db = sqlite3.connect(project / "mlruns/mlflow.db")
    runs = dict(db.execute("select run_uuid, name from runs").fetchall())
    parent_of = dict(db.execute("select run_uuid, value from tags where key='mlflow.parentRunId'").fetchall())
    parents = [r for r in runs if r not in parent_of]
    assert len(parents) == 1, runs
    assert runs[parents[0]] == "default · hero-mini · pretrain 4 steps · finetune 3 steps · env test"
    children = {runs[r]: r for r in runs if parent_of.get(r) == parents[0]}
    assert sorted(children) == sorted(["pretrain hero-mini 4 steps",
                                       *(f"{ds} / {init}" for ds in DATASETS for init in ("pretrained", "scratch"))])
    # the parent holds one headline number per task (the pretrained model's, with its interval and its gain over
    # scratch) and the reference baselines' numbers, no copy of the children's curves
    parent_keys = {k for (k,) in db.execute("select distinct key from metrics where run_uuid=?", (parents[0],))}
    baseline_keys = {k for k in parent_keys if k.startswith("baseline/")}
    headlines = {"tvr/vcmr_r1_iou0.7", "tvqa/acc", "violin/acc", "tvc/cider", "retrieval/r1"}
    selected = {f"{ds}/selected_step/{init}" for ds in DATASETS for init in ("pretrained", "scratch")}
    ends = ("", "_low", "_high", "_gain", "_vs_text_only", "_vs_text_only_low", "_vs_text_only_high")
    assert parent_keys - baseline_keys == {h + end for h in headlines for end in ends} | selected
    assert {k.split("/")[1] for k in baseline_keys} == {"chance", "uniform", "text-only", "ceiling"}
    assert db.execute("select count(*) from params where run_uuid=?", (parents[0],)).fetchone()[0] > 20
    pre_keys = {k for (k,) in db.execute("select distinct key from metrics where run_uuid=?",
                                         (children["pretrain hero-mini 4 steps"],))}
    assert "train/loss" in pre_keys
    tvr_keys = {k for (k,) in db.execute("select distinct key from metrics where run_uuid=?", (children["tvr / pretrained"],))}
    assert {"train/loss", "tvr/val/vcmr_r1_iou0.7"} <= tvr_keys  # its curves and its evaluation
    # every child carries its job's config as params: the compare view sets pretrained against scratch
    for name, child in children.items():
        params = dict(db.execute("select key, value from params where run_uuid=?", (child,)).fetchall())
        assert {"train.seed", "train.max_steps", "optim.lr", "data.path"} <= set(params), name
        if name.startswith("pretrain"):
            continue
        assert params["init"] in ("pretrained", "scratch") and params["task"] in DATASETS
        assert (params["train.init_from"] == "None") == (params["init"] == "scratch")

    # The same runs through the tracking server's REST API, as `mlflow ui` serves them.
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
                               "--backend-store-uri", f"sqlite:///{project / 'mlruns/mlflow.db'}",
                               "--default-artifact-root", str(project / "mlruns/artifacts"), "--workers", "1"],
                              cwd=project, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}/api/2.0/mlflow"
        deadline = time.time() + 120
        while True:
            try:
                exps = _post(f"{base}/experiments/search", {"max_results": 10})
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(1)
        exp = next(e for e in exps["experiments"] if e["name"] == "hero-platform")
        found = _post(f"{base}/runs/search", {"experiment_ids": [exp["experiment_id"]], "max_results": 100})
        assert len(found["runs"]) == 2 + 2 * len(DATASETS)
        parent = next(r for r in found["runs"] if r["info"]["run_id"] == parents[0])
        names = {m["key"] for m in parent["data"]["metrics"]}
        assert "tvr/vcmr_r1_iou0.7" in names
        child = next(r for r in found["runs"] if r["info"]["run_id"] == children["tvr / pretrained"])
        assert {d["dataset"]["name"] for d in child["inputs"]["dataset_inputs"]} == {"corpus manifest", "feature store"}
    finally:
        server.terminate()
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:  # on a loaded machine the server's workers may not stop in time
            server.kill()
            server.wait(timeout=30)
