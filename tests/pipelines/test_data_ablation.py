"""The data ablations: the domain table with its computed verdict, the mixture run config, one domain variant and one
channel variant end to end on conf/test."""

import json
import sqlite3

import pytest
import yaml

ABLATION = {"corpora": {"tv": "main", "howto": {"path": "synthetic"}}, "tasks": ["tvr", "tvqa"],
            "variants": {"tv_only": {"tv": 1, "howto": 0}, "howto_only": {"tv": 0, "howto": 1},
                         "both": {"tv": 1, "howto": 1}}}
CHANNELS = {"tasks": ["tvqa"], "variants": ["video", "subtitles", "both"]}


def _row(variant, values, run=None):
    """A variant's result file: ``values`` = {corpus: (vcmr, svmr, acc)}."""
    row = {"variant": variant}
    for corpus, (vcmr, svmr, acc) in values.items():
        row |= {f"{corpus}/tvr/vcmr_r1_iou0.7": vcmr, f"{corpus}/tvr/svmr_r1_iou0.5": svmr, f"{corpus}/tvqa/acc": acc}
    if run:
        row |= {"mlflow_run_id": run, "mlflow_experiment_id": "3"}
    return row


def _write(project, folder, name, row):
    path = project / "reports" / folder / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(row))


N = 60   # examples per task in the constructed per-example files


def _hits(rate):
    """Per-example values of one task: the first ``rate`` of N examples hit (100), the rest miss (0)."""
    return {f"q{i}": 100.0 if i < rate * N else 0.0 for i in range(N)}


def _examples(project, folder, name, rates, split="val"):
    """A variant's examples.json: ``rates`` = {"<prefix>": (rate per headline metric)}."""
    from pipelines.data_ablation.nodes import EXAMPLES

    names = {"tvr": ("vcmr_r1_iou0.7", "svmr_r1_iou0.5"), "tvqa": ("acc",)}
    tasks = {prefix: [dict(zip(names[prefix.rsplit("/", 1)[-1]], map(_hits, r)))] for prefix, r in rates.items()}
    path = project / "data/06_models" / folder / name / EXAMPLES
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"split": split, "seeds": 1, "tasks": tasks}))


def test_table_rows_link_runs_and_the_verdict_is_computed_per_domain(project):
    from pipelines.data_ablation.nodes import data_ablation_table

    _write(project, "data_ablations", "tv_only", _row("tv_only", {"tv": (2.0, 10.0, 40.0), "howto": (1.0, 5.0, 20.0)}, "r1"))
    _write(project, "data_ablations", "howto_only", _row("howto_only", {"tv": (1.0, 8.0, 30.0), "howto": (3.0, 9.0, 50.0)}))
    _write(project, "data_ablations", "both", _row("both", {"tv": (2.5, 10.0, 45.0), "howto": (2.0, 9.5, 40.0)}, "r3"))
    # tv: both is far above both singles on vcmr and acc, equal to tv_only on svmr (the same examples hit).
    # howto: both is far above both singles on svmr, far below howto_only on vcmr and acc.
    _examples(project, "data_ablation", "tv_only", {"tv/tvr": (0.3, 0.5), "tv/tvqa": (0.2,),
                                                    "howto/tvr": (0.3, 0.3), "howto/tvqa": (0.3,)})
    _examples(project, "data_ablation", "howto_only", {"tv/tvr": (0.4, 0.4), "tv/tvqa": (0.3,),
                                                       "howto/tvr": (0.9, 0.4), "howto/tvqa": (0.9,)})
    _examples(project, "data_ablation", "both", {"tv/tvr": (0.9, 0.5), "tv/tvqa": (0.9,),
                                                 "howto/tvr": (0.2, 0.9), "howto/tvqa": (0.2,)})
    _write(project, "channel_ablations", "video", {"variant": "video", "tvqa/acc": 33.25, "mlflow_run_id": "c1",
                                                   "mlflow_experiment_id": "4"})
    text = data_ablation_table(ABLATION, CHANNELS)
    tables = [[ln for ln in block.splitlines() if ln.startswith("|")] for block in text.split("## ")[1:]]
    domain, channels = tables
    assert domain[0].replace(" ", "") == ("|pretrainingdata|tv/tvr/vcmr_r1_iou0.7|tv/tvr/svmr_r1_iou0.5|tv/tvqa/acc|"
                                          "howto/tvr/vcmr_r1_iou0.7|howto/tvr/svmr_r1_iou0.5|howto/tvqa/acc|weights|")
    assert "[tv_only](http://127.0.0.1:5000/#/experiments/3/runs/r1)" in domain[2]
    assert domain[3].startswith("| howto_only |")  # no run recorded: the name alone
    assert "45.00" in domain[4] and "tv 1, howto 1" in domain[4]
    # then the paired comparisons: both − tv_only, both − howto_only per domain/task and metric
    pairs = domain[5:]
    assert pairs[0].replace(" ", "").startswith("|task|metric|both−tv_only|verdict(bothvstv_only)|both−howto_only|")
    tv_svmr = next(r for r in pairs if r.startswith("| tv/tvr | svmr_r1_iou0.5 |"))
    assert "| +0.00 [+0.00, +0.00] | no difference |" in tv_svmr
    assert ("on tv, mixing (both) helped: a gain over every single-domain pretraining on 2 of 3 headline metrics "
            "(tvr/vcmr_r1_iou0.7, tvqa/acc)") in text
    assert ("on howto, mixing (both) did not help: a gain over every single-domain pretraining on 1 of 3 headline "
            "metrics (tvr/svmr_r1_iou0.5), a loss against one on 2 (tvr/vcmr_r1_iou0.7, tvqa/acc)") in text
    assert channels[0].replace(" ", "") == "|channels|tvqa/acc|"
    assert len(channels) == 3  # header, rule, video (subtitles and both have no result yet)
    assert "[video](http://127.0.0.1:5000/#/experiments/4/runs/c1)" in channels[2] and "33.25" in channels[2]
    assert "No per-example values for both, subtitles, video" in text
    assert "Not in the table, no result yet: subtitles, both (`kedro run --pipelines=channel_ablation" in text
    assert "no result yet: tv_only" not in text      # every domain variant has its row


def test_the_domain_table_ends_with_each_domains_baselines(project):
    """Rows ``chance`` and ``text-only`` under the domain variants: each column from its own domain's baselines."""
    from pipelines.data_ablation.nodes import data_ablation_table

    _write(project, "data_ablations", "tv_only", {**_row("tv_only", {"tv": (2.0, 10.0, 40.0)}), "split": "test"})
    for corpus, value in (("tv", 11.0), ("howto", 22.0)):
        (project / f"{corpus}.json").write_text(json.dumps({
            "text-only": {"tvr/test/svmr_r1_iou0.5": value, "tvr/val/svmr_r1_iou0.5": -1.0, "tvqa/test/acc": value + 1},
            "chance": {"tvr/test/svmr_r1_iou0.5": value / 10}}))
    text = data_ablation_table(ABLATION, CHANNELS, {"tv": "tv.json", "howto": "howto.json"})
    domain = [ln for ln in text.split("## Pretraining data")[1].split("## Input")[0].splitlines() if ln.startswith("|")]
    header = [c.strip() for c in domain[0].strip("|").split("|")]
    rows = {r.split("|")[1].strip(): dict(zip(header, (c.strip() for c in r.strip("|").split("|")))) for r in domain[2:]}
    assert rows["text-only"]["tv/tvr/svmr_r1_iou0.5"] == "11.00" and rows["text-only"]["howto/tvr/svmr_r1_iou0.5"] == "22.00"
    assert rows["text-only"]["howto/tvqa/acc"] == "23.00" and rows["chance"]["tv/tvr/svmr_r1_iou0.5"] == "1.10"
    assert rows["chance"]["tv/tvqa/acc"] == ""
    assert text.startswith("# Data ablations\n\nTest split")


def test_no_verdict_without_a_single_domain_result(project):
    from pipelines.data_ablation.nodes import data_ablation_table

    _write(project, "data_ablations", "both", _row("both", {"tv": (2.5, 10.0, 45.0), "howto": (2.0, 9.5, 40.0)}))
    text = data_ablation_table(ABLATION, CHANNELS)
    assert "both" in text and "mixing" not in text


def test_mixture_run_config_is_a_valid_run_with_each_corpus_and_its_weight():
    from hero.train.config import RunConfig
    from pipelines.data_ablation.nodes import mixture_run_config

    corpora = {n: {"manifest_info": {"path": f"/m/{n}.json"}, "features_info": {"path": "/f", "dim": 24}}
               for n in ("tv", "howto")}
    cfg = RunConfig.from_dict(mixture_run_config({"preset": "hero-tiny"}, corpora, {"tv": 1, "howto": 0}))
    assert "feature_dim" not in cfg.model          # the trainer reads it from the stores (with_data_facts)
    assert {n: (c.path, c.features, c.weight) for n, c in cfg.data.corpora.items()} == {
        "tv": ("/m/tv.json", "/f", 1.0), "howto": ("/m/howto.json", "/f", 0.0)}


def test_a_variant_naming_an_unknown_corpus_fails_before_any_job(project):
    from pipelines.data_ablation.nodes import run_data_ablation

    corpora = {"tv": {}, "howto": {}}
    bad = {**ABLATION, "variants": {"odd": {"tv": 1, "cooking": 1}}}
    with pytest.raises(ValueError, match=r"data_ablation.variants.odd: .*unknown: \['cooking'\]"):
        run_data_ablation("odd", bad, {}, {}, {}, {}, corpora)
    with pytest.raises(ValueError, match="data_ablation_variant: 'nope'"):
        run_data_ablation("nope", ABLATION, {}, {}, {}, {}, corpora)


def test_data_root_at_moves_the_layers_for_the_code_inside_only(project, tmp_path):
    from pipelines.paths import data_root_at, layer

    with data_root_at(tmp_path / "other"):
        assert layer("01_raw") == tmp_path / "other/01_raw"
    assert layer("01_raw") == project / "data/01_raw"


def _metric_keys(db, run_id):
    return {k for (k,) in db.execute("select distinct key from metrics where run_uuid = ?", (run_id,))}


def _children(db, parent):
    return {name for (name,) in db.execute(
        "select r.name from runs r join tags t on t.run_uuid = r.run_uuid "
        "where t.key = 'mlflow.parentRunId' and t.value = ?", (parent,))}


def _kedro_run(project, pipeline, **params):
    """One `kedro run` in-process; its MLflow run is closed after it, as the end of a `kedro run` process does
    (kedro-mlflow leaves the session's run active in the process, and the next session would log into it)."""
    import mlflow
    from kedro.framework.session import KedroSession

    with KedroSession.create(project_path=project, env="test", runtime_params=params) as session:
        session.run(pipeline_names=[pipeline])
    while mlflow.active_run():
        mlflow.end_run()


@pytest.mark.slow
def test_a_domain_variant_and_a_channel_variant_end_to_end(project):
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(project)
    _kedro_run(project, "data_ablation", data_ablation_variant="both")
    # the instructional corpus is built under data/corpora/, out of the main corpus and features stages' folders
    assert list((project / "data/corpora/01_raw").glob("synthetic-instructional-*/videos"))
    assert not list((project / "data/01_raw").glob("synthetic-instructional-*"))
    row = json.loads((project / "reports/data_ablations/both.json").read_text())
    assert row["weights"] == {"tv": 1, "howto": 1}
    for corpus in ("tv", "howto"):
        assert all(isinstance(row[f"{corpus}/tvr/{m}"], float) for m in ("vcmr_r1_iou0.7", "svmr_r1_iou0.5"))
    db = sqlite3.connect(project / "mlruns/mlflow.db")
    parent = row["mlflow_run_id"]
    children = _children(db, parent)
    (pretrain,) = [name for name in children if name.startswith("both: pretrain")]  # the mixture's own run
    assert children == {pretrain, "data_ablation/both/tv/tvr", "data_ablation/both/howto/tvr"}
    (pre_id,) = [r for (r,) in db.execute("select run_uuid from runs where name = ?", (pretrain,))]
    assert {"train/tv/loss", "train/howto/loss"} <= _metric_keys(db, pre_id)  # per-corpus losses
    pre_cfg = yaml.safe_load(next((project / "data/06_models/data_ablation/both/pretrain").glob("*/config.yaml")).read_text())
    assert {n: c["weight"] for n, c in pre_cfg["data"]["corpora"].items()} == {"tv": 1.0, "howto": 1.0}

    _kedro_run(project, "channel_ablation", channel_ablation_variant="video")
    ch = json.loads((project / "reports/channel_ablations/video.json").read_text())
    assert isinstance(ch["tvqa/acc"], float)
    # the main pretraining run (the pipeline's upstream stage, found done) and the variant's job
    assert _children(db, ch["mlflow_run_id"]) == {"pretrain hero-mini 4 steps", "channel_ablation/video/tvqa"}
    ft_cfg = yaml.safe_load(next((project / "data/06_models/channel_ablation/video/tvqa").glob("*/config.yaml")).read_text())
    main_pre = json.loads((project / "data/06_models/pretrain/pretrain_info.json").read_text())
    assert ft_cfg["data"]["channels"] == "video" and ft_cfg["train"]["init_from"] == main_pre["run_dir"]

    # each variant keeps its per-example values, the input of the tables' paired comparisons
    kept = json.loads((project / "data/06_models/data_ablation/both/examples.json").read_text())
    assert set(kept["tasks"]) == {"tv/tvr", "howto/tvr"} and row["split"] == kept["split"]
    assert json.loads((project / "data/06_models/channel_ablation/video/examples.json").read_text())["tasks"]["tvqa"]

    _kedro_run(project, "data_ablation_table")
    text = (project / "docs/results_data.md").read_text()
    assert f"runs/{parent})" in text and f"runs/{ch['mlflow_run_id']})" in text
    # each domain's reference baselines, computed on that domain's corpus
    for corpus in ("tv", "howto"):
        numbers = json.loads((project / f"data/08_reporting/data_ablation_baselines/{corpus}.json").read_text())
        value = numbers["text-only"][f"tvr/{row['split']}/svmr_r1_iou0.5"]
        assert f"{value:.2f}" in text.split("## Pretraining data")[1].split("| text-only |")[1].split("\n")[0]


def test_the_channel_table_ends_with_the_main_corpus_baselines_on_its_split(project):
    """Rows ``chance`` and ``text-only`` under the channel variants, from baselines.json on the split the variants
    were scored on (``split`` in their result files; val for files from before it was recorded)."""
    from pipelines.baselines.nodes import baselines_path
    from pipelines.data_ablation.nodes import data_ablation_table

    baselines_path().parent.mkdir(parents=True, exist_ok=True)
    baselines_path().write_text(json.dumps({
        "chance": {"tvqa/val/acc": 19.8, "tvqa/test/acc": 23.6},
        "text-only": {"tvqa/val/acc": 70.5, "tvqa/test/acc": 75.0}}))
    _write(project, "channel_ablations", "video", {"variant": "video", "split": "test", "tvqa/acc": 33.25})
    channels = [ln for ln in data_ablation_table(ABLATION, CHANNELS).split("## Input channels")[1].splitlines()
                if ln.startswith("|")]
    assert [ln.split("|")[1].strip() for ln in channels[2:]] == ["video", "chance", "text-only"]
    assert "23.60" in channels[3] and "75.00" in channels[4]
    _write(project, "channel_ablations", "video", {"variant": "video", "tvqa/acc": 33.25})   # no split: val
    channels = [ln for ln in data_ablation_table(ABLATION, CHANNELS).split("## Input channels")[1].splitlines()
                if ln.startswith("|")]
    assert "19.80" in channels[3] and "70.50" in channels[4]
