"""File-level scorers (prediction file + annotations/<task>_<split>.jsonl) and the flat metrics dict."""

import json

import numpy as np
import pytest
import torch

from hero.metrics import (
    CaptionEvalConfig, MomentRankConfig, flatten_metrics, rank_svmr, rank_vcmr, rank_videos, score_captioning,
    score_moment_retrieval, score_text_to_video, score_video_qa, score_violin, tvr_submission, write_metrics_json,
)
from hero.metrics.formats import (
    CaptionPrediction, FormatError, QaAnswer, ViolinLabel, rankings_from_scores, write_captions,
    write_qa_answers, write_rankings, write_tvr_submission, write_violin_labels,
)


def jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_ranked_tensors_to_submission_file_to_metrics(tmp_path):
    names = ["vid_a", "vid_b", "vid_c"]
    t = 8
    st = torch.full((2, 3, t), 1e-3)
    ed = torch.full((2, 3, t), 1e-3)
    st[0, 1, 2], ed[0, 1, 4] = 0.9, 0.9            # query 0: vid_b frames 2..4 -> [3.0, 7.5] s
    st[1, 2, 0], ed[1, 2, 6] = 0.9, 0.9            # query 1: vid_c frames 0..6 -> [0, 10.5] s
    # query 1's video ranks second by video score, but its peaked span still wins VCMR:
    # 0.81 * exp(20 * 0.4) = 2415 > 1e-6 * exp(20 * 0.6) = 0.16
    raw = torch.tensor([[0.0, 0.5, 0.1], [0.0, 0.6, 0.4]])
    cfg = MomentRankConfig(min_len=1, max_len=8, max_after_nms=5, max_before_nms=10)
    sub = tvr_submission(names, [11, 12], vcmr=rank_vcmr(raw, st, ed, cfg),
                         svmr=rank_svmr(st, ed, torch.tensor([1, 2]), cfg), vr=rank_videos(raw, cfg),
                         video2idx={"vid_a": 10, "vid_b": 20, "vid_c": 30})
    write_tvr_submission(tmp_path / "val_predictions.json", sub)
    ann = jsonl(tmp_path / "tvr_val.jsonl", [
        {"vid_name": "vid_b", "duration": 12.0, "ts": [3.0, 7.5], "desc": "q0", "type": "v", "desc_id": 11},
        {"vid_name": "vid_c", "duration": 12.0, "ts": [0.0, 10.5], "desc": "q1", "type": "t", "desc_id": 12}])
    out = score_moment_retrieval(tmp_path / "val_predictions.json", ann)
    assert out["vcmr_r1_iou0.7"] == 100.0 and out["svmr_r1_iou0.7"] == 100.0
    assert out["vr_r1"] == 50.0 and out["vr_r5"] == 100.0
    assert out["vr_v_r1"] == 100.0 and out["vr_t_r1"] == 0.0


def test_qa_violin_captions_rankings_files(tmp_path):
    qa = jsonl(tmp_path / "tvqa_val.jsonl", [
        {"qid": 1, "q": "?", "a0": "x", "a1": "y", "answer_idx": 1, "ts": "0-10", "vid_name": "v"},
        {"qid": 2, "q": "?", "a0": "x", "a1": "y", "answer_idx": 0, "ts": "2.5-5", "vid_name": "v"}])
    write_qa_answers(tmp_path / "qa.jsonl", [QaAnswer(1, 1), QaAnswer(2, 1)])
    assert score_video_qa(tmp_path / "qa.jsonl", qa) == {"acc": 50.0}
    vi = jsonl(tmp_path / "violin_val.jsonl", [{"desc_id": "c-1", "desc": "s", "vid_name": "v", "label": 1}])
    write_violin_labels(tmp_path / "vi.jsonl", [ViolinLabel("c-1", 1)])
    assert score_violin(tmp_path / "vi.jsonl", vi) == {"acc": 100.0}
    tvc = jsonl(tmp_path / "tvc_val.jsonl", [
        {"vid_name": "v1", "duration": 9.0, "ts": [0, 3], "clip_id": 1, "descs": [{"desc": "a b"}, {"desc": "z"}]},
        {"vid_name": "v2", "duration": 9.0, "ts": [0, 3], "clip_id": 2, "descs": [{"desc": "c d"}]}])
    write_captions(tmp_path / "cap.jsonl", [CaptionPrediction("v1", 1, (0, 3), ("a b",)),
                                            CaptionPrediction("v2", 2, (0, 3), ("c d",))])
    caps = score_captioning(tmp_path / "cap.jsonl", tvc, CaptionEvalConfig(meteor=False))
    assert caps["cider"] == pytest.approx(375.0)
    ret = jsonl(tmp_path / "retrieval_val.jsonl", [{"desc_id": 0, "desc": "d", "vid_name": "v1"},
                                                   {"desc_id": 1, "desc": "d", "vid_name": "v0"}])
    write_rankings(tmp_path / "rank.jsonl", rankings_from_scores([0, 1], ["v0", "v1"], [[0.1, 0.9], [0.5, 0.5]]))
    out = score_text_to_video(tmp_path / "rank.jsonl", ret)
    assert out["r1"] == 50.0 and out["median_rank"] == 1.5    # query 1 ties for first: pessimistic rank 2


TVC_GT = [{"vid_name": "v1", "duration": 9.0, "ts": [0, 3], "clip_id": 1, "descs": [{"desc": "a b"}, {"desc": "z"}]},
          {"vid_name": "v2", "duration": 9.0, "ts": [0, 3], "clip_id": 2, "descs": [{"desc": "c d"}]}]


def test_captions_in_the_official_format_score_like_ours(tmp_path):
    # jayleicn/TVCaption standalone_eval reads only clip_id and descs[0].desc of a prediction line
    gt = jsonl(tmp_path / "tvc_val.jsonl", TVC_GT)
    official = jsonl(tmp_path / "official.jsonl", [{"clip_id": 2, "descs": [{"desc": "c d"}]},
                                                   {"clip_id": 1, "descs": [{"desc": "a b"}, {"desc": "not scored"}]}])
    ours = tmp_path / "ours.jsonl"
    write_captions(ours, [CaptionPrediction("v1", 1, (0, 3), ("a b",)), CaptionPrediction("v2", 2, (0, 3), ("c d",))])
    cfg = CaptionEvalConfig(meteor=False)
    assert score_captioning(official, gt, cfg) == score_captioning(ours, gt, cfg)


def test_caption_vid_name_mismatch_names_both_files_and_lines(tmp_path):
    gt = jsonl(tmp_path / "tvc_val.jsonl", TVC_GT)
    pred = jsonl(tmp_path / "pred.jsonl", [{"clip_id": 1, "descs": [{"desc": "a"}]},
                                           {"vid_name": "v9", "clip_id": 2, "ts": [0, 3], "descs": [{"desc": "c"}]}])
    with pytest.raises(FormatError) as err:
        score_captioning(pred, gt, CaptionEvalConfig(meteor=False))
    assert str(err.value) == (f"{pred}:2: [prediction.vid_name_mismatch] clip_id 2: vid_name 'v9', but the ground "
                              f"truth ({gt}:2) has 'v2'")


def test_scorer_names_the_annotation_file_and_line(tmp_path):
    write_qa_answers(tmp_path / "qa.jsonl", [QaAnswer(1, 1)])
    ann = jsonl(tmp_path / "tvqa_test.jsonl", [{"qid": 1, "q": "?", "a0": "x", "a1": "y", "vid_name": "v"}])
    with pytest.raises(FormatError, match=r"tvqa_test\.jsonl:1: .*no ground truth"):
        score_video_qa(tmp_path / "qa.jsonl", ann)


def test_flatten_and_write_metrics(tmp_path):
    flat = flatten_metrics("tvr", "val", {"vcmr_r1_iou0.7": 3.5, "vr_r10": np.float32(20.0)})
    assert flat == {"tvr/val/vcmr_r1_iou0.7": 3.5, "tvr/val/vr_r10": 20.0}
    for bad in [("tv/r", "val", {"a": 1.0}), ("tvr", "", {"a": 1.0}), ("tvr", "val", {"a b": 1.0}),
                ("tvr", "val", {"a": float("nan")})]:
        with pytest.raises(ValueError):
            flatten_metrics(*bad)
    path = tmp_path / "08_reporting" / "metrics.json"
    write_metrics_json(path, {"tvqa/val/acc": 50.0, "tvr/val/vr_r10": 1.0})
    write_metrics_json(path, flat)
    assert json.loads(path.read_text()) == {"tvqa/val/acc": 50.0, **flat}
    path.write_text("[")
    with pytest.raises(FormatError, match="metrics.json:1"):
        write_metrics_json(path, flat)


def test_cli_scores_records_and_reports_bad_input(tmp_path, capsys):
    from hero.eval.cli import main

    vi = jsonl(tmp_path / "violin_val.jsonl", [{"desc_id": "c-1", "vid_name": "v", "label": 1},
                                               {"desc_id": "c-0", "vid_name": "v", "label": 0}])
    write_violin_labels(tmp_path / "vi.jsonl", [ViolinLabel("c-1", 1), ViolinLabel("c-0", 1)])
    metrics = tmp_path / "metrics.json"
    assert main(["violin", str(tmp_path / "vi.jsonl"), str(vi), "--metrics-out", str(metrics)]) == 0
    assert json.loads(capsys.readouterr().out) == {"violin/val/acc": 50.0}
    assert json.loads(metrics.read_text()) == {"violin/val/acc": 50.0}
    (tmp_path / "bad.jsonl").write_text('{"desc_id": "c-1", "label": 7}\n')
    assert main(["violin", str(tmp_path / "bad.jsonl"), str(vi)]) == 2
