"""Facts of the data are read from the data: the model's feature dimension comes from the feature store the run
reads (the checkpoint records it), and a different value set by hand is an error naming both sources."""

import numpy as np
import pytest

from hero.config import ConfigError
from hero.features.store import StoreWriter, consolidate
from hero.train.config import RunConfig, with_data_facts


def _store(path, dim, n=2):
    w = StoreWriter(path)
    for i in range(n):
        w.add(f"v{i}", np.ones((3, dim), np.float32), key=f"k{i}", clip_len=1.5, extractor="x", dim=dim)
    w.close()
    consolidate(path)
    return str(path)


def _cfg(data, **model):
    return RunConfig.from_dict({"preset": "hero-tiny", "model": model, "data": data})


def test_feature_dim_is_read_from_the_store(tmp_path):
    store = _store(tmp_path / "s", 24)
    cfg = with_data_facts(_cfg({"source": "corpus", "path": str(tmp_path / "m.json"), "features": store}))
    assert cfg.model_config.feature_dim == 24 and cfg.model["feature_dim"] == 24
    assert _cfg({"source": "random"}).model_config.feature_dim != 24          # random data: the preset's
    assert with_data_facts(_cfg({"source": "random"})) == _cfg({"source": "random"})


def test_a_different_feature_dim_by_hand_names_both(tmp_path):
    store = _store(tmp_path / "s", 24)
    with pytest.raises(ConfigError, match=r"model\.feature_dim: 16 in the run config, but the feature store at .* "
                                          r"holds 24-d features"):
        with_data_facts(_cfg({"source": "corpus", "path": "m.json", "features": store}, feature_dim=16))
    same = with_data_facts(_cfg({"source": "corpus", "path": "m.json", "features": store}, feature_dim=24))
    assert same.model_config.feature_dim == 24


def test_a_mixture_must_agree(tmp_path):
    a, b = _store(tmp_path / "a", 24), _store(tmp_path / "b", 32)
    mix = {"corpora": {"tv": {"path": "a.json", "features": a}, "howto": {"path": "b.json", "features": b}}}
    with pytest.raises(ConfigError, match="disagree on the feature dim"):
        with_data_facts(_cfg(mix))
    mix["corpora"]["howto"]["weight"] = 0       # a corpus left out of the mixture is not read
    assert with_data_facts(_cfg(mix)).model_config.feature_dim == 24
