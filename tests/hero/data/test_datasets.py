"""Manifest + feature store + tokenizer -> video examples -> VideoBatch -> every pretraining objective."""

import pytest
import torch

from hero.corpus import CorpusConfig, ingest_corpus
from hero.data.collate import collate_videos
from hero.data.datasets import PretrainDataset, TaskDataset, VideoFeatures, truncate_alignment
from hero.features import ExtractConfig, FeatureStore, run_extraction
from hero.text.tokenizer import load_tokenizer

FAST = {"image_size": 64, "batch_size": 16}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from hero.synth import SynthConfig, generate_corpus

    root = tmp_path_factory.mktemp("dcorpus") / "c"
    generate_corpus(root, SynthConfig(size="tiny", seed=2, num_videos=5, workers=1))
    manifest = ingest_corpus(CorpusConfig(path=str(root)))
    run_extraction(manifest, root.parent / "store", ExtractConfig(extractor_config=FAST, progress=False))
    return manifest, FeatureStore(root.parent / "store"), load_tokenizer("minilm")


def test_truncate_alignment_follows_hero():
    # max_frames = 4: sub0 [0, 1] kept; sub1 [] kept (never had frames); sub2 [2, 3, 4] keeps [2, 3] and stops
    subs = [[0, 1], [], [2, 3, 4], [5, 6], []]
    assert truncate_alignment(subs, 4) == [0, 1, 2]
    # a subtitle entirely past the cut is dropped and stops the iteration
    assert truncate_alignment([[0, 1], [4, 5], [6]], 4) == [0]
    assert truncate_alignment(subs, 100) == [0, 1, 2, 3, 4]


def test_collate_makes_a_well_formed_batch(data):
    manifest, store, tok = data
    ds = PretrainDataset(VideoFeatures(manifest, store, tok, max_frames=100))
    assert len(ds) == len(manifest.videos)
    batch = ds.collate([ds[i] for i in range(3)])
    B, T, D = batch.frame_feats.shape
    assert B == 3 and D == 2648
    assert (batch.sub_ids[:, 0] == tok.special.sep).all() and batch.sub_mask[:, 0].all()
    assert (batch.sub_video[1:] >= batch.sub_video[:-1]).all()
    for v, vid in enumerate(batch.video_ids):
        n = manifest.videos[vid].num_clips
        assert int(batch.frame_mask[v].sum()) == n
        rows = (batch.sub_video == v).nonzero(as_tuple=True)[0]
        assert len(rows) == len(manifest.videos[vid].subs)
        for r, clips in zip(rows.tolist(), manifest.videos[vid].sub_clips):
            got = [f for f in batch.sub_frames[r].tolist() if f >= 0]
            assert got == clips == sorted(clips)
    # the subtitle text round-trips through the tokenizer (speaker prefix included)
    first = manifest.videos[batch.video_ids[0]].subs[0][0]
    decoded = tok.decode(batch.sub_ids[0][batch.sub_mask[0]].tolist()[1:])
    assert decoded.replace(" ", "") == first.lower().replace(" ", "")


def test_max_frames_truncation(data):
    manifest, store, tok = data
    ds = PretrainDataset(VideoFeatures(manifest, store, tok, max_frames=5))
    batch = ds.collate([ds[i] for i in range(len(ds))])
    assert batch.frame_feats.shape[1] == 5 and int(batch.sub_frames.max()) <= 4
    for i in range(len(ds)):
        ex = ds[i]
        keep = truncate_alignment(manifest.videos[ex["video_id"]].sub_clips, 5)
        assert len(ex["sub_ids"]) == len(keep)


def test_video_without_subtitles_gets_hero_video_only_groups(data):
    manifest, store, tok = data
    vid = next(iter(manifest.videos))
    saved = manifest.videos[vid]
    manifest.videos[vid] = saved.__class__(**{**saved.__dict__, "subs": [], "sub_clips": [], "unmatched": []})
    try:
        ex = VideoFeatures(manifest, store, tok, video_ids=[vid]).example(vid)
    finally:
        manifest.videos[vid] = saved
    assert all(ids == [tok.special.sep] for ids in ex["sub_ids"])
    assert [f for fr in ex["sub_frames"] for f in fr] == list(range(saved.num_clips))


@pytest.mark.parametrize("encoder", ["hierarchical", "flat"])
def test_batches_feed_every_pretraining_objective(data, encoder):
    from hero.presets import get_preset
    from hero.tasks import PretrainConfig, PretrainModel

    manifest, store, tok = data
    ds = PretrainDataset.from_split(manifest, store, tok, split="train", max_frames=32)
    batch = ds.collate([ds[i] for i in range(min(3, len(ds)))])
    p = get_preset("hero-tiny", encoder=encoder, feature_dim=ds.videos.feature_dim, vocab_size=tok.vocab_size,
                   max_text_positions=128)
    model = PretrainModel(p.model, PretrainConfig(), tok.special)
    g = torch.Generator().manual_seed(0)
    for objective in ("mlm", "mfm_nce", "mffr", "fom", "vsm"):
        out = model(objective, model.prepare(objective, batch, g, step=0))
        assert torch.isfinite(out.loss), objective
        out.loss.backward()


def test_task_datasets_feed_the_task_collates(data):
    from hero.tasks.moment_retrieval import MomentRetrievalConfig, collate_moment_retrieval
    from hero.tasks.video_qa import VideoQaConfig, collate_video_qa

    manifest, store, tok = data
    videos = VideoFeatures(manifest, store, tok)
    for task in ("tvr", "tvqa", "violin", "tvc", "retrieval"):
        ds = TaskDataset(manifest, task, "train", videos)
        assert len(ds) > 0, task
        assert ds[0]["video"]["frame_feats"].shape[1] == 2648
    tvr = TaskDataset(manifest, "tvr", "train", videos)
    inputs = collate_moment_retrieval([tvr[i] for i in range(4)], tok.special, MomentRetrievalConfig(), clip_len=1.5)
    assert inputs.query_ids.shape[0] == 4 and (inputs.query_ids[:, 0] == tok.special.cls).all()
    qa = TaskDataset(manifest, "tvqa", "train", videos)
    collate_video_qa([qa[i] for i in range(3)], tok.special, VideoQaConfig(), clip_len=1.5)


def test_collate_agrees_with_the_downstream_collate(data):
    from hero.data.task_collate import collate_videos as downstream_collate

    manifest, store, tok = data
    ds = PretrainDataset(VideoFeatures(manifest, store, tok))
    items = [ds[i] for i in range(len(ds))]
    a, b = collate_videos(items, pad_id=tok.special.pad), downstream_collate(items, tok.special)
    for field in ("frame_feats", "frame_mask", "sub_ids", "sub_mask", "sub_video", "sub_frames"):
        assert torch.equal(getattr(a, field), getattr(b, field)), field


def test_subtitle_context_prepends_previous_subtitles(data):
    manifest, store, tok = data
    vid = next(v for v, e in manifest.videos.items() if len(e.subs) >= 3)
    plain = VideoFeatures(manifest, store, tok, video_ids=[vid]).example(vid)["sub_ids"]
    ctx = VideoFeatures(manifest, store, tok, video_ids=[vid], sub_ctx_len=2).example(vid)["sub_ids"]
    assert ctx[0] == plain[0]
    assert ctx[2] == [tok.special.sep] + plain[0][1:] + plain[1][1:] + plain[2][1:]


def test_violin_items_carry_their_opposite_statement(data):
    from hero.tasks.video_inference import ViolinConfig, collate_violin

    manifest, store, tok = data
    ds = TaskDataset(manifest, "violin", "train", VideoFeatures(manifest, store, tok))
    paired = [it for it in ds.items if "paired_ids" in it]
    assert len(paired) == len(ds.items) > 0
    by_id = {it["id"]: it for it in ds.items}
    first = paired[0]
    other = by_id[first["id"][:-1] + str(1 - first["label"])]
    assert first["paired_ids"] == other["statement_ids"]
    collate_violin([ds[i] for i in range(2)], tok.special, ViolinConfig(), clip_len=1.5)


def test_window_shows_each_example_its_clip(data):
    """TVQA / VIOLIN with ``window``: the frames around the example's ts, their subtitles, ts relative to the clip;
    the collates then encode each clip as its own video and the span targets stay on the same frames."""
    from hero.data.task_collate import span_labels
    from hero.tasks.video_inference import ViolinConfig, collate_violin
    from hero.tasks.video_qa import VideoQaConfig, collate_video_qa

    manifest, store, tok = data
    videos = VideoFeatures(manifest, store, tok)
    whole, clipped = TaskDataset(manifest, "tvqa", "train", videos), TaskDataset(manifest, "tvqa", "train", videos,
                                                                                    window=1.5)
    assert len(whole) == len(clipped) > 3
    for i in range(len(whole)):
        a, b = whole[i], clipped[i]
        full, clip = a["video"]["frame_feats"], b["video"]["frame_feats"]
        st = int(b["video"]["video_id"].split("[")[1].split(":")[0])
        assert clip.shape[0] < full.shape[0] and torch.equal(clip, full[st: st + clip.shape[0]])
        # the clip covers ts with 1.5 s (one frame) to spare on each side, where the video has it
        assert st * manifest.clip_len <= max(a["ts"][0] - 1.5, 0.0) + 1e-6
        assert b["ts"][0] == pytest.approx(a["ts"][0] - st * manifest.clip_len, abs=1e-3)
        clip_st = span_labels(b["ts"], clip.shape[0], manifest.clip_len)[0]
        assert clip_st + st == span_labels(a["ts"], full.shape[0], manifest.clip_len)[0]
        assert all(0 <= f < clip.shape[0] for fr in b["video"]["sub_frames"] for f in fr)
    inputs = collate_video_qa([clipped[i] for i in range(3)], tok.special, VideoQaConfig(window=1.5), clip_len=1.5)
    assert inputs.batch.frame_feats.shape[1] < whole[0]["video"]["frame_feats"].shape[0]
    violin = TaskDataset(manifest, "violin", "train", videos, window=0.0)
    pair = collate_violin([violin[i] for i in range(4)], tok.special, ViolinConfig(window=0.0), clip_len=1.5)
    assert pair.batch.num_videos == len({violin[i]["video"]["video_id"] for i in range(4)})


def test_how2_examples_take_the_tvr_and_tvqa_forms(data):
    """How2R / How2QA examples (ingested from their CSV files) feed the moment-retrieval and QA tasks."""
    import copy

    manifest, store, tok = data
    m = copy.copy(manifest)
    m.tasks = {**manifest.tasks,
               "how2r": {"train": manifest.tasks["tvr"]["train"]},
               "how2qa": {"train": [{**e, "answers": e["answers"][:4], "answer_idx": 0}
                                    for e in manifest.tasks["tvqa"]["train"]]}}
    videos = VideoFeatures(m, store, tok, max_frames=100)
    r = TaskDataset(m, "how2r", "train", videos)
    q = TaskDataset(m, "how2qa", "train", videos)
    assert len(r) == len(TaskDataset(m, "tvr", "train", videos)) > 0 and r[0]["query_ids"][0] == tok.special.cls
    assert len(q) > 0 and all(len(item["answer_ids"]) == 4 for item in q.items)
    with pytest.raises(ValueError, match="unknown task 'nope'"):
        TaskDataset(_with_task(m, "nope"), "nope", "train", videos)


def _with_task(manifest, name):
    import copy

    m = copy.copy(manifest)
    m.tasks = {**manifest.tasks, name: {"train": manifest.tasks["tvr"]["train"]}}
    return m
