"""Every task's per-example values: their mean is the number its scorer reports, keyed by the annotation ids."""

import json

import numpy as np
import pytest

from hero.metrics.captioning import CaptionEvalConfig
from hero.metrics.formats import (
    CaptionPrediction, QaAnswer, ViolinLabel, rankings_from_scores, write_captions, write_qa_answers,
    write_rankings, write_tvr_submission, write_violin_labels,
)
from hero.metrics.formats.tvr import QueryPredictions, TvrSubmission
from hero.metrics.retrieval import RetrievalEvalConfig
from hero.tasks.captioning import CaptioningTask
from hero.tasks.moment_retrieval import MomentRetrievalTask
from hero.tasks.prediction import PredictOptions, Written
from hero.tasks.registry import TASKS
from hero.tasks.text_video_retrieval import TextVideoRetrievalTask
from hero.tasks.video_inference import ViolinTask
from hero.tasks.video_qa import VideoQaTask


def jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def ident(i):
    """Ids as files carry them: some ints, some strings (matched by str)."""
    return i if i % 2 else f"q-{i}"


def assert_means_match(per_example, scores, ann_ids, headlines):
    assert set(headlines) <= set(per_example)
    for metric, values in per_example.items():
        assert metric in scores
        assert set(values) <= set(ann_ids)
        assert np.mean(list(values.values())) == pytest.approx(scores[metric], rel=1e-9, abs=1e-9), metric
    for metric in headlines:
        assert list(per_example[metric]) == ann_ids                      # every annotated example, in file order
        assert 0 < scores[metric] < 100 or metric == "cider"             # the fixture is not all-hit / all-miss


def test_moment_retrieval(tmp_path):
    rng = np.random.default_rng(0)
    videos = [f"vid{v}" for v in range(6)]
    v2i = {v: 10 + i for i, v in enumerate(videos)}
    ann, tasks = [], {"VCMR": [], "SVMR": [], "VR": []}
    for i in range(60):
        vid = videos[rng.integers(6)]
        st = float(rng.uniform(0, 20))
        span = [st, st + float(rng.uniform(2, 10))]
        spans = [span] * 4 if i == 7 else span                            # a DiDeMo-style multi-span query
        ann.append({"vid_name": vid, "duration": 40.0, "ts": spans, "desc": "d", "desc_id": ident(i),
                    "type": ["v", "t", "vt"][i % 3]})
        if i == 5:
            continue                                                       # no predictions: a miss everywhere
        rows = []
        for _ in range(12):
            if rng.random() < 0.5:
                v = v2i[vid] if rng.random() < 0.7 else 10 + int(rng.integers(6))
                a, b = span[0] + rng.uniform(-1.5, 1.5), span[1] + rng.uniform(-1.5, 1.5)
            else:
                v, a = 10 + int(rng.integers(6)), rng.uniform(0, 30)
                b = a + rng.uniform(1, 8)
            rows.append([v, max(0.0, a), b, 1.0])
        rows = np.array(rows)
        tasks["VCMR"].append(QueryPredictions(ident(i), rows))
        tasks["SVMR"].append(QueryPredictions(ident(i), rows[rows[:, 0] == v2i[vid]]))
        tasks["VR"].append(QueryPredictions(ident(i), np.array([[r[0], 0, 0, 1.0] for r in rows])))
    tasks["VCMR"].append(QueryPredictions("not-annotated", rows))
    sub = tmp_path / "tvr_predictions.json"
    write_tvr_submission(sub, TvrSubmission(v2i, tasks))
    gt = jsonl(tmp_path / "tvr_val.jsonl", ann)
    opts, written = PredictOptions(), Written(len(ann))
    per = MomentRetrievalTask.per_example(sub, gt, opts, written)
    scores = MomentRetrievalTask.score(sub, gt, opts, written)
    assert set(per) == set(scores)                                         # every R@k, by type included
    assert_means_match(per, scores, [str(a["desc_id"]) for a in ann], MomentRetrievalTask.headlines)
    assert list(per["vr_v_r1"]) == [str(a["desc_id"]) for a in ann if a["type"] == "v"]
    assert per["vcmr_r1_iou0.7"][str(ident(5))] == 0.0


@pytest.mark.parametrize("task, n_answers", [(VideoQaTask, 5), (ViolinTask, 2)])
def test_qa_and_violin(tmp_path, task, n_answers):
    rng = np.random.default_rng(1)
    ann, preds = [], []
    for i in range(40):
        label = int(rng.integers(n_answers))
        guess = label if rng.random() < 0.5 else int(rng.integers(n_answers))
        if task is VideoQaTask:
            ann.append({"qid": ident(i), "q": "?", **{f"a{k}": "x" for k in range(5)}, "answer_idx": label,
                        "ts": "1-4", "vid_name": "v"})
            preds.append(QaAnswer(ident(i), guess))
        else:
            ann.append({"desc_id": ident(i), "desc": "s", "vid_name": "v", "label": label})
            preds.append(ViolinLabel(ident(i), guess))
    preds = preds[1:]                                                      # the first question has no answer: wrong
    path = tmp_path / "predictions.jsonl"
    (write_qa_answers if task is VideoQaTask else write_violin_labels)(path, preds)
    gt = jsonl(tmp_path / "gt.jsonl", ann)
    per = task.per_example(path, gt, PredictOptions(), Written(len(preds)))
    scores = task.score(path, gt, PredictOptions(), Written(len(preds)))
    ids = [str(a.get("qid", a.get("desc_id"))) for a in ann]
    assert_means_match(per, scores, ids, task.headlines)
    assert per["acc"][ids[0]] == 0.0 and set(per["acc"].values()) == {0.0, 100.0}


@pytest.mark.parametrize("tie_rule", ["pessimistic", "average"])
def test_text_to_video_retrieval(tmp_path, tie_rule):
    rng = np.random.default_rng(2)
    videos = [f"v{j}" for j in range(8)]
    ann = [{"desc_id": ident(i), "desc": "d", "vid_name": videos[rng.integers(8)]} for i in range(30)]
    scores = np.round(rng.random((30, 8)), 1)                              # coarse scores: many ties
    for i, a in enumerate(ann[:12]):
        scores[i, videos.index(a["vid_name"])] = 1.0                       # some hits (ties at the top too)
    path = tmp_path / "rankings.jsonl"
    write_rankings(path, rankings_from_scores([a["desc_id"] for a in ann], videos, scores, top_k=3))
    gt = jsonl(tmp_path / "retrieval_val.jsonl", ann)
    opts, written = PredictOptions(retrieval_eval=RetrievalEvalConfig(tie_rule=tie_rule)), Written(30, num_videos=8)
    per = TextVideoRetrievalTask.per_example(path, gt, opts, written)
    scored = TextVideoRetrievalTask.score(path, gt, opts, written)
    assert set(per) == {"r1", "r5", "r10"}
    assert_means_match(per, scored, [str(a["desc_id"]) for a in ann], TextVideoRetrievalTask.headlines)
    fractional = any(0 < v < 100 for v in per["r1"].values())
    assert fractional == (tie_rule == "average")


def test_captioning_cider_per_clip_with_corpus_document_frequencies(tmp_path):
    rng = np.random.default_rng(3)
    words = "a man woman walks into the room sits down and talks to her friend about coffee".split()

    def sentence():
        return " ".join(rng.choice(words, size=int(rng.integers(4, 9))))

    ann = [{"vid_name": f"v{i}", "duration": 9.0, "ts": [0, 3], "clip_id": ident(i),
            "descs": [{"desc": sentence()} for _ in range(int(rng.integers(1, 4)))]} for i in range(15)]
    caps = [CaptionPrediction(a["vid_name"], a["clip_id"], (0, 3),
                              (a["descs"][0]["desc"] if i % 3 == 0 else sentence(),))
            for i, a in enumerate(ann) if i != 4]                          # clip 4 uncaptioned: scored as ""
    path = tmp_path / "captions.jsonl"
    write_captions(path, caps[::-1])                                       # file order differs from the GT's
    gt = jsonl(tmp_path / "tvc_val.jsonl", ann)
    opts = PredictOptions(caption_eval=CaptionEvalConfig(meteor=False))
    per = CaptioningTask.per_example(path, gt, opts, Written(len(caps)))
    scored = CaptioningTask.score(path, gt, opts, Written(len(caps)))
    ids = [str(a["clip_id"]) for a in ann]
    assert_means_match(per, scored, ids, CaptioningTask.headlines)
    values = per["cider"]
    assert values[ids[4]] == 0.0
    assert min(values[ids[i]] for i in (0, 3, 6)) > max(values[ids[i]] for i in (1, 2, 5))
    # document frequencies are the split's: a clip scored alone would get 0 (pycocoevalcap's single-clip IDF)
    assert values[ids[0]] > 0


def test_every_built_in_task_gives_per_example_values():
    from hero.tasks.downstream import DownstreamTask

    built_in = {"moment_retrieval", "video_qa", "violin", "captioning", "text_video_retrieval"}
    names = {cls.name for cls in (MomentRetrievalTask, VideoQaTask, ViolinTask, CaptioningTask, TextVideoRetrievalTask)}
    assert names == built_in and built_in <= set(TASKS)
    assert all(TASKS[n].per_example.__func__ is not DownstreamTask.per_example.__func__ for n in built_in)
    with pytest.raises(NotImplementedError, match="per_example"):
        DownstreamTask.per_example("p", "a", PredictOptions())
