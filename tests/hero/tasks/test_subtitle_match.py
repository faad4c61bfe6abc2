"""The retrieval tasks' query-subtitle match (``text_match``): which frames a subtitle covers, that a query equal
to a subtitle retrieves that subtitle's video and span when the match dominates, that training and inference
compute the same scores, and that the encoded corpus carries what the match needs (also through a search index)."""

import pytest
import torch

from hero.config import ConfigError
from hero.data.random_batch import random_video_batch
from hero.data.task_collate import collate_videos, video_examples
from hero.eval.search import load_index, save_index
from hero.metrics.moment_ranking import MomentRankConfig
from hero.presets import get_preset
from hero.tasks.downstream import QuerySubtitleMatch, frame_subtitles
from hero.tasks.moment_retrieval import MomentRetrievalConfig, MomentRetrievalTask, collate_moment_retrieval
from hero.tasks.text_video_retrieval import (
    TextVideoRetrievalConfig, TextVideoRetrievalTask, collate_text_video_retrieval,
)
from hero.tasks.vsm import video_scores


def _preset():
    return get_preset("hero-tiny", dropout=0.0, attention_dropout=0.0)


def _batch(p, n=4, seed=0):
    return random_video_batch(p.model, p.tokens, num_videos=n, frames=(8, 12), frames_per_sub=(2, 4),
                              generator=torch.Generator().manual_seed(seed))


def _subtitle_query(p, batch, s):
    """[CLS] + subtitle s's words: the same ids `SubtitleTextMatch.embed` encodes for the subtitle."""
    return [p.tokens.cls] + batch.sub_ids[s][batch.sub_mask[s]].tolist()[1:]


def _dominant(match: QuerySubtitleMatch):
    with torch.no_grad():
        match.video_weight.fill_(50.0)          # w = 1: the text side alone
        match.start_scale.fill_(1000.0)
        match.end_scale.fill_(1000.0)
        match.sharpness.fill_(1000.0)


def test_frame_subtitles_maps_each_aligned_frame_and_skips_separator_only_subtitles():
    p = _preset()
    b = _batch(p)
    rows = frame_subtitles(b)
    assert rows.shape == b.frame_mask.shape
    for s in range(b.sub_ids.shape[0]):
        frames = b.sub_frames[s][b.sub_frames[s] >= 0]
        want = s if int(b.sub_mask[s].sum()) > 1 else -1
        assert (rows[b.sub_video[s], frames] == want).all()
    covered = torch.zeros_like(b.frame_mask)
    for s in range(b.sub_ids.shape[0]):
        covered[b.sub_video[s], b.sub_frames[s][b.sub_frames[s] >= 0]] = int(b.sub_mask[s].sum()) > 1
    assert torch.equal(rows >= 0, covered)           # every other frame (unmatched, padding) is -1


def test_span_edges_pick_the_best_subtitles_first_and_last_frames():
    m = QuerySubtitleMatch(edge_scale=1.0, sharpness=50.0)
    #                 gap  sub A (0.3)    best sub (0.9)      gap  sub B (0.6)
    match = torch.tensor([[0.0, 0.3, 0.3, 0.9, 0.9, 0.9, 0.0, 0.6, 0.6]])
    has = torch.tensor([[False, True, True, True, True, True, False, True, True]])
    st, ed = m.span_logits(torch.zeros(1, 9), torch.zeros(1, 9), match, has)
    assert int(st.argmax()) == 3 and int(ed.argmax()) == 5
    with torch.no_grad():
        assert float(m.video_scores(torch.tensor([0.5]), match, has)) == pytest.approx(0.7)          # w = 0.5
        assert float(m.video_scores(torch.tensor([0.5]), match, torch.zeros_like(has))) == pytest.approx(0.25)


def _mr_inputs(p, batch, cfg, queries):
    """Examples whose videos are ``batch``'s; queries: (video, ids, (t0, t1)) triples."""
    vids = video_examples(batch)
    return collate_moment_retrieval([{"video": vids[v], "query_ids": ids, "ts": ts} for v, ids, ts in queries],
                                    p.tokens, cfg, clip_len=1.5)


def _queries(p, batch):
    """One query per video: a subtitle of it with text and at least two frames, as (video, ids, span) and s."""
    out = []
    for v in range(batch.num_videos):
        for s in (batch.sub_video == v).nonzero(as_tuple=True)[0].tolist():
            frames = batch.sub_frames[s][batch.sub_frames[s] >= 0]
            if len(frames) >= 2 and int(batch.sub_mask[s].sum()) > 2:
                out.append((s, (v, _subtitle_query(p, batch, s), (1.5 * int(frames[0]), 1.5 * (int(frames[-1]) + 1)))))
                break
    assert len(out) >= 3
    return out


def test_a_query_equal_to_a_subtitle_finds_its_video_and_span_when_the_match_dominates():
    p = _preset()
    cfg = MomentRetrievalConfig(text_match=True)
    task = MomentRetrievalTask(p.model, cfg, p.tokens).eval()
    _dominant(task.head.match)
    b = _batch(p, n=5, seed=1)
    corpus = task.encode_corpus([b])
    assert corpus.sub_embed.shape == (b.sub_ids.shape[0], p.model.hidden_size)
    assert torch.equal(corpus.frame_sub, frame_subtitles(b))
    picked = _queries(p, b)
    inputs = _mr_inputs(p, b, cfg, [q for _, q in picked])
    rank = MomentRankConfig(max_videos=3, min_len=1, max_len=8, max_after_nms=3, max_before_nms=10)
    with torch.no_grad():
        pred = task.predict(inputs.query_ids, inputs.query_mask, corpus, rank, gt_video=inputs.query_video)
    for i, (s, (v, _, (t0, t1))) in enumerate(picked):
        assert int(pred.vr.video[i, 0]) == v
        assert (int(pred.svmr.video[i, 0]), float(pred.svmr.start[i, 0]), float(pred.svmr.end[i, 0])) == (v, t0, t1)
        assert (int(pred.vcmr.video[i, 0]), float(pred.vcmr.start[i, 0]), float(pred.vcmr.end[i, 0])) == (v, t0, t1)


def test_training_and_inference_compute_the_same_scores():
    p = _preset()
    cfg = MomentRetrievalConfig(text_match=True, drop_svmr_prob=0.0)
    task = MomentRetrievalTask(p.model, cfg, p.tokens).eval()
    b = _batch(p, n=4, seed=2)
    inputs = _mr_inputs(p, b, cfg, [q for _, q in _queries(p, b)])
    with torch.no_grad():
        out = task.encoder(inputs.batch)
        query, text = task.encode_query_text(inputs.query_ids, inputs.query_mask)
        match, has = task.batch_match(inputs.batch, text)
        train_scores = task.head.match.video_scores(video_scores(query, out.frame_states, out.frame_mask), match,
                                                     has[None])
        corpus = task.encode_corpus([inputs.batch])
        s = task.score_queries(query, corpus, query_text=text)
        own = inputs.query_video
        st, ed = task.head.span_logits(query, out.frame_states[own], out.frame_mask[own],
                                       (match[torch.arange(len(own)), own], has[own]))
    torch.testing.assert_close(s.video_scores, train_scores, atol=1e-5, rtol=1e-5)
    idx = torch.arange(len(own))
    torch.testing.assert_close(s.st_probs[idx, own], st.softmax(-1), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(s.ed_probs[idx, own], ed.softmax(-1), atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="text_match"):        # a corpus encoded without subtitle embeddings
        task.score_queries(query, task.encode_corpus([inputs.batch]).__class__(
            frames=corpus.frames, frame_mask=corpus.frame_mask, video_ids=corpus.video_ids), query_text=text)


def test_the_match_trains_with_the_encoder_and_refuses_gathered_negatives():
    p = _preset()
    cfg = MomentRetrievalConfig(text_match=True, drop_svmr_prob=0.0, lw_st_ed=1.0)
    task = MomentRetrievalTask(p.model, cfg, p.tokens)
    b = _batch(p, n=4, seed=3)
    inputs = task.prepare(_mr_inputs(p, b, cfg, [q for _, q in _queries(p, b)]), torch.Generator().manual_seed(0), 0)
    out = task(inputs)
    out.loss.backward()
    m = task.head.match
    assert all(q.grad is not None and float(q.grad.abs()) > 0 for q in (m.video_weight, m.start_scale, m.end_scale,
                                                                          m.sharpness))
    assert float(task.encoder.text_embed.word.weight.grad.abs().sum()) > 0
    off = MomentRetrievalTask(p.model, MomentRetrievalConfig(), p.tokens)
    assert off.head.match is None and not any(k.startswith("head.match") for k in off.state_dict())
    assert off.encode_corpus([b]).sub_embed is None
    gathered = MomentRetrievalTask(p.model, MomentRetrievalConfig(text_match=True, gather_across_ranks=True), p.tokens)
    gathered.all_gather = lambda x: x
    with pytest.raises(ConfigError, match="text_match"):
        gathered(inputs)


def test_text_video_retrieval_match_ranks_the_subtitles_video_first_and_agrees_with_training():
    p = _preset()
    cfg = TextVideoRetrievalConfig(text_match=True)
    task = TextVideoRetrievalTask(p.model, cfg, p.tokens).eval()
    _dominant(task.head.match)
    b = _batch(p, n=5, seed=4)
    vids = video_examples(b)
    picked = _queries(p, b)
    inputs = collate_text_video_retrieval([{"video": vids[v], "query_ids": ids} for _, (v, ids, _) in picked],
                                          p.tokens, cfg)
    with torch.no_grad():
        scores = task.predict(inputs.query_ids, inputs.query_mask, task.encode_corpus([b]))
        out = task.encoder(b)
        query, text = task.encode_query_text(inputs.query_ids, inputs.query_mask)
        match, has = task.batch_match(b, text)
        train = task.head.match.video_scores(video_scores(query, out.frame_states, out.frame_mask), match, has[None])
    assert scores.argmax(1).tolist() == [v for _, (v, _, _) in picked]
    torch.testing.assert_close(scores, train, atol=1e-3, rtol=1e-5)


def test_a_search_index_keeps_the_subtitle_embeddings(tmp_path):
    p = _preset()
    task = MomentRetrievalTask(p.model, MomentRetrievalConfig(text_match=True), p.tokens).eval()
    b = _batch(p, n=3, seed=5)
    corpus = task.encode_corpus([collate_videos(video_examples(b)[:2], p.tokens),
                                 collate_videos(video_examples(b)[2:], p.tokens)])
    assert torch.equal(corpus.frame_sub, frame_subtitles(collate_videos(video_examples(b), p.tokens)))
    save_index(tmp_path / "index", corpus, {"weights": "x"})
    again, fp = load_index(tmp_path / "index")
    assert fp == {"weights": "x"}
    assert torch.equal(again.sub_embed, corpus.sub_embed) and torch.equal(again.frame_sub, corpus.frame_sub)


def _default_tvr_job(without_match_lr_mult=False):
    """The task model and optimizer settings of the default TVR finetuning job (conf/base: ``finetune.run`` with
    ``finetune.tasks.tvr`` merged in, as `pipelines.finetune.nodes.finetune_run_config` merges them)."""
    from pathlib import Path

    import yaml

    from hero.config import from_dict, merge
    from hero.train.config import OptimConfig
    from hero.train.finetune import build_task_model

    params = yaml.safe_load((Path(__file__).parents[3] / "conf/base/parameters_finetune.yml").read_text())["finetune"]
    run = merge(params["run"], params["tasks"]["tvr"])
    task_cfg = dict(run["finetune"])
    assert task_cfg["text_match"]
    if without_match_lr_mult:
        task_cfg.pop("match_lr_mult")
    return build_task_model("tvr", task_cfg, _preset()), from_dict(OptimConfig, run["optim"], _path="optim")


@pytest.mark.parametrize("without_match_lr_mult", [False, True])
def test_the_default_tvr_job_lets_the_match_scalars_move(without_match_lr_mult):
    """The match's scalars start at 10 (edge scales, sharpness) and 0 (video weight). Adam moves a parameter by
    about its learning rate per step whatever the gradient, so at the head's rate (5e-4) 50 steps move an edge
    scale by 0.025 at most and the text edges stay as sharp as they started: the only way left to lower the span
    loss was to inflate the frames' span term (docs/results.md, "Span scales"). The default job's
    ``finetune.match_lr_mult`` gives them a rate at their own scale; here 50 steps toward a target of 3."""
    from hero.train.optim import build_optimizer

    model, optim = _default_tvr_job(without_match_lr_mult)
    opt = build_optimizer(model, optim)
    match = model.task.head.match
    for _ in range(50):
        opt.zero_grad()
        ((match.start_scale - 3.0) ** 2 + (match.end_scale - 3.0) ** 2).backward()
        opt.step()
    moved = 10.0 - match.start_scale.item()
    if without_match_lr_mult:
        assert 0 < moved < 0.05
    else:
        assert moved > 2.0 and match.end_scale.item() < 8.0


def test_the_match_lr_mult_names_the_match_only_with_text_match_and_the_run_config_wins():
    from hero.train.config import OptimConfig
    from hero.train.finetune import build_task_model
    from hero.train.optim import with_model_lr_mults

    on = build_task_model("tvr", {"text_match": True, "match_lr_mult": 100.0}, _preset())
    off = build_task_model("tvr", {"text_match": False, "match_lr_mult": 100.0}, _preset())
    assert on.lr_mults() == {"heads.head.match": 100.0} and off.lr_mults() == {}
    assert with_model_lr_mults(on, OptimConfig()).lr_mult == {"heads.head.match": 100.0}
    assert with_model_lr_mults(on, OptimConfig(lr_mult={"heads.head.match": 3.0})).lr_mult == {"heads.head.match": 3.0}
    with pytest.raises(ConfigError, match="match_lr_mult: must be finite and > 0, got 0.0"):
        MomentRetrievalConfig(match_lr_mult=0.0)
