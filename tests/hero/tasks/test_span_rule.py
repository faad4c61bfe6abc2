"""The moment retrieval task's span rule (``min_span`` / ``max_span``) is the one its predictions are ranked with:
model selection and evaluation (`predict_split` with no ``rank_cfg``) and the chance baseline of the pipeline; a
whole ``rank_cfg`` given to evaluation still wins."""

import json

import pytest

from hero.config import ConfigError
from hero.corpus import CorpusConfig, ingest_corpus
from hero.features.store import FeatureStore
from hero.metrics.moment_ranking import MomentRankConfig
from hero.presets import preset_tokenizer
from hero.synth import SynthConfig, generate_corpus
from hero.tasks.moment_retrieval import MomentRetrievalConfig
from hero.tasks.predict import predict_split
from hero.train.config import RunConfig
from hero.train.finetune import build_task_model
from pipelines.baselines.nodes import scorer_configs

from task_helpers import random_store

DIM = 16
SMALL = {"hidden_size": 32, "num_heads": 2, "intermediate_size": 64, "cross_layers": 1, "temporal_layers": 1,
         "feature_dim": DIM, "dropout": 0.0, "attention_dropout": 0.0}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("spans")
    generate_corpus(root / "c", SynthConfig(size="tiny", seed=5, num_videos=4, workers=1))
    manifest = ingest_corpus(CorpusConfig(path=str(root / "c")))
    return root, manifest, FeatureStore(random_store(root, manifest, DIM))


def _span_lengths(corpus, tmp_path, name, **finetune):
    root, manifest, store = corpus
    cfg = RunConfig.from_dict({"preset": "hero-mini", "model": SMALL, "text_init": False, "task": "tvr",
                               "finetune": finetune})
    preset = cfg.build_preset()
    model = build_task_model("tvr", cfg.finetune, preset).task
    out = predict_split(model, "tvr", manifest, store, preset_tokenizer(preset), "val", tmp_path / name,
                        score=False)
    sub = json.loads(open(out["predictions"]).read())
    clips = [round((row[2] - row[1]) / manifest.clip_len) for q in sub["SVMR"] for row in q["predictions"]]
    return min(clips), max(clips)


def test_predictions_follow_the_tasks_span_rule(corpus, tmp_path):
    assert _span_lengths(corpus, tmp_path, "hero")[0] == 3                   # HERO's: n - m >= 2, three clips
    shortest, longest = _span_lengths(corpus, tmp_path, "short", min_span=0, max_span=4)
    assert shortest == 1 and longest <= 4
    cfg = MomentRetrievalConfig(min_span=0, max_span=4)
    assert cfg.span_rule(2.0, nms_threshold=0.5) == MomentRankConfig(clip_len=2.0, min_len=0, max_len=4,
                                                                      nms_threshold=0.5)
    with pytest.raises(ConfigError, match="max_span"):
        MomentRetrievalConfig(min_span=3, max_span=3)


def test_the_chance_baseline_ranks_with_the_tvr_finetunings_span_rule():
    tasks = {"tasks": {"tvr": {"finetune": {"min_span": 0}}}}
    assert scorer_configs({}, tasks).moment_rank == MomentRankConfig(min_len=0)
    assert scorer_configs({}, {"run": {"finetune": {"max_span": 8}}}).moment_rank == MomentRankConfig(max_len=8)
    assert scorer_configs({}, {}).moment_rank is None                          # HERO's, the scorer's default
    given = {"options": {"tvr": {"rank_cfg": {"min_len": 1}}}}
    assert scorer_configs(given, tasks).moment_rank == MomentRankConfig(min_len=1)   # evaluation's own wins
