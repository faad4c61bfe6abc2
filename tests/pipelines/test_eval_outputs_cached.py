"""Two runs in one folder: a run's summary reads its own evaluation, not the file the other run rewrote."""

import json


def test_summarize_reads_this_runs_evaluation_not_the_file_another_run_rewrote(project):
    """The catalog's per-task evaluation outputs, built from conf/base as Kedro builds them: a value saved in this
    session is what this session loads, whatever another run wrote to the file meanwhile; a session that did not
    save it (summarize run alone) reads the file."""
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(project)
    with KedroSession.create(project_path=project, env="test") as session:
        catalog = session.load_context().catalog
        ours = {"pretrained": {"svmr_r1_iou0.5": {"q1": 1.0}}}
        catalog.save("tvr_eval_examples", ours)
        path = project / "data/07_model_output/tvr/eval_examples.json"
        assert json.loads(path.read_text()) == ours
        path.write_text(json.dumps({"pretrained": {"svmr_r1_iou0.5": {"q1": 0.0}}}))  # the other run's save
        assert catalog.load("tvr_eval_examples") == ours
    with KedroSession.create(project_path=project, env="test") as session:
        assert session.load_context().catalog.load("tvr_eval_examples")["pretrained"]["svmr_r1_iou0.5"] == {"q1": 0.0}
