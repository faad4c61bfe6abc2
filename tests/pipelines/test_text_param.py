"""`params:text` (text.tokenizer) reaches every job's `data.tokenizer`, and a tokenizer that does not fit the preset
stops the run in the Kedro process, before any job is launched."""

import pytest

from hero.config import ConfigError

MANIFEST = {"path": "/data/m/manifest.json", "key": "m"}
FEATURES = {"path": "/data/f", "dim": 4352, "key": "f"}


def test_text_tokenizer_fills_data_tokenizer(tmp_path, monkeypatch):
    from pipelines.pretrain.nodes import corpus_run_config

    monkeypatch.setenv("HERO_PROJECT_ROOT", str(tmp_path))
    run = {"preset": "hero-base", "data": {"num_workers": 4}}
    assert "tokenizer" not in corpus_run_config(run, MANIFEST, FEATURES)["data"]
    assert "tokenizer" not in corpus_run_config(run, MANIFEST, FEATURES, {"tokenizer": None})["data"]
    cfg = corpus_run_config(run, MANIFEST, FEATURES, {"tokenizer": "/models/roberta-base"})
    assert cfg["data"] == {"num_workers": 4, "source": "corpus", "path": "/data/m/manifest.json", "features": "/data/f",
                           "tokenizer": "/models/roberta-base"}
    rel = corpus_run_config(run, MANIFEST, FEATURES, {"tokenizer": "models/roberta"})["data"]["tokenizer"]
    assert rel == str(tmp_path.resolve() / "models/roberta")          # jobs do not run in the project folder
    assert corpus_run_config(run, MANIFEST, FEATURES, {"tokenizer": "minilm"})["data"]["tokenizer"] == "minilm"


def test_a_tokenizer_that_does_not_fit_stops_before_launch(tmp_path, monkeypatch, bpe_vocab_writer):
    from pipelines.pretrain import nodes

    monkeypatch.setenv("HERO_PROJECT_ROOT", str(tmp_path))
    monkeypatch.setattr(nodes, "launch_torchrun", lambda *a, **k: pytest.fail("launched"))
    small = bpe_vocab_writer(tmp_path / "small", mask_id=300)
    cfg = nodes.corpus_run_config({"preset": "hero-base"}, MANIFEST, FEATURES, {"tokenizer": str(small)})
    with pytest.raises(ConfigError, match=r"^data.tokenizer: .*vocab.json: 301 tokens, preset hero-base has 50265"):
        nodes.run_job("pretrain", cfg, {}, {})
    with pytest.raises(ConfigError, match="^data.tokenizer: preset hero-base names no tokenizer"):
        nodes.run_job("pretrain", nodes.corpus_run_config({"preset": "hero-base"}, MANIFEST, FEATURES), {}, {})
