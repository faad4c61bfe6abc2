"""Downstream tasks on hero-tiny: finite loss, gradients into the encoder, overfitting a handful of
examples, inference shapes, building from a PretrainModel, and the collates."""

import math

import pytest
import torch

from hero.config import ConfigError
from hero.data.random_batch import random_video_batch
from hero.data.task_collate import collate_videos, select_videos, span_labels, video_examples
from hero.metrics.moment_ranking import MomentRankConfig
from hero.presets import get_preset
from hero.tasks import TASKS, PretrainConfig, PretrainModel
from hero.tasks.downstream import PretrainedKeyError
from hero.tasks.vsm import video_scores
from hero.tasks.moment_retrieval import MomentRetrievalConfig, MomentRetrievalTask, collate_moment_retrieval
from hero.tasks.text_video_retrieval import TextVideoRetrievalConfig, TextVideoRetrievalTask, collate_text_video_retrieval
from hero.tasks.video_inference import ViolinConfig, ViolinTask, collate_violin
from hero.tasks.video_qa import VideoQaConfig, VideoQaTask, collate_video_qa

from task_helpers import overfit


def _preset(encoder="hierarchical"):
    return get_preset("hero-tiny", encoder=encoder, dropout=0.0, attention_dropout=0.0)


def _videos(p, n=3, seed=0):
    b = random_video_batch(p.model, p.tokens, num_videos=n, frames=(6, 10), generator=torch.Generator().manual_seed(seed))
    return video_examples(b)


def _tokens(p, g, lo=3, hi=7, first=None):
    n = int(torch.randint(lo, hi + 1, (), generator=g))
    ids = torch.randint(p.tokens.random_low, p.tokens.random_high, (n,), generator=g).tolist()
    return ([first] if first is not None else []) + ids


def _grad(module):
    return sum(float(q.grad.abs().sum()) for q in module.parameters() if q.grad is not None)


# ---------------------------------------------------------------------- shared pieces
def test_collate_videos_round_trips_and_select_videos_copies():
    p = _preset()
    b = random_video_batch(p.model, p.tokens, num_videos=3, generator=torch.Generator().manual_seed(2))
    again = collate_videos(video_examples(b), p.tokens)
    for f in ("frame_feats", "frame_mask", "sub_video", "sub_frames"):
        assert torch.equal(getattr(b, f), getattr(again, f)), f
    assert torch.equal(b.sub_ids[b.sub_mask], again.sub_ids[again.sub_mask])
    sel = select_videos(b, torch.tensor([2, 0, 2]))
    assert sel.num_videos == 3 and sel.video_ids == (b.video_ids[2], b.video_ids[0], b.video_ids[2])
    for i, v in enumerate([2, 0, 2]):
        assert torch.equal(sel.sub_ids[sel.sub_video == i], b.sub_ids[b.sub_video == v])


def test_span_labels_follow_hero():
    assert span_labels((16.48, 33.87), 40, 1.5) == (10, 22)
    assert span_labels((3.0, 3.1), 40, 1.5) == (2, 3)            # ed at least st + 1
    assert span_labels((100.0, 200.0), 10, 1.5) == (9, 9)        # clipped to T - 1
    assert span_labels(None, 10, 1.5) == (-1, -1)


def test_registry_lists_every_task():
    assert {"moment_retrieval", "video_qa", "violin", "captioning", "text_video_retrieval"} <= set(TASKS)
    assert all(hasattr(cls, "from_pretrained") and cls.config_cls is not object and callable(cls.collate)
               for cls in TASKS.values())


# ---------------------------------------------------------------------- moment retrieval
def _mr_examples(p, n_videos=3, per_video=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    vids = _videos(p, n_videos, seed)
    ex = []
    for v in vids:
        T = v["frame_feats"].shape[0]
        for _ in range(per_video):
            t0 = float(torch.randint(0, T - 2, (), generator=g)) * 1.5
            ex.append({"video": v, "query_ids": _tokens(p, g, first=p.tokens.cls), "ts": (t0 + 0.2, t0 + 2.9)})
    return ex


def test_moment_retrieval_loss_gradients_and_overfit():
    p = _preset()
    cfg = MomentRetrievalConfig(drop_svmr_prob=0.0, lw_st_ed=1.0)
    task = MomentRetrievalTask(p.model, cfg, p.tokens)
    inputs = collate_moment_retrieval(_mr_examples(p), p.tokens, cfg, clip_len=1.5)
    assert inputs.batch.num_videos == 3 and inputs.query_ids.shape[0] == 6      # shared videos deduplicated
    inputs = task.prepare(inputs, torch.Generator().manual_seed(0), step=0)
    out = task(inputs)
    assert out.loss.dim() == 0 and torch.isfinite(out.loss) and "moment_retrieval/loss_st_ed" in out.metrics
    out.loss.backward()
    assert _grad(task.encoder.cross) > 0 and _grad(task.encoder.temporal) > 0
    losses = overfit(MomentRetrievalTask(p.model, cfg, p.tokens), inputs)
    assert losses[-1] < 0.3 * losses[0], losses[::8]


def test_moment_retrieval_inference_shapes_and_chunking():
    p = _preset()
    task = MomentRetrievalTask(p.model, MomentRetrievalConfig(), p.tokens).eval()
    ex = _mr_examples(p, n_videos=4, per_video=2)
    vids = [e["video"] for e in ex][::2]
    corpus = task.encode_corpus([collate_videos(vids[:2], p.tokens), collate_videos(vids[2:], p.tokens)])
    assert corpus.frames.shape[:2] == corpus.frame_mask.shape and corpus.frames.shape[0] == 4
    inputs = collate_moment_retrieval(ex, p.tokens, MomentRetrievalConfig(), clip_len=1.5)
    q = task.encode_queries(inputs.query_ids, inputs.query_mask)
    s = task.score_queries(q, corpus)
    T = corpus.frames.shape[1]
    assert s.video_scores.shape == (8, 4) and s.st_probs.shape == (8, 4, T) == s.ed_probs.shape
    torch.testing.assert_close(s.st_probs.sum(-1), torch.ones(8, 4))
    torch.testing.assert_close(s.video_scores, video_scores(q, corpus.frames, corpus.frame_mask), atol=1e-5, rtol=1e-5)
    own = inputs.query_video
    st, _ = task.head.span_logits(q, corpus.frames[own], corpus.frame_mask[own])
    torch.testing.assert_close(s.st_probs[torch.arange(8), own], st.softmax(-1), atol=1e-5, rtol=1e-5)
    assert float(s.st_probs[~corpus.frame_mask[None].expand(8, -1, -1)].sum()) < 1e-5
    rank_cfg = MomentRankConfig(max_videos=3, min_len=1, max_len=4, max_after_nms=5, max_before_nms=10, query_chunk=3)
    gt = inputs.query_video
    with torch.no_grad():
        pred = task.predict(inputs.query_ids, inputs.query_mask, corpus, rank_cfg, gt_video=gt)
        whole = task.predict(inputs.query_ids, inputs.query_mask, corpus, MomentRankConfig(
            max_videos=3, min_len=1, max_len=4, max_after_nms=5, max_before_nms=10, query_chunk=100), gt_video=gt)
    assert pred.vcmr.video.shape == (8, 5) and pred.svmr.video.shape == (8, 5) and pred.vr.video.shape == (8, 3)
    assert torch.equal(pred.vcmr.video, whole.vcmr.video) and torch.equal(pred.vr.video, whole.vr.video)
    assert (pred.svmr.video[pred.svmr.video >= 0] == gt[:, None].expand(-1, 5)[pred.svmr.video >= 0]).all()


@pytest.mark.parametrize("nms", [None, 0.5])
def test_predict_on_the_top_videos_equals_the_full_corpus_computation(nms):
    """predict computes start/end probabilities for each query's max_videos best videos and its GT video only;
    its rankings are those of rank_vcmr / rank_svmr over the whole corpus's probabilities."""
    from hero.metrics.moment_ranking import rank_svmr, rank_vcmr

    p = _preset()
    task = MomentRetrievalTask(p.model, MomentRetrievalConfig(), p.tokens).eval()
    ex = _mr_examples(p, n_videos=7, per_video=2, seed=3)
    vids = [e["video"] for e in ex][::2]
    corpus = task.encode_corpus([collate_videos(vids, p.tokens)])
    inputs = collate_moment_retrieval(ex, p.tokens, MomentRetrievalConfig(), clip_len=1.5)
    gt = inputs.query_video
    cfg = MomentRankConfig(max_videos=3, min_len=1, max_len=4, max_after_nms=6, max_before_nms=12, query_chunk=5,
                           nms_threshold=nms)
    with torch.no_grad():
        pred = task.predict(inputs.query_ids, inputs.query_mask, corpus, cfg, gt_video=gt)
        s = task.score_queries(task.encode_queries(inputs.query_ids, inputs.query_mask), corpus)
    n = corpus.num_frames
    for got, want in ((pred.vcmr, rank_vcmr(s.video_scores, s.st_probs, s.ed_probs, cfg, n)),
                      (pred.svmr, rank_svmr(s.st_probs, s.ed_probs, gt, cfg, n))):
        assert torch.equal(got.video, want.video)
        assert torch.equal(got.start, want.start) and torch.equal(got.end, want.end)
        torch.testing.assert_close(got.score, want.score, rtol=1e-6, atol=0)
    with pytest.raises(ValueError, match="lack a top-ranked"):
        rank_vcmr(s.video_scores, s.st_probs[:, :2], s.ed_probs[:, :2], cfg, n,
                  videos=torch.tensor([[0, 1]]).expand(s.st_probs.shape[0], -1))


def test_from_pretrained_model_copies_encoder_and_vsm_head():
    p = _preset()
    pre = PretrainModel(p.model, PretrainConfig(), p.tokens)
    task = MomentRetrievalTask.from_pretrained(pre)
    assert task.pretrained_missing_keys == []
    qkv = task.encoder.temporal.layers[0].attn.qkv.weight
    torch.testing.assert_close(qkv, pre.encoder.temporal.layers[0].attn.qkv.weight)
    torch.testing.assert_close(task.head.start_conv.weight, pre.heads["vsm"].start_conv.weight)
    # a bare encoder state dict: the head starts from scratch, which is allowed
    bare = MomentRetrievalTask.from_pretrained(pre.encoder.state_dict(), model_cfg=p.model, tokens=p.tokens)
    assert bare.pretrained_missing_keys and all(k.startswith("head.") for k in bare.pretrained_missing_keys)
    with pytest.raises(PretrainedKeyError):
        broken = {k: v for k, v in pre.state_dict().items() if not k.startswith("encoder.temporal.")}
        MomentRetrievalTask.from_pretrained(broken, model_cfg=p.model, tokens=p.tokens)


# ---------------------------------------------------------------------- video QA
def _qa_examples(p, n=3, seed=0, answers=5):
    g = torch.Generator().manual_seed(seed)
    ex = []
    for i, v in enumerate(_videos(p, n, seed)):
        T = v["frame_feats"].shape[0]
        t0 = float(torch.randint(0, T - 2, (), generator=g)) * 1.5
        ex.append({"video": v, "q_ids": _tokens(p, g), "answer_ids": [_tokens(p, g, 1, 4) for _ in range(answers)],
                   "answer_idx": i % answers, "ts": (t0 + 0.1, t0 + 2.0)})
    return ex


@pytest.mark.parametrize("encoder", ["hierarchical", "flat"])
def test_video_qa_loss_gradients_and_predictions(encoder):
    p = _preset(encoder)
    task = VideoQaTask(p.model, VideoQaConfig(), p.tokens)
    ex = _qa_examples(p)
    ex[1] = {**ex[1], "answer_idx": None, "ts": None}                 # unlabelled rows are left out of the loss
    inputs = collate_video_qa(ex, p.tokens, VideoQaConfig(), clip_len=1.5)
    assert inputs.qa_ids.shape[:2] == (3, 5) and (inputs.qa_ids[:, :, 0] == p.tokens.sep).all()
    out = task(inputs)
    assert torch.isfinite(out.loss) and set(out.metrics) >= {"video_qa/acc", "video_qa/loss_temporal"}
    out.loss.backward()
    layers = task.encoder.flat if encoder == "flat" else task.encoder.cross
    assert _grad(layers) > 0 and task.encoder.text_embed.word.weight.grad.abs().sum() > 0
    pred = task.eval().predict(inputs)
    assert pred.answer.shape == (3,) and pred.answer_logits.shape == (3, 5) and pred.start.shape == (3,)


def test_video_qa_overfits():
    p = _preset()
    inputs = TASKS["video_qa"].collate(_qa_examples(p, n=4, seed=1), p.tokens, VideoQaConfig(), clip_len=1.5)
    task = VideoQaTask(p.model, VideoQaConfig(), p.tokens)
    losses = overfit(task, inputs, steps=30)
    assert losses[-1] < 0.3 * losses[0], losses[::6]
    assert float(task(inputs).metrics["video_qa/acc"]) == 1.0


# ---------------------------------------------------------------------- VIOLIN
def _violin_examples(p, n=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [{"video": v, "statement_ids": _tokens(p, g), "label": i % 2, "paired_ids": _tokens(p, g)}
            for i, v in enumerate(_videos(p, n, seed))]


def test_violin_pairs_statements_loss_and_overfit():
    p = _preset()
    inputs = collate_violin(_violin_examples(p), p.tokens, ViolinConfig(), clip_len=1.5)
    assert inputs.statement_ids.shape[0] == 6 and inputs.batch.num_videos == 3
    assert inputs.label.tolist() == [0.0, 1.0, 1.0, 0.0, 0.0, 1.0]
    task = ViolinTask(p.model, ViolinConfig(), p.tokens)
    out = task(inputs)
    assert torch.isfinite(out.loss)
    out.loss.backward()
    assert _grad(task.encoder.cross) > 0 and _grad(task.encoder.temporal) > 0
    losses = overfit(ViolinTask(p.model, ViolinConfig(), p.tokens), inputs, steps=30)
    assert losses[-1] < 0.3 * losses[0], losses[::6]
    pred = task.eval().predict(inputs)
    assert pred.label.shape == (6,) and ((pred.prob >= 0) & (pred.prob <= 1)).all()


def test_violin_pair_ranking_loss():
    from hero.tasks.video_inference import pair_ranking_loss

    p = _preset()
    inputs = collate_violin(_violin_examples(p), p.tokens, ViolinConfig(), clip_len=1.5)
    # labels [0, 1 | 1, 0 | 0, 1]: each pair is (entailed row, contradicted row)
    assert inputs.pairs.tolist() == [[1, 0], [2, 3], [5, 4]]
    logits = torch.tensor([0.0, 2.0, 1.0, 1.0, 3.0, -1.0])
    want = [math.log1p(math.exp(0.0 - 2.0)), math.log(2.0), math.log1p(math.exp(3.0 - (-1.0)))]
    assert float(pair_ranking_loss(logits, inputs.pairs)) == pytest.approx(sum(want) / 3, rel=1e-6)
    # a video bias shifts both statements of a pair alike: the ranking term does not move
    bias = torch.tensor([5.0, 5.0, -2.0, -2.0, 0.5, 0.5])
    assert float(pair_ranking_loss(logits + bias, inputs.pairs)) == pytest.approx(sum(want) / 3, rel=1e-6)
    assert float(pair_ranking_loss(logits, torch.zeros(0, 2, dtype=torch.long))) == 0.0
    # unlabelled statements make no pair
    unl = [{**e, "label": None} for e in _violin_examples(p)]
    assert collate_violin(unl, p.tokens, ViolinConfig(), clip_len=1.5).pairs.shape == (0, 2)
    # the weighted term enters the loss and is reported with the pair accuracy
    cfg = ViolinConfig(pair_loss=1.0)
    torch.manual_seed(0)
    task = ViolinTask(p.model, cfg, p.tokens)
    out = task(collate_violin(_violin_examples(p), p.tokens, cfg, clip_len=1.5))
    m = out.metrics
    assert float(out.loss.detach()) == pytest.approx(float(m["violin/loss_bce"]) + float(m["violin/loss_pair"]), rel=1e-5)
    assert 0.0 <= float(m["violin/pair_acc"]) <= 1.0
    with pytest.raises(ConfigError, match="pair_loss"):
        ViolinConfig(pair_loss=-1.0)
    with pytest.raises(ConfigError, match="window"):
        ViolinConfig(window=-0.5)


# ---------------------------------------------------------------------- text-to-video retrieval
def test_text_video_retrieval_loss_overfit_and_scores():
    p = _preset()
    cfg = TextVideoRetrievalConfig()
    ex = [{"video": e["video"], "query_ids": e["query_ids"]} for e in _mr_examples(p, n_videos=4, per_video=1)]
    inputs = collate_text_video_retrieval(ex, p.tokens, cfg, clip_len=1.5)
    task = TextVideoRetrievalTask(p.model, cfg, p.tokens)
    out = task(task.prepare(inputs, torch.Generator(), step=5000))
    assert torch.isfinite(out.loss)
    out.loss.backward()
    assert _grad(task.encoder.temporal) > 0
    losses = overfit(TextVideoRetrievalTask(p.model, cfg, p.tokens), inputs, steps=30)
    assert losses[-1] < 0.3 * losses[0], losses[::6]
    task.eval()
    corpus = task.encode_corpus([inputs.batch])
    scores = task.predict(inputs.query_ids, inputs.query_mask, corpus)
    assert scores.shape == (4, 4) and (scores.abs() <= 1 + 1e-5).all()
    q = task.encode_queries(inputs.query_ids, inputs.query_mask)
    torch.testing.assert_close(scores, video_scores(q, corpus.frames, corpus.frame_mask), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", ["moment_retrieval", "video_qa", "violin", "captioning", "text_video_retrieval"])
def test_every_task_builds_from_a_pretrain_model(name):
    p = _preset()
    pre = PretrainModel(p.model, PretrainConfig(), p.tokens)
    task = TASKS[name].from_pretrained(pre)
    assert all(k.startswith(TASKS[name].ALLOWED_MISSING) for k in task.pretrained_missing_keys)
    torch.testing.assert_close(task.encoder.text_embed.word.weight, pre.encoder.text_embed.word.weight)
