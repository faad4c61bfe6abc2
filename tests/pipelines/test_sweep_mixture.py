"""The sweep searches corpus-mixture weights like task ratios: the proxy pretrains on data.corpora."""

import pytest

from hero.config import ConfigError
from hero.train.config import RunConfig
from pipelines.sweep.config import SweepConfig
from pipelines.sweep.objective import proxy_pretrain_config
from pipelines.sweep.space import apply_values, check_space

RUN = {"preset": "hero-tiny", "pretrain": {"tasks": {"mlm": 2, "mfm_nce": 2}}, "train": {"max_steps": 50}}
MAIN = ({"path": "/d/tv/manifest.json", "key": "m1"}, {"path": "/d/tv/features", "key": "f1", "dim": 2648})
CORPORA = {"tv": {"manifest_info": MAIN[0], "features_info": MAIN[1]},
           "howto": {"manifest_info": {"path": "/d/howto/manifest.json"}, "features_info": {"path": "/d/howto/f", "dim": 2648}}}


def sweep_config(**objective):
    return SweepConfig.from_params({"objective": objective,
                                    "space": {"data.corpora.howto.weight": {"type": "float", "low": 0.0, "high": 3.0}}})


def test_the_proxy_pretrains_on_the_mixture_and_the_space_sets_a_weight():
    cfg = sweep_config(corpora={"tv": "main", "howto": {"synthetic": {"domain": "instructional"}}}, weights={"tv": 2.0},
                       pretrain={"train": {"max_steps": 20}})
    base = proxy_pretrain_config(cfg, RUN, *MAIN, corpora=CORPORA)
    assert base["data"]["corpora"] == {"tv": {"path": "/d/tv/manifest.json", "features": "/d/tv/features", "weight": 2.0},
                                       "howto": {"path": "/d/howto/manifest.json", "features": "/d/howto/f", "weight": 1.0}}
    assert base["train"]["max_steps"] == 20 and "path" not in base["data"]
    check_space(cfg.space, base)  # both ends of the weight give a valid run config
    point = RunConfig.from_dict(apply_values(base, {"data.corpora.howto.weight": 0.25}))
    assert point.data.corpora["howto"].weight == 0.25 and point.data.corpora["tv"].weight == 2.0


def test_without_corpora_the_proxy_reads_the_main_corpus():
    base = proxy_pretrain_config(sweep_config(), RUN, *MAIN)
    assert base["data"]["path"] == "/d/tv/manifest.json" and "corpora" not in base["data"]


def test_a_weight_for_an_unknown_corpus_names_the_key():
    with pytest.raises(ConfigError, match=r"^sweep\.objective\.weights: wiki not in objective\.corpora"):
        sweep_config(corpora={"tv": "main"}, weights={"wiki": 1.0})


def test_a_weight_key_without_a_mixture_is_refused_before_any_trial():
    cfg = sweep_config()
    with pytest.raises(ConfigError, match=r"^sweep\.space\.data\.corpora\.howto\.weight"):
        check_space(cfg.space, proxy_pretrain_config(cfg, RUN, *MAIN))
