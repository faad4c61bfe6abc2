"""Kedro on a features-only corpus: subtitles + annotations + a HERO video_db LMDB, no videos/ folder."""

import json
import subprocess
import sys

import pytest

from features_only_corpus import build_features_corpus

FEATURE_DIM = 24


@pytest.fixture(scope="module")
def features_corpus(tmp_path_factory):
    """(corpus folder, video_db folder, video2dur file): the tiny synthetic corpus as features only, 24-d."""
    return build_features_corpus(tmp_path_factory.mktemp("featonly"), FEATURE_DIM)


def _params(features_corpus) -> dict:
    root, db, dur = features_corpus
    return {"corpus": {"path": str(root), "features": str(db), "video2dur": str(dur)}}


def test_features_pipeline_imports_a_video_db(project, features_corpus):
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(project)
    with KedroSession.create(project_path=project, env="test", runtime_params=_params(features_corpus)) as session:
        session.run(pipeline_names=["features"])
    corpus_info = json.loads((project / "data/01_raw/corpus_info.json").read_text())
    assert corpus_info["source"] == "features-only" and corpus_info["features"] == str(features_corpus[1])
    info = json.loads((project / "data/02_intermediate/manifest_info.json").read_text())
    assert info["videos"] == 12 and info["examples"]["tvr/val"] == 6
    manifest = json.loads((project / info["path"]).read_text())
    assert manifest["features"]["kind"] == "video_db" and all(v["path"] == "" for v in manifest["videos"].values())
    feats = json.loads((project / "data/03_primary/features_info.json").read_text())
    assert feats["dim"] == FEATURE_DIM and feats["videos"] == 12 and feats["stats"]["imported"] == 12
    assert not list(project.glob("data/01_raw/synthetic-*"))  # no synthetic corpus generated, nothing extracted

    # a second run: the same manifest and store keys, nothing imported
    with KedroSession.create(project_path=project, env="test", runtime_params=_params(features_corpus)) as session:
        session.run(pipeline_names=["features"])
    again = json.loads((project / "data/03_primary/features_info.json").read_text())
    assert again["key"] == feats["key"] and again["stats"]["cached"] == 12 and again["stats"]["imported"] == 0


@pytest.mark.slow  # ~85 s on 2 cores: a pretraining job, ten finetuning jobs, five evaluations
def test_kedro_run_evaluate_on_a_features_only_corpus(project, features_corpus, kedro_env):
    root, db, dur = features_corpus
    params = f"corpus.path={root},corpus.features={db},corpus.video2dur={dur}"
    out = subprocess.run([sys.executable, "-m", "kedro", "run", "--env", "test", "--pipelines", "evaluate",
                          "--params", params], cwd=project, env=kedro_env(), capture_output=True, text=True,
                         timeout=1800)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    metrics = json.loads((project / "data/08_reporting/metrics.json").read_text())
    for ds in ("tvr", "tvqa", "violin", "tvc", "retrieval"):
        assert any(k.startswith(f"{ds}/val/") for k in metrics), ds
    assert "tvr/val/vcmr_r1_iou0.7" in metrics
    assert json.loads((project / "data/03_primary/features_info.json").read_text())["dim"] == FEATURE_DIM
