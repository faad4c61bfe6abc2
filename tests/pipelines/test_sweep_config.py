"""The sweep's config and search space: bad input fails before any trial runs, naming its key."""

import shutil
from pathlib import Path

import pytest

from hero.config import ConfigError
from pipelines.pretrain.nodes import tuned_run
from pipelines.sweep.config import SweepConfig
from pipelines.sweep.space import apply_values, check_space, nested
from pipelines.sweep.study import redact, storage_url

ROOT = Path(__file__).resolve().parents[2]
RUN = {"preset": "hero-tiny", "pretrain": {"tasks": {"mlm": 2, "mfm_nce": 2, "fom": 1, "vsm": 2}},
       "optim": {"lr": 1e-4, "warmup_steps": 10}, "train": {"max_steps": 50}}


def config(**space):
    return SweepConfig.from_params({"space": space or {"optim.lr": {"type": "float", "low": 1e-5, "high": 1e-3}}})


@pytest.mark.parametrize("spec, message", [
    ({"type": "float", "low": 1e-3, "high": 1e-5}, "sweep.space.optim.lr.low: must be finite and < high"),
    ({"type": "float", "low": 0.0, "high": 1e-3, "log": True}, "sweep.space.optim.lr.low: must be > 0 when log"),
    ({"type": "float", "high": 1e-3}, "sweep.space.optim.lr.low: a float parameter needs low and high"),
    ({"type": "float", "low": 1e-5, "hgih": 1e-3}, "sweep.space.optim.lr.hgih: unknown key"),
    ({"type": "uniform", "low": 1e-5, "high": 1e-3}, "sweep.space.optim.lr.type: 'uniform' is not one of"),
    ({"type": "categorical"}, "sweep.space.optim.lr.choices: a categorical parameter needs"),
    ({"type": "categorical", "choices": [1e-4], "low": 0}, "sweep.space.optim.lr.type: categorical takes only"),
    ({"type": "int", "low": 0.5, "high": 3}, "sweep.space.optim.lr.low: an int parameter needs whole numbers"),
])
def test_bad_parameter_specs_name_their_key(spec, message):
    with pytest.raises(ConfigError, match="^" + message.replace("(", r"\(").replace(".", r"\.")):
        SweepConfig.from_params({"space": {"optim.lr": spec}})


@pytest.mark.parametrize("params, message", [
    ({"n_trials": 0}, "sweep.n_trials: must be >= 1"),
    ({"study": "a/b"}, "sweep.study: must be a non-empty name without '/'"),
    ({"objective": {"rungs": [20, 10]}}, "sweep.objective.rungs: need strictly increasing steps"),
    ({"pruner": {"type": "hyperband"}}, "sweep.pruner.type: 'hyperband' is not one of"),
    ({"recovery": {"heartbeat_interval": 60, "grace_period": 30}}, "sweep.recovery.grace_period: must exceed"),
    ({"space": {}}, "sweep.space: needs at least one parameter"),
])
def test_bad_sweep_settings_name_their_key(params, message):
    full = {"space": {"optim.lr": {"type": "float", "low": 1e-5, "high": 1e-3}}, **params}
    with pytest.raises(ConfigError, match="^" + message.replace("(", r"\(").replace(".", r"\.")):
        SweepConfig.from_params(full)


@pytest.mark.parametrize("key, spec, message", [
    ("optim.lrr", {"type": "float", "low": 1e-5, "high": 1e-3}, "optim.lrr: unknown key"),
    ("optim.warmup_steps", {"type": "float", "low": 0, "high": 30}, "optim.warmup_steps: expected an integer"),
    ("pretrain.mask_prob", {"type": "float", "low": 0.1, "high": 1.0}, "pretrain.mask_prob: must be in (0, 1)"),
    ("pretrain.tasks.mlmm", {"type": "float", "low": 0.5, "high": 2}, "pretrain.tasks.mlmm: unknown objective"),
    ("optim.decay", {"type": "categorical", "choices": ["linear", "step"]}, "optim.decay: 'step' is not one of"),
    ("model.dropout", {"type": "float", "low": 0.0, "high": 0.2}, "model keys are not swept"),
])
def test_space_is_checked_against_the_run_config(key, spec, message):
    cfg = config(**{key: spec})
    with pytest.raises(ConfigError) as err:
        check_space(cfg.space, RUN)
    assert str(err.value).startswith(f"sweep.space.{key}: ") and message in str(err.value)


def test_space_ends_are_checked_together():
    """Each ratio may be 0 alone, but all at their low end leave no objective to train."""
    zero = {"type": "float", "low": 0.0, "high": 2.0}
    cfg = config(**{f"pretrain.tasks.{t}": zero for t in ("mlm", "mfm_nce", "fom", "vsm")})
    with pytest.raises(ConfigError, match=r"^sweep\.space: every parameter at its low end .*pretrain\.tasks: ratios sum to 0"):
        check_space(cfg.space, RUN)


def test_values_merge_into_the_run_config_keeping_their_types():
    values = {"pretrain.tasks.mlm": 3.5, "optim.lr": 1e-5, "optim.warmup_steps": 4, "optim.decay": "cosine"}
    run = apply_values(RUN, values)
    assert run["pretrain"]["tasks"] == {"mlm": 3.5, "mfm_nce": 2, "fom": 1, "vsm": 2}  # the other ratios stay
    assert run["optim"] == {"lr": 1e-5, "warmup_steps": 4, "decay": "cosine"}
    assert nested({"optim.lr": 1e-5}) == {"optim": {"lr": 1e-5}} and isinstance(run["optim"]["lr"], float)


def test_storage_urls_resolve_against_the_project_root(tmp_path, monkeypatch):
    assert storage_url("sqlite:///data/s.db", tmp_path) == f"sqlite:///{tmp_path}/data/s.db"
    assert storage_url("sqlite:////abs/s.db", tmp_path) == "sqlite:////abs/s.db"
    assert storage_url("journal:data/s.log", tmp_path) == f"journal:{tmp_path}/data/s.log"
    assert storage_url("postgresql://u@h/db", tmp_path) == "postgresql://u@h/db"
    monkeypatch.setenv("SWEEP_DB", "postgresql://u:secret@h:5432/db")
    assert redact(storage_url("env:SWEEP_DB", tmp_path)) == "postgresql://u:***@h:5432/db"
    monkeypatch.delenv("SWEEP_DB")
    with pytest.raises(ConfigError, match="sweep.storage: 'env:SWEEP_DB' names the environment variable SWEEP_DB"):
        storage_url("env:SWEEP_DB", tmp_path)


def test_written_best_params_change_the_next_pretrain_run_config(tmp_path, monkeypatch):
    """The sweep's best values go to a file under data/ through the `sweep_best` dataset of the catalog (the file
    globals.yml names), never into conf/; the pretrain node's run config carries them; `sweep_best_file=none`
    switches them off."""
    from kedro.config import OmegaConfigLoader
    from kedro.io import DataCatalog

    monkeypatch.setenv("HERO_PROJECT_ROOT", str(tmp_path))
    conf = shutil.copytree(ROOT / "conf", tmp_path / "conf", ignore=shutil.ignore_patterns("local"))
    (conf / "local").mkdir()
    before_conf = sorted(p.read_bytes() for p in conf.rglob("*") if p.is_file())

    def loaded(runtime_params=None):
        loader = OmegaConfigLoader(str(conf), base_env="base", default_run_env="local", runtime_params=runtime_params,
                                   custom_resolvers={"root": lambda: str(tmp_path)})
        catalog = DataCatalog.from_config(loader["catalog"])
        return loader["parameters"], catalog

    params, catalog = loaded()
    assert catalog.load("sweep_best") == {}  # no sweep yet: nothing tuned
    before = tuned_run(params["pretrain"]["run"], catalog.load("sweep_best"))
    assert before["pretrain"]["tasks"]["mlm"] == 2 and before["optim"]["lr"] == 1e-4
    values = nested({"pretrain.tasks.mlm": 3.25, "optim.lr": 2.5e-4, "optim.warmup_steps": 7})
    catalog.save("sweep_best", {"values": values, "note": "study t, trial 0"})
    assert (tmp_path / "data/06_models/sweep/best_params.yml").is_file()
    assert sorted(p.read_bytes() for p in conf.rglob("*") if p.is_file()) == before_conf  # conf/ untouched
    params, catalog = loaded()
    after = tuned_run(params["pretrain"]["run"], catalog.load("sweep_best"))
    assert after["pretrain"]["tasks"] == {**before["pretrain"]["tasks"], "mlm": 3.25}
    assert after["optim"] == {**before["optim"], "lr": 2.5e-4, "warmup_steps": 7}
    catalog.save("sweep_best", {})  # a sweep without a complete trial leaves the last values
    assert catalog.load("sweep_best") == values
    _, off = loaded({"sweep_best_file": "none"})
    assert off.load("sweep_best") == {}


def test_the_decoder_ratio_is_in_the_default_space_and_a_drawn_value_turns_it_on():
    import yaml

    from hero.train.config import RunConfig

    space = yaml.safe_load((ROOT / "conf/base/parameters_sweep.yml").read_text())["sweep"]["space"]
    spec = SweepConfig.from_params({"space": space}).space["pretrain.tasks.dec"]
    assert spec.type == "float" and spec.low == 0.0 < spec.high
    cfg = RunConfig.from_dict(apply_values(RUN, {"pretrain.tasks.dec": 0.7}))
    assert cfg.pretrain.tasks == {**RunConfig.from_dict(RUN).pretrain.tasks, "dec": 0.7}  # the other ratios kept
