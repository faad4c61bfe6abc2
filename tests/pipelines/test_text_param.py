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
    assert rel == "models/roberta"                                      # jobs run in the project folder
    inside = corpus_run_config(run, MANIFEST, FEATURES, {"tokenizer": str(tmp_path / "models/x")})["data"]["tokenizer"]
    assert inside == "models/x"                                         # recorded relative to it: it moves with it
    assert corpus_run_config(run, MANIFEST, FEATURES, {"tokenizer": "minilm"})["data"]["tokenizer"] == "minilm"


def test_a_tokenizer_that_does_not_fit_stops_before_launch(tmp_path, monkeypatch, bpe_vocab_writer):
    """The job is refused when the node asks for it (`TrainingJob`), so no run directory or job exists."""
    from pipelines import launch
    from pipelines.pretrain import nodes

    monkeypatch.setenv("HERO_PROJECT_ROOT", str(tmp_path))
    monkeypatch.setattr(launch, "launch_torchrun", lambda *a, **k: pytest.fail("launched"))
    small = bpe_vocab_writer(tmp_path / "small", mask_id=300)
    text = {"tokenizer": str(small.relative_to(tmp_path))}  # a project-relative path, checked from any directory
    with pytest.raises(ConfigError, match=r"^data.tokenizer: .*vocab.json: 301 tokens, preset hero-base has 50265"):
        nodes.pretrain({"run": {"preset": "hero-base"}}, {}, MANIFEST, FEATURES, {}, text)
    with pytest.raises(ConfigError, match="^data.tokenizer: preset hero-base names no tokenizer"):
        nodes.pretrain({"run": {"preset": "hero-base"}}, {}, MANIFEST, FEATURES, {}, None)
    assert not (tmp_path / "data").exists()
