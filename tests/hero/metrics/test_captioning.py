"""Caption metrics through pycocoevalcap on hand-computed cases; METEOR with and without Java (the tokenizer:
test_ptb_tokenizer.py)."""

import logging
import shutil

import pytest

from hero.metrics import captioning
from hero.metrics.captioning import CaptionEvalConfig, caption_metrics, tvc_metrics
from hero.metrics.formats import CaptionAnnotation, CaptionPrediction

NO_METEOR = CaptionEvalConfig(meteor=False)


def test_exact_match_hand_computed():
    # two clips with disjoint vocabularies, hypothesis == reference:
    # BLEU-1/2 = 1; no 3-/4-grams (pycocoevalcap's 1e-9 smoothing gives 1e-2 / 1e-3 of a unit);
    # ROUGE-L = 1; CIDEr-D per clip = 10 * mean(cos_1 = 1, cos_2 = 1, 0, 0) = 5
    out = caption_metrics({"a": "Aa bb.", "b": "cc dd"}, {"a": ["aa bb"], "b": ["Cc, dd!"]}, NO_METEOR)
    assert out["bleu1"] == pytest.approx(100.0) and out["bleu2"] == pytest.approx(100.0)
    assert out["bleu3"] == pytest.approx(1.0) and out["bleu4"] == pytest.approx(0.1)
    assert out["rouge_l"] == pytest.approx(100.0) and out["cider"] == pytest.approx(500.0)
    assert "meteor" not in out


def test_partial_match_hand_computed():
    # hyp "a b c e" vs ref "a b c d": p1 = 3/4, ROUGE-L: LCS 3, P = R = 3/4 -> F = 3/4
    out = caption_metrics({"x": "a b c e"}, {"x": ["a b c d"]}, NO_METEOR)
    assert out["bleu1"] == pytest.approx(75.0) and out["rouge_l"] == pytest.approx(75.0)
    assert out["bleu2"] == pytest.approx(100 * (3 / 4 * 2 / 3) ** 0.5)


def test_multiple_references_hand_computed():
    # clip a: hyp matches ref 1 of 2 -> CIDEr-D sums cos over refs / 2 = 10 * 0.5 / 2 = 2.5; clip b: 5
    out = caption_metrics({"a": "a b", "b": "e f"}, {"a": ["a b", "c d"], "b": ["e f"]}, NO_METEOR)
    assert out["cider"] == pytest.approx(375.0)
    assert out["bleu1"] == pytest.approx(100.0) and out["rouge_l"] == pytest.approx(100.0)   # best ref counts


def test_missing_caption_is_scored_empty_and_vid_name_is_checked():
    gts = [CaptionAnnotation(1, "v1", (0, 1), ("a b",)), CaptionAnnotation(2, "v2", (0, 1), ("c d",))]
    out = tvc_metrics([CaptionPrediction("v2", 2, (0, 1), ("c d", "ignored"))], gts, NO_METEOR)
    assert out["rouge_l"] == pytest.approx(50.0) and out["cider"] == pytest.approx(250.0)
    with pytest.raises(ValueError, match="vid_name"):
        tvc_metrics([CaptionPrediction("other", 2, (0, 1), ("c d",))], gts, NO_METEOR)


def test_no_java_warns_once_and_reports_the_rest(monkeypatch, caplog):
    monkeypatch.setattr(captioning, "java_path", lambda: None)
    monkeypatch.setattr(captioning, "_warned", set())
    with caplog.at_level(logging.WARNING, logger="hero.metrics.captioning"):
        for _ in range(2):
            out = caption_metrics({"a": "a b"}, {"a": ["a b"]})
            assert "meteor" not in out and set(out) >= {"bleu4", "rouge_l", "cider"}
    warnings = [r for r in caplog.records if "METEOR skipped" in r.getMessage()]
    assert len(warnings) == 1 and "java" in warnings[0].getMessage()


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("java") is None, reason="METEOR needs java on PATH")
def test_meteor_with_java():
    out = caption_metrics({"a": "a man walks to the door", "b": "she sits down"},
                          {"a": ["a man walks to the door"], "b": ["the dog barks loudly"]})
    assert 0.0 < out["meteor"] < 100.0 and out["bleu1"] > 0.0    # one JVM start: a few seconds


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("java") is None, reason="METEOR needs java on PATH")
def test_shared_meteor_starts_one_process_and_scores_as_separate_ones(monkeypatch):
    """Inside `shared_meteor` every scoring uses one METEOR process (its protocol carries no state between
    splits), with the scores of one process per call; it is closed when the block ends."""
    from pycocoevalcap.meteor import meteor

    started = []
    real_init = meteor.Meteor.__init__

    def counting_init(self):
        real_init(self)
        started.append(self)

    monkeypatch.setattr(meteor.Meteor, "__init__", counting_init)
    splits = [({"a": "a man walks to the door", "b": "she sits down"},
               {"a": ["a man walks to the door"], "b": ["the dog barks loudly"]}),
              ({"c": "the dog runs", "d": "a cup on the table"},
               {"c": ["a dog runs in the park"], "d": ["the cup stands on a table", "a table"]})]
    alone = [caption_metrics(h, r)["meteor"] for h, r in splits]
    assert len(started) == 2
    with captioning.shared_meteor():
        shared = [caption_metrics(h, r)["meteor"] for h, r in splits * 2]
        assert len(started) == 3 and started[-1].meteor_p.poll() is None
    assert shared == alone * 2
    assert started[-1].meteor_p.poll() is not None     # closed with the block
