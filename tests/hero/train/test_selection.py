"""Model selection on val: a finetuning run scores a fixed subsample of val every ``select.every`` steps with the
task's own writer and scorer, keeps the best checkpoint under best/, stops early on a patience, and a resumed or
re-run job does not train past its early stop; evaluation loads the selected checkpoint."""

import json

import numpy as np
import pytest

from hero.config import ConfigError
from hero.corpus import CorpusConfig, ingest_corpus
from hero.features.store import StoreWriter, consolidate
from hero.synth import SynthConfig, generate_corpus
from hero.train import run
from hero.train.checkpoint import find_latest
from hero.train.config import RunConfig
from hero.train.finetune import load_task_model

DIM = 16
SMALL = {"hidden_size": 32, "num_heads": 2, "intermediate_size": 64, "cross_layers": 1, "temporal_layers": 1,
         "dropout": 0.0, "attention_dropout": 0.0}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("select")
    generate_corpus(root / "c", SynthConfig(size="tiny", seed=3, num_videos=6, workers=1))
    manifest = ingest_corpus(CorpusConfig(path=str(root / "c")))
    manifest.save(root / "manifest.json")
    rng = np.random.default_rng(0)
    w = StoreWriter(root / "store")
    for vid, entry in manifest.videos.items():
        w.add(vid, rng.normal(size=(entry.num_clips, DIM)).astype(np.float32), key=f"k-{vid}",
              clip_len=manifest.clip_len, extractor="random", dim=DIM)
    w.close()
    consolidate(root / "store")
    assert manifest.tasks["tvqa"]["val"]
    return {"path": str(root / "manifest.json"), "features": str(root / "store")}


def _cfg(corpus, tmp_path, select, lr=1e-3, max_steps=6, task="tvqa"):
    return RunConfig.from_dict({
        "preset": "hero-mini", "model": SMALL, "text_init": False, "task": task, "data": {"source": "corpus", **corpus},
        "optim": {"lr": lr, "warmup_steps": 0},
        "train": {"global_batch": 2, "max_steps": max_steps, "log_every": 1, "run_dir": str(tmp_path / "run"),
                  "select": select}})


def _rows(tmp_path):
    rows = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    return [(r["step"], r["select/acc"]) for r in rows if "select/acc" in r]


def test_selection_keeps_the_best_checkpoint(corpus, tmp_path):
    run(_cfg(corpus, tmp_path, {"every": 2, "max_examples": 5}))
    scored = _rows(tmp_path)
    assert [s for s, _ in scored] == [2, 4, 6]
    best_value = max(v for _, v in scored)
    best_step = next(s for s, v in scored if v == best_value)          # the first step reaching the best
    best = find_latest(tmp_path / "run" / "best")
    assert best is not None and best.step == best_step and best.meta["selection"]["best_value"] == best_value
    # the subsample is the val file's first 5 labeled lines, written beside the run
    subset = (tmp_path / "run" / "selection" / "tvqa_val.jsonl").read_text().splitlines()
    assert 0 < len(subset) <= 5
    selected, _ = load_task_model(tmp_path / "run")
    last, _ = load_task_model(tmp_path / "run", which="last")
    same = all(np.array_equal(a.detach().numpy(), b.detach().numpy())
               for a, b in zip(selected.state_dict().values(), last.state_dict().values()))
    assert same == (best_step == 6)


def test_patience_stops_early_and_a_rerun_does_not_train_on(corpus, tmp_path):
    cfg = _cfg(corpus, tmp_path, {"every": 2, "max_examples": 5, "patience": 1}, lr=1e-12, max_steps=10)
    out = run(cfg)   # a frozen model (lr ~ 0): the second evaluation cannot improve on the first
    assert [s for s, _ in _rows(tmp_path)] == [2, 4]
    assert out["train/step"] == 4 and find_latest(tmp_path / "run").step == 4
    assert find_latest(tmp_path / "run").meta["selection"]["stopped"] is True
    again = run(cfg)
    assert again["train/step"] == 4 and find_latest(tmp_path / "run").step == 4 and len(_rows(tmp_path)) == 2


def test_selection_config_is_checked():
    with pytest.raises(ConfigError, match="train.select.split: selecting on the test split"):
        RunConfig.from_dict({"task": "tvqa", "data": {"source": "corpus", "path": "m.json", "features": "f"},
                             "train": {"select": {"every": 2, "split": "test"}}})
    with pytest.raises(ConfigError, match="train.select.every: model selection scores a downstream task"):
        RunConfig.from_dict({"train": {"select": {"every": 2}}})


def test_a_tie_on_the_selection_metric_is_broken_by_the_tasks_other_headlines(corpus, tmp_path):
    """TVR selects on VCMR R@1 tIoU 0.7, which sits at 0 at a small budget: SVMR R@1 tIoU 0.5 then decides; with
    tie_break off the first evaluation reaching the best is kept, as HERO did."""
    from hero.train.selection import Selector

    cfg = _cfg(corpus, tmp_path, {"every": 2}, task="tvr")
    sel = Selector(cfg, tmp_path / "run")
    assert sel.metric == "vcmr_r1_iou0.7" and sel.ties == ["svmr_r1_iou0.5"]
    history = [(0.0, [5.0]), (0.0, [20.0]), (0.0, [10.0]), (0.5, [1.0]), (0.5, [1.0])]
    kept = []
    for value, ties in history:
        if sel.better(value, ties):
            sel.best_value, sel.best_ties = value, ties
            kept.append((value, ties))
    assert kept == [(0.0, [5.0]), (0.0, [20.0]), (0.5, [1.0])]
    first = Selector(cfg.override("train.select.tie_break=false"), tmp_path / "run")
    assert first.ties == [] and first.better(0.0, [])
    first.best_value = 0.0
    assert not first.better(0.0, [])
    assert not sel.better(float("nan"), [99.0])


def test_captioning_selection_skips_meteor_unless_it_selects(corpus, tmp_path):
    """Selecting TVC on CIDEr-D scores no METEOR (a JVM start per evaluation it would not read); selecting on
    METEOR keeps it."""
    from hero.train.selection import Selector

    on_cider = Selector(_cfg(corpus, tmp_path, {"every": 2}, task="tvc"), tmp_path / "a")
    assert on_cider._scoring_options()["caption_eval"].meteor is False
    on_meteor = Selector(_cfg(corpus, tmp_path, {"every": 2, "metric": "meteor"}, task="tvc"), tmp_path / "b")
    assert on_meteor._scoring_options() == {}
    assert Selector(_cfg(corpus, tmp_path, {"every": 2}), tmp_path / "c")._scoring_options() == {}


def _tvr_match(corpus, tmp_path, weights, name):
    cfg = _cfg(corpus, tmp_path / name, {"every": 2, "max_examples": 8}, task="tvr", max_steps=4)
    return cfg.override("finetune.text_match=true", f"finetune.visual_span_weights={list(weights)}")


def test_selection_keeps_the_visual_span_weight_that_scores_best_and_training_ignores_it(corpus, tmp_path):
    """TVR with ``visual_span_weights``: every evaluation scores each weight, keeps the best (metric, then the
    tie-breaking headline) and the selected checkpoint carries it; the training losses are those of a run that
    tries no weight, bit for bit."""
    from hero.train.selection import Selector

    run(_tvr_match(corpus, tmp_path, [1.0, 0.0], "tried"))
    run(_tvr_match(corpus, tmp_path, [1.0], "plain"))
    rows = {n: [json.loads(x) for x in (tmp_path / n / "run" / "metrics.jsonl").read_text().splitlines()]
            for n in ("tried", "plain")}
    losses = {n: [r["train/loss"] for r in rs if "train/loss" in r] for n, rs in rows.items()}
    assert len(losses["tried"]) == 4 and losses["tried"] == losses["plain"]
    kept = {r["step"]: r["select/visual_span_weight"] for r in rows["tried"] if "select/visual_span_weight" in r}
    assert sorted(kept) == [2, 4] and set(kept.values()) <= {0.0, 1.0}
    assert not any("select/visual_span_weight" in r for r in rows["plain"])

    best = find_latest(tmp_path / "tried" / "run" / "best")
    model, _ = load_task_model(tmp_path / "tried" / "run")
    assert float(model.head.match.visual_span_weight) == kept[best.step]
    sel = Selector(_tvr_match(corpus, tmp_path, [1.0, 0.0], "tried"), tmp_path / "rescore")
    scores = {}
    for w in (1.0, 0.0):
        model.set_inference_variant({"visual_span_weight": w})
        scores[w] = sel._score(model)
    other = 1.0 - kept[best.step]
    assert scores[kept[best.step]] == max(scores.values()) and (scores[other] < scores[kept[best.step]] or other == 0.0)


def test_visual_span_weights_are_checked():
    base = {"task": "tvr", "data": {"source": "corpus", "path": "m.json", "features": "f"}}
    with pytest.raises(ConfigError, match=r"finetune.visual_span_weights: one or more weights in \[0, 1\], got \[1.5\]"):
        RunConfig.from_dict({**base, "finetune": {"text_match": True, "visual_span_weights": [1.5]}})
    # without text_match the weights are ignored (a run turning the match off keeps the demo's other settings)
    plain = RunConfig.from_dict({**base, "finetune": {"visual_span_weights": [1.0, 0.0]}})
    from hero.presets import get_preset
    from hero.train.finetune import build_task_model
    assert build_task_model("tvr", plain.finetune, get_preset("hero-tiny")).task.inference_variants() == ()
