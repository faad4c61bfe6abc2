"""Chance and text-only baselines on tiny hand-made corpora whose right answers are known, scored through the
prediction files and the evaluate step's scorers."""

import json
import re

import numpy as np
import pytest
import torch

from hero.corpus.manifest import Manifest, VideoEntry
from hero.metrics.captioning import CaptionEvalConfig
from hero.eval.baselines import BaselineConfig, ScorerConfigs, run_baselines
from hero.eval.baselines import ceiling, chance, text_only
from hero.metrics.formats import VideoRanking, read_qa_answers, read_tvr_submission

CLIP = 1.5


class BagOfWords:
    """A sentence encoder whose cosine is word overlap: a text repeated verbatim scores 1, no shared word 0."""

    def __init__(self) -> None:
        self.vocab: dict[str, int] = {}
        self.calls = 0

    def encode(self, texts):
        self.calls += 1
        out = torch.zeros(len(texts), 512)
        for i, t in enumerate(texts):
            for w in re.findall(r"[a-z]+", t.lower()):
                out[i, self.vocab.setdefault(w, len(self.vocab))] += 1
        return torch.nn.functional.normalize(out, dim=-1)


def _video(name, subs, clips=20):
    return VideoEntry(vid_name=name, path=f"videos/{name}.mp4", sha256="0" * 64, duration=clips * CLIP,
                      num_clips=clips, fps=8.0, subs=[list(s) for s in subs], sub_clips=[], unmatched=[])


VIDEOS = {
    "v0": [("Alice: I love pizza with olives.", 0.95, 3.04), ("Bob: The train leaves at noon.", 6.0, 8.2)],
    "v1": [("Carol: My cat sleeps on the piano.", 1.0, 2.0), ("Dan: Pass me the red umbrella.", 9.1, 10.4)],
    "v2": [("Eve: We are flying to Lisbon tomorrow.", 3.2, 5.0)],
    "v3": [],   # no subtitles at all
}


def _qa(i, vid, ts, q, answers, idx):
    return {"id": i, "vid_name": vid, "ts": list(ts), "q": q, "answers": answers, "answer_idx": idx}


def _tasks():
    tvr = {split: [{"id": i, "vid_name": v, "ts": list(ts), "desc": d, "type": "t"}
                   for i, (v, ts, d) in enumerate(rows)] for split, rows in {
        "train": [("v0", (0.0, 3.0), "Alice talks about food.")],
        "val": [("v1", (9.0, 10.5), "Pass me the red umbrella."),          # repeats a subtitle of v1 verbatim
                ("v2", (3.0, 4.5), "Eve is flying to Lisbon tomorrow."),
                ("v3", (0.0, 3.0), "Somebody waves.")]}.items()}      # v3 has no subtitles
    answers = ["pizza", "pasta", "soup", "rice", "bread"]
    tvqa = {
        "train": [_qa(0, "v0", (0, 3), "What does Alice love?", answers, 0),
                  _qa(1, "v1", (0, 3), "Where does the cat sleep?", ["desk", "piano", "bed", "sofa", "floor"], 1),
                  _qa(2, "v2", (3, 5), "Where are they flying?", ["Paris", "Lisbon", "Rome", "Oslo", "Bern"], 1)],
        # the window [5, 9] of v0 holds only the train subtitle: "noon", not "pizza" from the first one
        "val": [_qa(10, "v0", (5.0, 9.0), "When does the train leave?", ["olives", "noon", "pizza", "midnight", "dawn"], 1),
                _qa(11, "v1", (0.0, 3.0), "What sleeps on the piano?", ["A dog.", "A bird.", "A cat.", "A fish.", "A cow."], 2)],
    }
    violin = {
        "train": [{"id": f"t{i}", "vid_name": "v0", "ts": [0, 3], "desc": "x", "label": lab}
                  for i, lab in enumerate([0, 0, 1])],
        "val": [{"id": "a", "vid_name": "v1", "ts": [0.0, 3.0], "desc": "Carol's cat sleeps on the piano.", "label": 1},
                {"id": "b", "vid_name": "v1", "ts": [0.0, 3.0], "desc": "Dan owns a green kite.", "label": 0},
                {"id": "c", "vid_name": "v2", "ts": [3.0, 5.0], "desc": "Eve is flying to Lisbon.", "label": 1},
                {"id": "d", "vid_name": "v2", "ts": [3.0, 5.0], "desc": "Nobody hums.", "label": 0}],
    }
    tvc = {
        "train": [{"id": 0, "vid_name": "v0", "ts": [0.0, 3.0], "descs": [{"desc": "Alice talks about pizza."}]},
                  {"id": 1, "vid_name": "v1", "ts": [0.0, 3.0], "descs": [{"desc": "Carol talks about her cat."}]},
                  {"id": 2, "vid_name": "v2", "ts": [3.0, 5.0], "descs": [{"desc": "Carol talks about her cat."}]}],
        "val": [{"id": 7, "vid_name": "v1", "ts": [0.5, 2.5], "descs": [{"desc": "Carol mentions the cat."}]},
                {"id": 8, "vid_name": "v3", "ts": [0.0, 3.0], "descs": [{"desc": "Someone waves."}]}],
    }
    retrieval = {"val": [{"id": i, "vid_name": v, "ts": None, "desc": d} for i, (v, d) in enumerate(
        [("v2", "A trip to Lisbon tomorrow."), ("v0", "Pizza and a train at noon."), ("v3", "Someone waves.")])]}
    return {"tvr": tvr, "tvqa": tvqa, "violin": violin, "tvc": tvc, "retrieval": retrieval}


def _annotation(task, e):
    """A manifest example back in its public annotation line (what the scorers read)."""
    if task == "tvr":
        return {"desc_id": e["id"], "desc": e["desc"], "vid_name": e["vid_name"], "ts": e["ts"], "type": e["type"]}
    if task == "tvqa":
        return {"qid": e["id"], "q": e["q"], **{f"a{i}": a for i, a in enumerate(e["answers"])},
                "answer_idx": e["answer_idx"], "vid_name": e["vid_name"], "ts": "{}-{}".format(*e["ts"])}
    if task == "violin":
        return {"desc_id": e["id"], "desc": e["desc"], "vid_name": e["vid_name"], "label": e["label"]}
    if task == "tvc":
        return {"clip_id": e["id"], "vid_name": e["vid_name"], "ts": e["ts"], "descs": e["descs"]}
    return {"desc_id": e["id"], "desc": e["desc"], "vid_name": e["vid_name"]}


@pytest.fixture
def corpus(tmp_path):
    tasks = _tasks()
    (tmp_path / "annotations").mkdir()
    for task, splits in tasks.items():
        for split, examples in splits.items():
            lines = [json.dumps(_annotation(task, e)) for e in examples]
            (tmp_path / "annotations" / f"{task}_{split}.jsonl").write_text("\n".join(lines) + "\n")
    return Manifest(root=str(tmp_path), clip_len=CLIP, videos={v: _video(v, s) for v, s in VIDEOS.items()}, tasks=tasks)


CFG = BaselineConfig(splits=("val",), draws=3)
FAST = ScorerConfigs(caption_eval=CaptionEvalConfig(meteor=False, tokenizer="python"))   # no JVM starts


# ---------------------------------------------------------------------------------------------------- text-only
def test_widen_to_clips():
    assert text_only.widen_to_clips(0.95, 3.04, CLIP) == (0.0, 4.5)
    assert text_only.widen_to_clips(1.5, 3.0, CLIP) == (1.5, 3.0)      # already on the grid
    assert text_only.widen_to_clips(1.5, 1.5, CLIP) == (1.5, 3.0)      # at least one clip


@pytest.mark.parametrize("encoder", [BagOfWords, None], ids=["bag-of-words", "minilm"])
def test_tvr_query_repeating_a_subtitle_gets_its_span(corpus, encoder):
    from hero.eval.baselines.encoder import MiniLMEncoder

    enc = encoder() if encoder else MiniLMEncoder()
    sub = text_only.tvr_predictions(corpus.tasks["tvr"]["val"], corpus, list(corpus.videos), enc)
    v1 = sub.video2idx["v1"]
    for task in ("VCMR", "SVMR"):
        top = sub.tasks[task][0].predictions[0]
        assert (top[0], top[1], top[2]) == (v1, 9.0, 10.5), task  # "Pass me the red umbrella." at 9.1-10.4 s
    assert sub.tasks["VR"][0].predictions[0][0] == v1


def test_tvr_video_without_subtitles_svmr_is_the_whole_video_and_vr_last(corpus):
    sub = text_only.tvr_predictions(corpus.tasks["tvr"]["val"], corpus, list(corpus.videos), BagOfWords())
    v3 = sub.video2idx["v3"]
    rows = sub.tasks["SVMR"][2].predictions
    assert rows.shape == (1, 4) and tuple(rows[0, :3]) == (v3, 0.0, 20 * CLIP)
    assert sub.tasks["VR"][2].predictions[-1][0] == v3
    assert v3 not in sub.tasks["VCMR"][2].predictions[:, 0]          # no subtitle: no moment of it


def test_tvr_moments_that_widen_alike_count_once(corpus):
    man = Manifest(root=corpus.root, clip_len=CLIP, tasks=corpus.tasks, videos={
        "v0": _video("v0", [("red kite", 0.2, 1.0), ("red kite flies", 0.5, 1.4), ("blue sea", 3.0, 4.0)])})
    ex = [{"id": 0, "vid_name": "v0", "ts": [0, 1.5], "desc": "red kite"}]
    rows = text_only.tvr_predictions(ex, man, ["v0"], BagOfWords()).tasks["SVMR"][0].predictions
    assert [tuple(r[1:3]) for r in rows] == [(0.0, 1.5), (3.0, 4.5)]


def test_retrieval_ranks_videos_by_their_best_subtitle(corpus):
    ranks = text_only.retrieval_predictions(corpus.tasks["retrieval"]["val"], corpus, list(corpus.videos),
                                            BagOfWords())
    assert ranks[0].ranked[0][0] == "v2" and ranks[1].ranked[0][0] == "v0"
    assert all(r.ranked[-1] == ("v3", text_only.NO_TEXT) for r in ranks)


def test_qa_answer_matched_in_the_question_window(corpus):
    answers = text_only.qa_predictions(corpus.tasks["tvqa"]["val"], corpus, BagOfWords(), fallback=4)
    # q10: "noon" is in the window; "pizza" / "olives" are in the same video, outside the window
    assert [a.answer_idx for a in answers] == [1, 2]


def test_qa_without_any_subtitle_takes_the_fallback(corpus):
    ex = [_qa(0, "v3", (0, 3), "Who waves?", ["a", "b", "c", "d", "e"], 0)]
    assert text_only.qa_predictions(ex, corpus, BagOfWords(), fallback=3)[0].answer_idx == 3


def test_best_threshold_separates_and_prefers_the_lowest_cut():
    assert text_only.best_threshold(np.array([0.1, 0.2, 0.8, 0.9]), [0, 0, 1, 1]) == pytest.approx(0.5)
    assert text_only.best_threshold(np.array([0.3, 0.6]), [1, 1]) < 0.3      # all entailed: below every score
    assert text_only.best_threshold(np.array([0.3, 0.6]), [0, 0]) > 0.6


def test_violin_statement_scores_use_the_window(corpus):
    scores = text_only.statement_scores(corpus.tasks["violin"]["val"], corpus, BagOfWords())
    assert scores[0] > scores[1] and scores[2] > scores[3]


def test_tvc_takes_the_caption_of_the_nearest_training_moment(corpus):
    caps = text_only.caption_predictions(corpus.tasks["tvc"]["train"], corpus.tasks["tvc"]["val"], corpus,
                                         BagOfWords(), fallback="FALLBACK")
    assert caps[0].descs == ("Carol talks about her cat.",)   # the train moment on the same cat subtitle
    assert caps[1].descs == ("FALLBACK",)                     # v3 has no subtitles


# ---------------------------------------------------------------------------------------------------- chance
def test_majorities_come_from_train(corpus):
    assert chance.majority_answer(corpus.tasks["tvqa"]["train"]) == 1          # answers 0, 1, 1
    assert chance.majority_label(corpus.tasks["violin"]["train"]) == 0         # labels 0, 0, 1
    assert chance.most_frequent_caption(corpus.tasks["tvc"]["train"]) == "Carol talks about her cat."
    assert chance.majority([3, 5, 5, 3]) == 3                                   # a tie: the first seen


def test_uniform_qa_accuracy_is_the_mean_inverse_answer_count():
    ex = [{"answers": ["a"] * 5}, {"answers": ["a"] * 4}]
    assert chance.uniform_qa_accuracy(ex) == pytest.approx(100 * (1 / 5 + 1 / 4) / 2)


def test_candidate_spans_follow_the_moment_head_rule():
    spans = chance.candidate_spans(6, min_len=2, max_len=4)
    assert {tuple(s) for s in spans} == {(0, 2), (1, 3), (2, 4), (3, 5), (0, 3), (1, 4), (2, 5)}
    assert chance.candidate_spans(2, min_len=2, max_len=4).tolist() == [[0, 1]]   # too short: the whole video


def test_random_tvr_rows_are_valid_candidates(corpus):
    clips = {v: e.num_clips for v, e in corpus.videos.items()}
    sub = chance.random_tvr_submission(corpus.tasks["tvr"]["val"], clips, CLIP, np.random.default_rng(0),
                                       min_len=2, max_len=16, top_k=100)
    for q, e in zip(sub.tasks["SVMR"], corpus.tasks["tvr"]["val"]):
        rows = q.predictions
        assert len(rows) == 100 and (rows[:, 0] == sub.video2idx[e["vid_name"]]).all()
        length = np.round((rows[:, 2] - rows[:, 1]) / CLIP).astype(int)
        assert ((length >= 3) & (length <= 16)).all() and (rows[:, 2] <= 20 * CLIP).all()
        assert len({tuple(r[1:3]) for r in rows}) == 100                   # drawn without replacement
    assert sorted(sub.tasks["VR"][0].predictions[:, 0]) == list(range(len(clips)))


def test_random_retrieval_recall_averages_to_k_over_n(corpus):
    videos = [f"v{i}" for i in range(8)]
    ex = [{"id": i, "vid_name": videos[i % 8]} for i in range(40)]
    rng = np.random.default_rng(0)
    hits = [[r.ranked[0][0] == e["vid_name"] for r, e in zip(chance.random_rankings(ex, videos, rng), ex)]
            for _ in range(100)]
    assert np.mean(hits) == pytest.approx(1 / 8, abs=0.02)       # 4000 draws: 3 standard deviations


# ---------------------------------------------------------------------------------------------------- ceiling
def _recall(rankings, examples, k):
    return 100 * np.mean([e["vid_name"] in [v for v, _ in r.ranked[:k]] for r, e in zip(rankings, examples)])


# "Bob waves." happens in v0, v1 and v2: one ranking serves all three queries, so at most one of them hits at rank 1
REPEATS = [{"id": i, "vid_name": v, "ts": [1.5 * i, 1.5 * i + 3.0], "desc": d} for i, (v, d) in enumerate(
    [("v0", "Bob waves."), ("v1", "Bob waves."), ("v2", "Bob waves."), ("v3", "Alice sits."), ("v1", "Eve hums."),
     ("v3", "Eve hums.")])]


def test_ceiling_rankings_reach_the_bound_at_every_rank():
    videos = ["v0", "v1", "v2", "v3"]
    ranks = ceiling.ceiling_rankings(REPEATS, videos)
    assert [r.desc_id for r in ranks] == [e["id"] for e in REPEATS]
    assert len({r.ranked for r in ranks[:3]}) == 1                       # identical texts, identical rankings
    # rank 1: one of the three "Bob waves.", "Alice sits.", one of the two "Eve hums."
    assert _recall(ranks, REPEATS, 1) == pytest.approx(100 * 3 / 6)
    assert _recall(ranks, REPEATS, 2) == pytest.approx(100 * 5 / 6)
    assert _recall(ranks, REPEATS, 3) == 100.0


def test_no_ranking_that_depends_on_the_text_alone_beats_the_ceiling():
    videos = ["v0", "v1", "v2", "v3"]
    top = ceiling.ceiling_rankings(REPEATS, videos)
    rng = np.random.default_rng(0)
    texts = sorted({e["desc"] for e in REPEATS})
    for _ in range(300):   # any function text -> order of the videos
        order = {t: [videos[j] for j in rng.permutation(len(videos))] for t in texts}
        other = [VideoRanking(desc_id=e["id"], ranked=tuple((v, 0.0) for v in order[e["desc"]])) for e in REPEATS]
        for k in (1, 2, 3):
            assert _recall(other, REPEATS, k) <= _recall(top, REPEATS, k) + 1e-9


def test_ceiling_tvr_submission_scores_the_bound(tmp_path):
    from hero.metrics.formats import write_tvr_submission
    from hero.metrics.scoring import score_moment_retrieval

    examples = [{**e, "type": "v"} for e in REPEATS]
    ann = tmp_path / "tvr_val.jsonl"
    ann.write_text("".join(json.dumps(_annotation("tvr", e)) + "\n" for e in examples))
    sub = ceiling.ceiling_tvr_submission(examples, ["v0", "v1", "v2", "v3"])
    assert [len(q.predictions) for q in sub.tasks["SVMR"]] == [1] * 6          # its own moment, in its own video
    write_tvr_submission(tmp_path / "pred.json", sub)
    m = score_moment_retrieval(tmp_path / "pred.json", ann)
    assert m["vr_r1"] == pytest.approx(50.0) and m["vcmr_r1_iou0.7"] == pytest.approx(50.0)
    assert m["svmr_r1_iou0.7"] == 100.0


# ---------------------------------------------------------------------------------------------------- all
def test_run_baselines_scores_every_task_with_the_evaluate_metric_names(corpus, tmp_path):
    out = run_baselines(corpus, tmp_path / "out", CFG, FAST, encoder=BagOfWords())
    assert set(out) == {"chance", "uniform", "text-only", "ceiling"}
    assert {k.split("/")[0] for k in out["ceiling"]} == {"tvr", "retrieval"}   # ranking tasks only
    assert out["ceiling"]["tvr/val/vr_r1"] == out["ceiling"]["retrieval/val/r1"] == 100.0   # no text repeats
    assert out["ceiling"]["tvr/val/vcmr_r1_iou0.7"] == out["ceiling"]["tvr/val/svmr_r1_iou0.5"] == 100.0
    for key in ("tvr/val/vcmr_r1_iou0.7", "tvr/val/svmr_r1_iou0.5", "tvr/val/vr_r1", "tvqa/val/acc",
                "violin/val/acc", "tvc/val/cider", "retrieval/val/r1"):
        assert key in out["chance"] and key in out["text-only"], key
    val = corpus.tasks["tvqa"]["val"]
    assert out["chance"]["tvqa/val/acc"] == 100 * np.mean([e["answer_idx"] == 1 for e in val])
    assert out["chance"]["violin/val/acc"] == 50.0          # majority 0; two of the four val statements are 0
    assert out["text-only"]["tvqa/val/acc"] == 100.0
    assert out["text-only"]["tvr/val/svmr_r1_iou0.5"] == pytest.approx(200 / 3)   # v1 and v2 found, v3 not
    assert out["uniform"] == {"tvqa/val/acc": 20.0, "violin/val/acc": 50.0}
    answers = read_qa_answers(tmp_path / "out/tvqa/text-only/val_predictions.jsonl")
    assert [a.answer_idx for a in answers] == [1, 2]
    assert read_tvr_submission(tmp_path / "out/tvr/chance/val_predictions.json").tasks.keys() == {"VCMR", "SVMR", "VR"}
    assert not list((tmp_path / "out/tvr/chance").glob("tmp*"))   # the other draws' files are gone


def test_random_draws_are_seeded(corpus, tmp_path):
    a = run_baselines(corpus, tmp_path / "a", CFG, encoder=BagOfWords(), datasets=["tvr", "retrieval"])
    b = run_baselines(corpus, tmp_path / "b", CFG, encoder=BagOfWords(), datasets=["tvr", "retrieval"])
    run_baselines(corpus, tmp_path / "c", BaselineConfig(splits=("val",), draws=3, seed=1), encoder=BagOfWords(),
                  datasets=["tvr", "retrieval"])
    assert a["chance"] == b["chance"]
    assert (tmp_path / "a/tvr/chance/val_predictions.json").read_bytes() != \
        (tmp_path / "c/tvr/chance/val_predictions.json").read_bytes()


def test_unlabelled_or_missing_splits_are_skipped(corpus, tmp_path):
    corpus.tasks["tvqa"]["test"] = [{**corpus.tasks["tvqa"]["val"][0], "answer_idx": None}]   # a test release
    out = run_baselines(corpus, tmp_path / "out", BaselineConfig(splits=("val", "test")), encoder=BagOfWords(),
                        datasets=["tvqa"])
    assert not any("/test/" in k for flat in out.values() for k in flat)
    assert "tvqa/val/acc" in out["chance"]


def test_the_encoder_is_asked_once_per_task_not_per_example(corpus, tmp_path):
    enc = BagOfWords()
    run_baselines(corpus, tmp_path / "out", CFG, encoder=enc, datasets=["tvqa"])
    assert enc.calls == 2          # the window subtitles, then the answers
