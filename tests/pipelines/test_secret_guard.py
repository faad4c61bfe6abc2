"""A URI with credentials in the run's parameters stops the run before MLflow stores anything of it."""

import sqlite3

import pytest

from pipelines.hooks import credential_params

SECRET = "s3cr3t-value"


def test_credential_uris_are_found_by_their_dotted_key():
    params = {"corpus": {"path": f"s3://AKIAEXAMPLE:{SECRET}@bucket/corpus"},
              "sweep": {"storage": "sqlite:////data/optuna.db", "extra": ["postgresql://u:pw@db:5432/x", "fine"]},
              "launch": {"rdzv_endpoint": "node:29400"}, "note": "user@example.com: a:b@c"}
    assert credential_params(params) == ["corpus.path", "sweep.extra[0]"]


def test_a_run_with_a_credential_in_corpus_path_fails_before_mlflow_logs_it(project):
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(project)
    uri = f"s3://AKIAEXAMPLE:{SECRET}@bucket/corpus"
    session = KedroSession.create(project_path=project, env="test", runtime_params={"corpus": {"path": uri}})
    with session, pytest.raises(ValueError, match=r"^params: corpus\.path: a URI with credentials") as err:
        session.run(pipeline_names=["corpus"])
    assert SECRET not in str(err.value)
    db = project / "mlruns/mlflow.db"
    params = sqlite3.connect(db).execute("select value from params").fetchall() if db.exists() else []
    assert not any(SECRET in v for (v,) in params)
    written = [p for p in project.glob("data/**/*") if p.is_file()]
    assert not any(SECRET in p.read_text(errors="ignore") for p in written)


PLANTED = "planted-Secret-4f9c2e"


def test_secret_looking_parameters_are_redacted_by_key_path_and_shape():
    from pipelines.hooks import REDACTED, redact

    params = {"launch": {"env": {"AWS_SECRET_ACCESS_KEY": PLANTED, "NCCL_IB_DISABLE": 1}, "nnodes": 2},
              "text": {"tokenizer": "/models/vocab.json", "max_tokens": 64},
              "store": {"api_key": PLANTED, "hfToken": PLANTED, "url": "postgresql://u:pw@db/x", "id": "AKIAABCDEFGHIJKLMNOP"},
              "train": {"lr": 1e-4, "flags": [True, None]}}
    shown = redact(params)
    assert shown["launch"] == {"env": {"AWS_SECRET_ACCESS_KEY": REDACTED, "NCCL_IB_DISABLE": REDACTED}, "nnodes": 2}
    assert shown["text"] is params["text"] and shown["train"] is params["train"]  # untouched subtrees are shared
    assert set(shown["store"].values()) == {REDACTED}
    assert params["launch"]["env"]["AWS_SECRET_ACCESS_KEY"] == PLANTED  # the original is never modified
    assert redact({"a": 1}) == {"a": 1}


def test_hooks_see_redacted_parameters_and_the_node_gets_the_real_ones():
    from kedro.framework.hooks import hook_impl
    from kedro.framework.hooks.manager import _create_hook_manager

    from pipelines.hooks import RedactSecrets

    seen = {}

    class Spy:  # stands for kedro-mlflow's before_node_run, which logs the inputs' parameters
        @hook_impl
        def before_node_run(self, inputs):
            seen.update(inputs)

    hm = _create_hook_manager()
    hm.register(RedactSecrets())
    hm.register(Spy())
    inputs = {"params:launch": {"env": {"AWS_SECRET_ACCESS_KEY": PLANTED}}, "data": [PLANTED]}
    hm.hook.before_node_run(node=None, catalog=None, inputs=inputs, is_async=False, run_id="r")
    assert seen["params:launch"] == {"env": {"AWS_SECRET_ACCESS_KEY": "***"}} and seen["data"] == [PLANTED]
    assert inputs["params:launch"]["env"]["AWS_SECRET_ACCESS_KEY"] == PLANTED  # what the node receives


def test_a_worker_secret_passed_as_launch_env_reaches_no_store_file_or_log(project, kedro_env):
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "kedro", "run", "--env", "test", "--pipelines", "pretrain",
                          "--params", f"launch.env.AWS_SECRET_ACCESS_KEY={PLANTED}"],
                         cwd=project, env=kedro_env(), capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    assert PLANTED not in out.stdout + out.stderr
    db = project / "mlruns/mlflow.db"
    params = dict(sqlite3.connect(db).execute("select key, value from params").fetchall())
    assert params.get("launch.env.AWS_SECRET_ACCESS_KEY") == "***" or all(PLANTED not in v for v in params.values())
    leaks = [p for root in ("mlruns", "data", "logs") for p in (project / root).rglob("*")
             if p.is_file() and PLANTED.encode() in p.read_bytes()]
    assert not leaks
