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
