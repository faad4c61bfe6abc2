"""The pipeline's datasets without a pipeline: a training run directory is keyed by content, trained once, found done
the next time (its curves logged again, no job launched); records and manifests hold project-relative paths; the
training code the keys cover is the code DVC's training stages depend on; the parent run's title."""

import json
from pathlib import Path

import pytest
import yaml

from hero.corpus.manifest import Manifest

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = {"kind": "corpus manifest", "path": "data/02_intermediate/manifest-m.json", "key": "m"}
FEATURES = {"kind": "feature store", "path": "data/03_primary/features", "dim": 24, "key": "f"}
RUN = {"preset": "hero-mini", "train": {"max_steps": 2, "seed": 0},
       "data": {"source": "corpus", "path": MANIFEST["path"], "features": FEATURES["path"]}}


class FakeRun:
    """A `pipelines.tracking.Run` that remembers what was logged."""

    def __init__(self):
        self.run_id, self.replayed, self.tags, self.artifacts = "r1", [], {}, []

    def env(self, prefix=""):
        return {"MLFLOW_RUN_ID": self.run_id, "HERO_MLFLOW_PREFIX": prefix}

    def replay(self, rows, prefix=""):
        self.replayed.append((list(rows), prefix))

    def set_tags(self, tags):
        self.tags.update(tags)

    def log_artifact(self, path, artifact_path=None):
        self.artifacts.append((Path(path).name, artifact_path))


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.setenv("HERO_PROJECT_ROOT", str(tmp_path))
    return tmp_path


@pytest.fixture
def fake_launch(monkeypatch):
    """`launch_torchrun` replaced by a job that writes its config and two metric rows; records each launch."""
    from pipelines import launch

    launches = []

    def fake(cfg, run_dir, launch_cfg, extra_env=None, label=None, **kw):
        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg))
        rows = [{"step": 1, "train/loss": 2.0, "train/mlm/loss": 2.0}, {"step": 2, "train/loss": 1.0}]
        (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        launches.append({"cfg": cfg, "run_dir": run_dir, "env": extra_env, "label": label})
        return run_dir

    monkeypatch.setattr(launch, "launch_torchrun", fake)
    return launches


def job(**over):
    from pipelines.datasets import TrainingJob

    return TrainingJob(**{"name": "tvr-scratch", "title": "tvr / scratch", "config": RUN,
                          "inputs": {"manifest": "m", "features": "f"}, "tags": {"task": "tvr"},
                          "data": (MANIFEST, FEATURES), **over})


def test_a_run_dir_is_trained_once_then_found_done(project, fake_launch, monkeypatch):
    from pipelines import tracking
    from pipelines.datasets import RunDirDataset

    run = FakeRun()
    opened = []

    class Tracker(tracking.Tracker):
        def child(self, title, **kw):
            import contextlib

            opened.append((title, kw))
            return contextlib.nullcontext(run)

    monkeypatch.setattr(tracking, "current", lambda: Tracker(None))
    ds = RunDirDataset(filepath=str(project / "data/06_models/finetune/tvr_finetune_info.json"))
    ds.save(job())
    record = ds.load()
    assert record["run_dir"] == f"data/06_models/finetune/tvr-scratch/{record['key']}"  # relative: moves with it
    assert record["final"] == {"step": 2, "train/loss": 1.0} and record["mlflow_run_id"] == "r1"
    run_dir = project / record["run_dir"]
    assert json.loads((run_dir / "done.json").read_text()) == {"finished": True}
    (launched,) = fake_launch
    assert launched["env"] == {"MLFLOW_RUN_ID": "r1", "HERO_MLFLOW_PREFIX": ""}  # the job logs into its child run
    assert "pipelines.tracking:MlflowSink" in launched["cfg"]["train"]["sinks"]
    assert launched["label"] == "finetune/tvr-scratch"
    title, kw = opened[0]
    assert title == "tvr / scratch" and kw["params"]["train"]["max_steps"] == 2 and kw["tags"]["task"] == "tvr"
    assert [(i.name, i.digest) for i in kw["inputs"]] == [("corpus manifest", "m"), ("feature store", "f")]
    assert run.tags == {"cached": "false"} and run.replayed == []

    ds.save(job())  # the same job again: found done, nothing launched, its recorded curves logged again
    assert len(fake_launch) == 1 and run.tags == {"cached": "true"}
    (rows, prefix), = run.replayed
    assert [r["step"] for r in rows] == [1, 2] and prefix == ""
    assert ds.load()["key"] == record["key"]

    ds.save(job(config={**RUN, "train": {**RUN["train"], "max_steps": 3}}))  # another config: another folder
    assert len(fake_launch) == 2 and ds.load()["key"] != record["key"]


def test_the_run_key_covers_config_inputs_and_training_code(project, monkeypatch):
    from pipelines import datasets

    key = job().key()
    assert job(title="renamed", tags={}).key() == key  # names and tags are not content
    assert job(inputs={"manifest": "m2", "features": "f"}).key() != key
    monkeypatch.setattr(datasets, "code_fingerprint", lambda folders: "another version")
    assert job().key() != key


@pytest.mark.parametrize("lr", ["fast", float("nan"), float("inf"), 1e9])  # YAML's .nan / .inf / 1.0e9
def test_a_bad_job_config_fails_in_the_node_naming_its_key(project, lr):
    from hero.config import ConfigError

    with pytest.raises(ConfigError, match=r"^optim\.lr: "):
        job(config={**RUN, "optim": {"lr": lr}})
    assert not (project / "data").exists()  # before any run folder is created


def test_a_job_set_runs_side_by_side_into_one_record(project, fake_launch, monkeypatch):
    from pipelines.datasets import JobSet, RunDirDataset

    ds = RunDirDataset(filepath=str(project / "data/06_models/finetune/tvr_finetune_info.json"))
    ds.save(JobSet({"pretrained": job(name="tvr-pretrained"), "scratch": job()}, parallel=2))
    record = ds.load()
    assert list(record) == ["pretrained", "scratch"] and len(fake_launch) == 2
    assert record["scratch"]["run_dir"].startswith("data/06_models/finetune/tvr-scratch/")
    ds.save(JobSet({}))  # a dataset left out of finetune.datasets
    assert ds.load() == {}


def test_training_code_is_what_the_training_stages_of_dvc_depend_on():
    from pipelines.datasets import TRAINING_CODE

    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    for name in ("pretrain", "finetune", "ablation", "data_ablation", "channel_ablation"):
        stage = stages[name].get("do", stages[name])
        assert set(TRAINING_CODE) <= set(stage["deps"]), name
        for out in stage["outs"]:  # DVC never deletes what the keys decide on
            assert next(iter(out.values()))["persist"] is True, (name, out)


def test_manifests_record_project_relative_paths(project):
    from pipelines.datasets import Ingestion, ManifestDataset, open_manifest

    root = project / "data/01_raw/synthetic-x"
    made = Manifest(root=str(root), clip_len=1.5, videos={}, tasks={"tvr": {"val": [{"desc": "a"}]}},
                    report={"skipped": {"x": [f"{root}/videos/bad.mp4: no frames"]}},
                    config={"path": str(root), "clip_len": 1.5}, features={"source": "/data/video_db", "kind": "lmdb"})
    calls = []
    ds = ManifestDataset(filepath=str(project / "data/02_intermediate/manifest_info.json"))
    ds.save(Ingestion({"corpus": "c"}, lambda: calls.append(1) or made))
    ds.save(Ingestion({"corpus": "c"}, lambda: calls.append(1) or made))
    assert calls == [1]  # the second finds the manifest of that key
    record = ds.load()
    assert record["root"] == "data/01_raw/synthetic-x" and record["examples"] == {"tvr/val": 1}
    text = (project / record["path"]).read_text()
    assert str(project) not in text and "/data/video_db" in text  # a source outside the project stays as given
    opened = open_manifest(record)
    assert opened.root == str(root) and opened.features["source"] == "/data/video_db"


def test_paths_are_relative_inside_the_project_and_resolved_from_anywhere(project, tmp_path_factory):
    from pipelines.paths import relative, resolve

    assert relative(project / "data/x") == "data/x"
    assert relative("data/x") == "data/x"
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    assert relative(elsewhere / "c") == str(elsewhere / "c")
    assert relative("s3://bucket/c") == "s3://bucket/c"
    assert resolve("data/x") == str(project / "data/x") and resolve("s3://b/c") == "s3://b/c"


def test_the_parent_run_is_named_for_what_it_runs():
    from kedro.pipeline import Pipeline, node

    from pipelines.hooks import run_title

    params = {"pretrain": {"run": {"preset": "hero-mini", "train": {"max_steps": 200}}},
              "finetune": {"run": {"train": {"max_steps": 60}}}, "ablation_variant": "flat_all"}
    default = Pipeline([node(len, "params:pretrain", "a", tags=["pretrain"]),
                        node(len, "params:finetune", "b", tags=["finetune"])])
    assert run_title({"pipeline_names": None, "env": None}, params, default) == \
        "default · hero-mini · pretrain 200 steps · finetune 60 steps"
    ablation = Pipeline([node(len, "params:ablation_variant", "c", tags=["ablation"])])
    assert run_title({"pipeline_names": ["ablation"], "tags": ["ablation"], "env": "test"}, params, ablation) == \
        "ablation · hero-mini · ablation_variant=flat_all · env test"
    assert run_title({"pipeline_names": ["evaluate"], "tags": ["evaluate"]}, {}, None) == "evaluate"


def test_a_dataset_input_raced_by_another_run_is_linked_on_the_next_try(caplog):
    """MLflow's sqlite store inserts a dataset row after looking it up: a run logging the same corpus at the same
    moment as another (side-by-side jobs, two `kedro run`) hits the unique key once; the row exists then."""
    from mlflow.exceptions import MlflowException

    from pipelines.tracking import DataInput, Run

    class Client:
        def __init__(self, failures):
            self.failures, self.logged = failures, []

        def log_inputs(self, run_id, datasets):
            if self.failures:
                self.failures -= 1
                raise MlflowException("(sqlite3.IntegrityError) UNIQUE constraint failed: datasets.experiment_id")
            self.logged.append((run_id, [d.dataset.digest for d in datasets]))

    raced = Client(failures=1)
    Run(raced, "r1").log_inputs([DataInput("corpus manifest", "m", "data/02_intermediate/manifest-m.json")])
    assert raced.logged == [("r1", ["m"])]
    broken = Client(failures=99)
    Run(broken, "r2").log_inputs([DataInput("feature store", "f", "data/03_primary/features")])
    assert broken.logged == [] and "dataset inputs were not recorded" in caplog.text  # a warning, not a failed run


@pytest.mark.parametrize("kind", ["json", "text"])
def test_json_and_text_outputs_are_whole_or_the_old_file(tmp_path, kind):
    """A save that fails half-way (here: a value JSON cannot encode, found after part of the output was produced;
    a text dataset given bytes) leaves the previous file as it was and no temporary beside it; the catalog's JSON
    and text entries use these datasets."""
    from pipelines.datasets import AtomicJSONDataset, AtomicTextDataset

    path = tmp_path / "out.json"
    ds = AtomicJSONDataset(filepath=str(path), save_args={"indent": 1}) if kind == "json" \
        else AtomicTextDataset(filepath=str(path))
    good = {"a": 1, "b": [1, 2]} if kind == "json" else "a table\n"
    ds.save(good)
    before = path.read_bytes()
    assert ds.load() == good
    with pytest.raises(Exception):
        ds.save({"a": 2, "z": object()} if kind == "json" else b"not text")
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["out.json"]


    def types(entry):
        if isinstance(entry, dict):
            yield str(entry.get("type", ""))
            yield from types(entry.get("dataset"))

    for catalog in (ROOT / "conf").rglob("catalog*.yml"):
        for name, entry in yaml.safe_load(catalog.read_text()).items():
            for t in types(entry):
                if t.endswith(("JSONDataset", "TextDataset")):
                    assert t.startswith("pipelines.datasets.Atomic"), f"{catalog}: {name} is a plain {t}"

