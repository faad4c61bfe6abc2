"""Corpus mixtures (data.corpora): config validation, per-step corpus draws in proportion to the weights, every
rank agreeing, exact resume of the corpus stream, per-corpus losses, and two real tiny corpora end to end."""

import collections

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from hero.config import ConfigError
from hero.presets import get_preset
from hero.train import run
from hero.train.config import BatchLayout, RunConfig
from hero.train.data import MixtureBatchSampler, MixtureDataset, StepBatchSampler, build_dataset, build_sampler

from train_helpers import read_metrics, strip_perf


def random_corpus(size, weight, seed=0, **kw):
    return {"source": "random", "size": size, "seed": seed, "frames": [4, 8], "sub_len": [3, 6], "weight": weight, **kw}


def mixture_cfg(tmp_path, corpora, tasks=None, **train):
    return RunConfig.from_dict({
        "preset": "hero-tiny",
        "pretrain": {"tasks": tasks or {"mlm": 2, "mfm_nce": 2, "fom": 1, "vsm": 2}},
        "data": {"corpora": corpora},
        "optim": {"lr": 1e-3, "warmup_steps": 2},
        "train": {"global_batch": 4, "micro_batch": 2, "max_steps": 8, "log_every": 1, "seed": 3,
                  "run_dir": str(tmp_path / "run"), **train},
    })


def test_config_is_keyed_by_name_and_round_trips():
    cfg = RunConfig.from_dict({"data": {"corpora": {"tv": random_corpus(8, 2), "howto": {"path": "m.json",
                                                                                          "features": "store"}}}})
    assert cfg.data.corpora["howto"].source == "corpus" and cfg.data.corpora["howto"].weight == 1.0
    assert RunConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.override("data.corpora.tv.weight=0.5").data.corpora["tv"].weight == 0.5  # a dotted override


@pytest.mark.parametrize("override, match", [
    ("data.corpora.tv.weight=-1", r"^data\.corpora\.tv\.weight: must be >= 0"),
    ("data.corpora.tv.wieght=1", r"^data\.corpora\.tv\.wieght: unknown key"),
    ("data.corpora.tv.frames=[4, 2]", r"^data\.corpora\.tv\.frames: need 1 <= low <= high"),
    ("data.corpora.tv.channels=audio", r"^data\.corpora\.tv\.channels: 'audio' is not one of"),
    ("data.corpora.howto.path=null", r"^data\.corpora\.howto\.path: required when source is 'corpus'"),
    ("data.path=m.json", r"^data\.path: not used with data\.corpora"),
    ("data.corpora.mlm={source: random}", r"^data\.corpora\.mlm: a corpus name is"),
])
def test_bad_mixtures_name_the_dotted_key(override, match):
    cfg = RunConfig.from_dict({"data": {"corpora": {"tv": random_corpus(8, 2), "howto": {"path": "m.json"}}}})
    with pytest.raises(ConfigError, match=match):
        cfg.override(override)
    with pytest.raises(ConfigError, match=r"^data\.corpora: every weight is 0"):
        cfg.override("data.corpora.tv.weight=0", "data.corpora.howto.weight=0")


def test_single_source_config_and_sampler_unchanged():
    cfg = RunConfig.from_dict({"data": {"source": "random", "size": 16}})
    ds, _ = build_dataset(cfg.data, get_preset("hero-tiny"))
    sampler = build_sampler(ds, BatchLayout(4, 2, 2, 1), rank=0, seed=3)
    assert type(sampler) is StepBatchSampler and sampler.corpus_at(5) is None


def _sampler(weights, sizes, layout=None, rank=0, seed=7):
    parts = {name: list(range(n)) for name, n in zip(weights, sizes, strict=True)}
    return MixtureBatchSampler(MixtureDataset(parts, weights), layout or BatchLayout(8, 4, 1, 2), rank, seed)


def test_corpora_are_drawn_in_proportion_to_their_weights():
    s = _sampler({"a": 5.0, "b": 3.0, "c": 2.0}, [10, 20, 30])
    steps = 20_000
    counts = collections.Counter(s.stream(0, steps))
    for name, share in (("a", 0.5), ("b", 0.3), ("c", 0.2)):
        sd = (share * (1 - share) / steps) ** 0.5
        assert abs(counts[name] / steps - share) < 5 * sd, (name, counts)   # 5 sigma: ~0.016 at most
    # a zero-weight corpus is never built, so it is never drawn
    cfg = RunConfig.from_dict({"data": {"corpora": {"tv": random_corpus(8, 1), "off": {"path": "/nonexistent",
                                                                                        "weight": 0}}}})
    ds, _ = build_dataset(cfg.data, get_preset("hero-tiny"))
    assert ds.names == ["tv"]


def test_every_rank_draws_the_same_corpus_and_splits_its_batch():
    weights, sizes = {"tv": 1.0, "howto": 1.0}, [12, 20]
    r0, r1 = (_sampler(weights, sizes, BatchLayout(8, 4, 1, 2), rank=r) for r in (0, 1))
    one = _sampler(weights, sizes, BatchLayout(8, 4, 2, 1), rank=0)
    offsets = dict(zip(r0.names, r0.offsets, strict=True))
    for step in range(40):
        assert r0.corpus_at(step) == r1.corpus_at(step) == one.corpus_at(step)
        both = r0.micro_batches(step) + r1.micro_batches(step)
        assert both == one.micro_batches(step)                         # same global batch, any world size
        name = r0.corpus_at(step)
        lo, hi = offsets[name], offsets[name] + sizes[r0.names.index(name)]
        assert all(lo <= i < hi for mb in both for i in mb)            # the whole batch is that corpus's


def test_each_corpus_is_read_epoch_by_epoch():
    s = _sampler({"tv": 3.0, "howto": 1.0}, [16, 8], BatchLayout(8, 8, 1, 1))
    seen = collections.defaultdict(list)
    for step in range(200):
        seen[s.corpus_at(step)] += s.micro_batches(step)[0]
    for name, n, off in zip(s.names, s.sizes, s.offsets, strict=True):
        idx = seen[name]
        assert len(idx) >= 2 * n
        assert sorted(idx[:n]) == list(range(off, off + n))             # first epoch: every video once
        assert sorted(idx[n:2 * n]) == list(range(off, off + n))


def test_sampler_state_rejects_a_changed_mixture():
    s = _sampler({"tv": 1.0, "howto": 1.0}, [12, 20])
    state = s.state_dict()
    other = _sampler({"tv": 2.0, "howto": 1.0}, [12, 20])
    with pytest.raises(ValueError, match="data order changed since the checkpoint: sampler corpora"):
        other.load_state_dict(state, step=3)
    single = StepBatchSampler(32, BatchLayout(8, 4, 1, 2), 0, seed=7)
    with pytest.raises(ValueError, match="it mixed data.corpora"):
        single.load_state_dict(state, step=3)
    with pytest.raises(ValueError, match="written by a single-source run"):
        s.load_state_dict(single.state_dict(), step=3)
    s.load_state_dict(state, step=3)
    assert s.start_step == 3 and next(iter(s)) == s.micro_batches(3)[0]


def _corpus_of_rows(rows, names):
    out = []
    for r in rows:
        hit = [n for n in names if f"train/{n}/loss" in r]
        out.append(hit[0] if hit else None)
    return out


def test_resume_continues_the_same_corpus_stream(tmp_path):
    corpora = {"tv": random_corpus(16, 1.0), "howto": random_corpus(8, 1.0, seed=5)}
    cfg = mixture_cfg(tmp_path, corpora, ckpt_every=2, max_steps=6)
    full = run(cfg, run_dir=tmp_path / "a")
    part = run(cfg.override("train.stop_after=3"), run_dir=tmp_path / "b")
    assert part["train/step"] == 3
    resumed = run(cfg, run_dir=tmp_path / "b")
    assert resumed["train/loss"] == full["train/loss"]
    a, b = read_metrics(tmp_path / "a"), read_metrics(tmp_path / "b")
    assert [strip_perf(r) for r in a] == [strip_perf(r) for r in b]      # every step: task, corpus, losses
    stream = _corpus_of_rows(a, ["tv", "howto"])
    assert set(stream) == {"tv", "howto"}                               # the stream really mixes corpora
    both = MixtureDataset({"howto": range(8), "tv": range(16)}, {"howto": 1.0, "tv": 1.0})   # name order
    sampler_stream = MixtureBatchSampler(both, BatchLayout(4, 2, 2, 1), 0, seed=3).stream(0, 6)
    assert stream == sampler_stream                                     # logged per corpus as drawn
    for r in a:
        task = next(k.split("/")[1] for k in r if k.count("/") == 2 and k.endswith("/loss")
                    and k.split("/")[1] not in ("tv", "howto"))
        corpus = _corpus_of_rows([r], ["tv", "howto"])[0]
        assert r[f"train/{task}/{corpus}/loss"] == r[f"train/{corpus}/loss"]
    wa, wb = (load_file(str(tmp_path / x / "step-00000006" / "model.safetensors")) for x in "ab")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    with pytest.raises(ValueError, match="sampler corpora"):                # changed weights cannot resume
        run(cfg.override("data.corpora.tv.weight=3", "train.max_steps=8"), run_dir=tmp_path / "b")


def test_video_only_corpus_skips_mlm_and_counts_it(tmp_path):
    corpora = {"talk": random_corpus(16, 1.0), "silent": random_corpus(16, 1.0, seed=9, channels="video")}
    cfg = mixture_cfg(tmp_path, corpora, tasks={"mlm": 1}, max_steps=8)
    out = run(cfg)
    assert np.isfinite(out["train/loss"])
    rows = read_metrics(tmp_path / "run")
    stream = _corpus_of_rows(rows, ["talk"])
    silent_steps = sum(1 for r in rows if "train/talk/loss" not in r)
    assert 0 < silent_steps < len(rows)
    for r, corpus in zip(rows, stream, strict=True):
        if corpus == "talk":
            assert r["train/mlm/skipped_videos"] == 0 and np.isfinite(r["train/mlm/talk/loss"])
        else:   # all 4 videos of the step skipped: counted, no loss scored, no per-corpus loss for "silent"
            assert r["train/mlm/skipped_videos"] == 4 and r["train/loss"] == 0.0
            assert "train/silent/loss" not in r and "train/mlm/loss" not in r


@pytest.fixture(scope="module")
def two_corpora(tmp_path_factory):
    """Two tiny synthetic corpora (4 and 3 videos), each with its own random 24-d feature store."""
    from hero.corpus import CorpusConfig, ingest_corpus
    from hero.features.store import StoreWriter, consolidate
    from hero.synth import SynthConfig, generate_corpus

    out = {}
    for name, seed, n in (("tv", 3, 4), ("howto", 4, 3)):
        root = tmp_path_factory.mktemp(name)
        generate_corpus(root / "c", SynthConfig(size="tiny", seed=seed, num_videos=n, workers=1))
        manifest = ingest_corpus(CorpusConfig(path=str(root / "c")))
        manifest.save(root / "manifest.json")
        rng = np.random.default_rng(seed)
        w = StoreWriter(root / "store")
        for vid, entry in manifest.videos.items():
            w.add(vid, rng.normal(size=(entry.num_clips, 24)).astype(np.float32), key=f"k-{vid}",
                  clip_len=manifest.clip_len, extractor="random", dim=24)
        w.close()
        consolidate(root / "store")
        out[name] = {"path": str(root / "manifest.json"), "features": str(root / "store")}
    return out


def test_two_real_corpora_mix(two_corpora, tmp_path):
    small = {"hidden_size": 32, "num_heads": 2, "intermediate_size": 64, "cross_layers": 1, "temporal_layers": 1,
             "feature_dim": 24}
    cfg = RunConfig.from_dict({
        "preset": "hero-mini", "model": small, "text_init": False,
        "data": {"corpora": {"tv": {**two_corpora["tv"], "weight": 1},
                             "howto": {**two_corpora["howto"], "weight": 1, "channels": "video"}}},
        "train": {"global_batch": 2, "max_steps": 6, "log_every": 1, "seed": 1, "run_dir": str(tmp_path / "run")},
    })
    ds, collate = build_dataset(cfg.data, cfg.build_preset())
    assert ds.names == ["howto", "tv"] and min(ds.sizes) >= 1          # the train split's videos of each
    howto = collate([ds[i] for i in range(ds.sizes[0])])               # video-only corpus: separator-only subtitles
    assert not howto.sub_mask[:, 1:].any() and howto.frame_feats.abs().sum() > 0
    out = run(cfg)
    assert out["train/step"] == 6 and np.isfinite(out["train/loss"])
    rows = read_metrics(tmp_path / "run")
    drawn = MixtureBatchSampler(ds, BatchLayout(2, 2, 1, 1), 0, seed=1).stream(0, 6)
    assert set(drawn) == {"tv", "howto"}
    for r, corpus in zip(rows, drawn, strict=True):
        if f"train/{corpus}/loss" not in r:   # MLM and VSM need subtitle text: they skip the video-only corpus
            skipped = [r.get(f"train/{task}/skipped_videos") for task in ("mlm", "vsm")]
            assert corpus == "howto" and 2 in skipped and r["train/loss"] == 0.0


@pytest.mark.slow
def test_two_ranks_agree_on_the_corpus_and_sum_the_counters(tmp_path):
    """torchrun, 2 ranks x 1 micro-batch vs 1 rank x 2: same corpus and task every step, same losses, and the
    skip counters summed over ranks (a video-only corpus makes MLM and VSM skip whole steps)."""
    from test_ddp import torchrun, write_cfg

    corpora = {"talk": random_corpus(16, 1.0), "silent": random_corpus(16, 1.0, seed=9, channels="video")}
    cfg = mixture_cfg(tmp_path, corpora, max_steps=8, ckpt_every=8, run_dir=str(tmp_path / "two"))
    torchrun(["-m", "hero.train", "--config", str(write_cfg(cfg, tmp_path / "run.yaml"))], tmp_path)
    run(cfg, run_dir=tmp_path / "one")
    a, b = read_metrics(tmp_path / "one"), read_metrics(tmp_path / "two")
    assert len(a) == len(b) == 8
    for ra, rb in zip(a, b, strict=True):
        ra, rb = strip_perf(ra), strip_perf(rb)
        assert ra.keys() == rb.keys()                                  # same corpus and task at every step
        for k in ra:
            assert ra[k] == pytest.approx(rb[k], rel=1e-4, abs=1e-6), k
    skipped = [r[k] for r in b for k in r if k.endswith("/skipped_videos")]
    assert 4.0 in skipped                                              # 2 videos on each of 2 ranks, summed
