"""hero.eval.predict on a tiny synthetic corpus with random features and untrained hero-tiny task models: every
task family writes its public file, its scorer reads it back, metrics are in range; atomic writes; clear errors."""

import json
import os

import numpy as np
import pytest
import torch

from hero.metrics.captioning import CaptionEvalConfig
from hero.metrics.formats import read_captions, read_qa_answers, read_rankings, read_tvr_submission, read_violin_labels
from hero.eval.predict import predict_split, prediction_path, retrieval_examples
from hero.presets import MINILM_TOKENS, get_preset
from hero.tasks import TASKS

DIM = 24
SPLIT = "train"   # 4 of the 6 videos: a corpus worth ranking
READERS = {"tvr": read_tvr_submission, "tvqa": read_qa_answers, "violin": read_violin_labels, "tvc": read_captions,
           "retrieval": read_rankings}
FAMILY = {"tvr": "moment_retrieval", "tvqa": "video_qa", "violin": "violin", "tvc": "captioning",
          "retrieval": "text_video_retrieval"}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """(manifest, store, tokenizer): 6 synthetic videos, random [clips, 24] features."""
    from hero.corpus import CorpusConfig, ingest_corpus
    from hero.features.store import FeatureStore, StoreWriter, consolidate
    from hero.synth import SynthConfig, generate_corpus
    from hero.text.tokenizer import load_tokenizer

    root = tmp_path_factory.mktemp("pcorpus") / "c"
    generate_corpus(root, SynthConfig(size="tiny", seed=3, num_videos=6, workers=1))
    manifest = ingest_corpus(CorpusConfig(path=str(root)))
    rng = np.random.default_rng(0)
    w = StoreWriter(root.parent / "store")
    for vid, entry in manifest.videos.items():
        w.add(vid, rng.normal(size=(entry.num_clips, DIM)).astype(np.float32), key=f"k-{vid}",
              clip_len=manifest.clip_len, extractor="random", dim=DIM)
    w.close()
    consolidate(root.parent / "store")
    return manifest, FeatureStore(root.parent / "store"), load_tokenizer("minilm")


def _model(family, **cfg):
    torch.manual_seed(0)
    p = get_preset("hero-tiny", vocab_size=30522, feature_dim=DIM, max_text_positions=256, dropout=0.0,
                   attention_dropout=0.0)
    cls = TASKS[family]
    return cls(p.model, cls.config_cls(**cfg), MINILM_TOKENS)


def _predict(data, dataset, out_dir, **kw):
    manifest, store, tok = data
    cfg = {"max_decode_len": 6} if dataset == "tvc" else {}
    model = _model(FAMILY[dataset], **cfg)
    return model, predict_split(model, dataset, manifest, store, tok, SPLIT, out_dir, batch_size=4,
                                corpus_batch_size=3, caption_eval=CaptionEvalConfig(meteor=False), **kw)


@pytest.mark.parametrize("dataset", ["tvr", "tvqa", "violin", "tvc", "retrieval"])
def test_every_family_writes_a_file_its_scorer_reads(data, dataset, tmp_path):
    manifest = data[0]
    model, res = _predict(data, dataset, tmp_path)
    path = prediction_path(tmp_path, dataset, SPLIT)
    assert res["predictions"] == str(path) and path.is_file()
    assert path.suffix == (".json" if dataset == "tvr" else ".jsonl")
    records = READERS[dataset](path)
    n = len(manifest.tasks[dataset][SPLIT])
    if dataset == "tvr":
        assert set(records.tasks) == {"VCMR", "SVMR", "VR"} and len(records.tasks["VCMR"]) == n
        assert set(records.video2idx) == set(manifest.split_videos(SPLIT))
    else:
        assert len(records) == n == res["count"]
    metrics = res["metrics"]
    assert metrics and all(k.startswith(f"{dataset}/{SPLIT}/") for k in metrics)
    for key, value in metrics.items():
        if key.endswith("_rank"):
            assert 1 <= value <= len(manifest.split_videos(SPLIT)), key
        else:
            assert 0.0 <= value <= 100.0, key
    expected = {"tvr": "tvr/train/vcmr_r1_iou0.7", "tvqa": "tvqa/train/acc", "violin": "violin/train/acc",
                "tvc": "tvc/train/cider", "retrieval": "retrieval/train/r1"}[dataset]
    assert expected in metrics
    if dataset == "tvqa":
        assert "tvqa/train/loc_miou" in metrics and all(a.ts is not None for a in records)
    if dataset == "tvc":
        assert all(isinstance(c.descs[0], str) for c in records)


def test_violin_labels_are_each_statements_own(data, tmp_path):
    """Every written label is the model's prediction for that statement encoded alone (the training collate adds
    each statement's opposite as an extra row; prediction must not, or labels shift onto other statements)."""
    from hero.data.datasets import TaskDataset, VideoFeatures

    manifest, store, tok = data
    model, res = _predict(data, "violin", tmp_path)
    written = {r.desc_id: r.label for r in read_violin_labels(prediction_path(tmp_path, "violin", SPLIT))}
    ds = TaskDataset(manifest, "violin", SPLIT, VideoFeatures(manifest, store, tok), pairs=False)
    assert all("paired_ids" not in it for it in ds.items)
    alone = {}
    for i in range(len(ds)):
        inputs = model.collate([ds[i]], model.tokens, model.cfg, clip_len=manifest.clip_len)
        alone[str(ds[i]["id"])] = int(model.predict(inputs).label[0])
    assert written == alone


def test_training_mode_is_restored_and_score_false_skips_scoring(data, tmp_path):
    manifest, store, tok = data
    model = _model("violin")
    model.train()
    seen = []
    model.encoder.register_forward_pre_hook(lambda m, args: seen.append((m.training, torch.is_grad_enabled())))
    res = predict_split(model, "violin", manifest, store, tok, SPLIT, tmp_path, score=False)
    assert seen and set(seen) == {(False, False)}                 # eval mode, no grad while predicting
    assert model.training and res["metrics"] == {} and os.path.isfile(res["predictions"])


def test_the_prediction_file_is_written_atomically(data, tmp_path, monkeypatch):
    import hero.metrics.formats.lines as lines

    path = prediction_path(tmp_path, "violin", SPLIT)
    path.write_text("old\n")
    calls = []
    real = lines.dumps_line

    def fail_later(obj):
        calls.append(obj)
        if len(calls) > 2:
            raise OSError("disk full")
        return real(obj)

    monkeypatch.setattr(lines, "dumps_line", fail_later)
    with pytest.raises(OSError, match="disk full"):
        _predict(data, "violin", tmp_path)
    assert path.read_text() == "old\n"                     # the previous file is untouched ...
    assert sorted(os.listdir(tmp_path)) == [path.name]       # ... and no temp file is left behind


def test_a_split_without_annotations_names_the_file(data, tmp_path):
    manifest, store, tok = data
    with pytest.raises(FileNotFoundError, match=r"annotations/tvqa_nosuch\.jsonl"):
        predict_split(_model("video_qa"), "tvqa", manifest, store, tok, "nosuch", tmp_path)
    with pytest.raises(ValueError, match=r"tvqa_nosuch\.jsonl"):      # no examples, even when not scoring
        predict_split(_model("video_qa"), "tvqa", manifest, store, tok, "nosuch", tmp_path, score=False)
    assert not list(tmp_path.iterdir())


def test_a_model_of_another_family_is_rejected(data, tmp_path):
    manifest, store, tok = data
    with pytest.raises(ValueError, match="video_qa task model"):
        predict_split(_model("violin"), "tvqa", manifest, store, tok, SPLIT, tmp_path)
    with pytest.raises(ValueError, match="unknown dataset"):
        predict_split(_model("violin"), "nope", manifest, store, tok, SPLIT, tmp_path)


def test_retrieval_examples_give_moments_with_their_subtitles(data, tmp_path):
    manifest = data[0]
    _, res = _predict(data, "tvr", tmp_path)
    ex = retrieval_examples(res["predictions"], manifest, "tvr", SPLIT, num_queries=3, top_k=4)
    assert len(ex) == 3
    json.dumps(ex)                                                            # plain data
    gt = {str(e["id"]): e for e in manifest.tasks["tvr"][SPLIT]}
    for q in ex:
        g = gt[str(q["desc_id"])]
        assert q["desc"] == g["desc"] and q["gt"] == {"vid_name": g["vid_name"], "ts": g["ts"]}
        assert [m["rank"] for m in q["moments"]] == list(range(1, len(q["moments"]) + 1))
        assert 1 <= len(q["moments"]) <= 4
        scores = [m["score"] for m in q["moments"]]
        assert scores == sorted(scores, reverse=True)
        for m in q["moments"]:
            st, ed = m["ts"]
            assert m["vid_name"] in manifest.videos and st < ed and 0.0 <= m["iou"] <= 1.0
            subs = manifest.videos[m["vid_name"]].subs
            assert [s["text"] for s in m["subtitles"]] == [t for t, s, e in subs if s < ed and e > st]
    one = retrieval_examples(res["predictions"], manifest, "tvr", SPLIT, task="SVMR",
                             desc_ids=[ex[1]["desc_id"]], top_k=2)
    assert len(one) == 1 and all(m["vid_name"] == one[0]["gt"]["vid_name"] for m in one[0]["moments"])
    with pytest.raises(KeyError, match="not in the submission"):
        retrieval_examples(res["predictions"], manifest, desc_ids=["no-such-query"], split=SPLIT)


def test_unlabeled_queries_still_get_vcmr_and_vr_but_no_svmr(data, tmp_path):
    import dataclasses

    manifest, store, tok = data
    queries = [{**e, "vid_name": None, "ts": None} if i % 2 else e for i, e in enumerate(manifest.tasks["tvr"][SPLIT])]
    unlabeled = dataclasses.replace(manifest, tasks={**manifest.tasks, "tvr": {"test": queries}})
    vids = list(manifest.videos)
    res = predict_split(_model("moment_retrieval"), "tvr", unlabeled, store, tok, "test", tmp_path, score=False,
                        corpus_videos=vids)
    sub = read_tvr_submission(res["predictions"])
    assert set(sub.tasks) == {"VCMR", "VR"} and list(sub.video2idx) == vids
    assert len(sub.tasks["VCMR"]) == len(queries) and all(len(q.predictions) for q in sub.tasks["VCMR"])


def test_beam_captions_and_truncated_rankings(data, tmp_path):
    manifest, store, tok = data
    res = predict_split(_model("captioning"), "tvc", manifest, store, tok, SPLIT, tmp_path / "c", beam_size=2,
                        max_decode_len=4, caption_eval=CaptionEvalConfig(meteor=False))
    assert len(read_captions(res["predictions"])) == len(manifest.tasks["tvc"][SPLIT])
    res = predict_split(_model("text_video_retrieval"), "retrieval", manifest, store, tok, SPLIT, tmp_path / "r",
                        top_k=2)
    assert all(len(r.ranked) == 2 for r in read_rankings(res["predictions"]))
    assert 0.0 <= res["metrics"][f"retrieval/{SPLIT}/r1"] <= 100.0
