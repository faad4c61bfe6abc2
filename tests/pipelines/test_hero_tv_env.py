"""conf/hero_tv (HERO's TV pretraining + TVR finetuning) resolves, and every job config it makes validates through
the classes the pipelines use, without running anything."""

import shutil
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = {"path": "/data/tvr/manifest.json", "key": "m"}
FEATURES = {"path": "/data/features", "dim": 4352, "key": "f"}   # HERO's ResNet + SlowFast features


@pytest.fixture
def conf(tmp_path):
    """The project's conf/ without this machine's conf/local files."""
    dest = shutil.copytree(ROOT / "conf", tmp_path / "conf", ignore=shutil.ignore_patterns("local"))
    (dest / "local").mkdir()
    return dest


def hero_tv_params(conf, runtime_params=None) -> dict:
    from pipelines.settings import CONFIG_LOADER_ARGS, CONFIG_LOADER_CLASS

    return CONFIG_LOADER_CLASS(str(conf), env="hero_tv", runtime_params=runtime_params, **CONFIG_LOADER_ARGS)["parameters"]


def test_hero_tv_holds_only_keys_of_conf_base(conf):
    def top_keys(folder):
        return {k for f in folder.glob("*.yml") for k in (yaml.safe_load(f.read_text()) or {})}

    assert top_keys(conf / "hero_tv") <= top_keys(conf / "base")


def test_hero_tv_job_configs_validate(conf, roberta_like_vocab):
    from hero.config import from_dict
    from hero.corpus.ingest import CorpusConfig
    from hero.eval.predict import predict_options
    from hero.presets import preset_tokenizer
    from hero.train.config import RunConfig, batch_layout
    from pipelines.finetune.nodes import finetune_run_config
    from pipelines.launch import LaunchConfig
    from pipelines.pretrain.nodes import corpus_run_config

    params = hero_tv_params(conf, {"corpus": {"path": "/data/tvr", "features": "/data/video_db/tv"},
                                   "text": {"tokenizer": str(roberta_like_vocab)}})

    # pretraining: config/pretrain-tv-16gpu.json
    pre = RunConfig.from_dict(corpus_run_config(params["pretrain"]["run"], MANIFEST, FEATURES, params["text"]))
    m = pre.model_config
    assert (pre.preset, m.hidden_size, m.num_heads, m.cross_layers, m.temporal_layers, m.feature_dim, m.max_frames,
            m.vocab_size) == ("hero-base", 768, 12, 6, 3, 4352, 100, 50265)
    assert pre.pretrain.tasks == {"mlm": 2, "mfm_nce": 2, "fom": 1, "vsm": 2} and pre.pretrain.mask_prob == 0.15
    v = pre.pretrain.vsm
    assert (v.hard_negative_start_step, v.gather_across_ranks, v.lw_st_ed, v.drop_svmr_prob, v.lw_neg_ctx, v.lw_neg_q,
            v.hard_pool_size, v.hard_weight, v.margin, v.queries_per_video) == (20000, True, 0.01, 0.8, 8, 8, 20, 10, 0.1, 5)
    o = pre.optim
    assert (o.lr, o.warmup_steps, o.decay, o.min_lr_ratio, o.betas, o.eps, o.weight_decay, o.grad_clip) == \
        (3e-5, 10000, "linear", 0.0, (0.9, 0.98), 1e-6, 0.01, 1.0)
    t = pre.train
    assert (t.global_batch, t.micro_batch, t.max_steps, t.precision, t.ckpt_every, t.seed) == \
        (1024, 32, 100000, "bf16", 500, 77)
    assert batch_layout(t, 16).accum == 2          # the original: 16 GPUs x 32 videos x 2 accumulation steps
    assert batch_layout(t, 8).accum == 4
    assert pre.data.tokenizer == str(roberta_like_vocab) and pre.data.num_workers == 4
    preset_tokenizer(pre.build_preset(), pre.data.tokenizer)   # the vocabulary fits hero-base

    # TVR finetuning: config/train-tvr-8gpu.json
    assert params["finetune"]["datasets"] == ["tvr"] and params["finetune"]["inits"] == ["pretrained"]
    ft = RunConfig.from_dict(finetune_run_config(params["finetune"], "tvr", "pretrained", MANIFEST, FEATURES,
                                                 {"run_dir": "/runs/pretrain/k", "key": "k"}, params["text"]))
    assert ft.task == "tvr" and ft.train.init_from == "/runs/pretrain/k" and ft.model_config == pre.model_config
    f = ft.finetune
    assert (f.lw_st_ed, f.drop_svmr_prob, f.lw_neg_ctx, f.lw_neg_q, f.hard_negative_start_step,
            f.gather_across_ranks) == (0.01, 0.8, 8.0, 8.0, 2000, True)
    assert (ft.optim.lr, ft.optim.warmup_steps, ft.optim.decay, ft.optim.head_lr_mult) == (1e-4, 500, "linear", {"head": 1.0})
    t = ft.train
    assert (t.global_batch, t.micro_batch, t.max_steps, t.precision, t.ckpt_every, t.seed) == (512, 32, 5000, "bf16", 200, 77)
    assert batch_layout(t, 8).accum == 2           # the original: 8 GPUs x 32 queries x 2 accumulation steps
    assert t.init_fresh == ()                       # the original finetunes every pretrained part (conf/base does not)

    # evaluation options are checked PredictOptions; launch and corpus as the nodes read them
    assert predict_options(params["evaluate"]["options"]["tvr"], "tvr").corpus_batch_size == 50
    from_dict(LaunchConfig, params["launch"], _path="launch")
    reader = from_dict(CorpusConfig, {**params["corpus"]["reader"], "path": params["corpus"]["path"]}, _path="corpus.reader")
    assert reader.clip_len == 1.5 and params["corpus"]["features"] == "/data/video_db/tv"


def test_without_paths_hero_tv_says_what_is_missing(conf, monkeypatch):
    from hero.config import ConfigError
    from pipelines.corpus.nodes import prepare_corpus
    from pipelines.pretrain import nodes

    params = hero_tv_params(conf)
    assert params["text"] == {"tokenizer": None}
    with pytest.raises(ValueError, match="^corpus.path: not set"):
        prepare_corpus(params["corpus"])
    with pytest.raises(ConfigError, match="^data.tokenizer: preset hero-base names no tokenizer"):
        nodes.pretrain(params["pretrain"], params["launch"], MANIFEST, FEATURES, {}, params["text"])


def test_datasets_left_out_of_finetune_datasets_are_not_trained(conf):
    from pipelines.finetune import nodes

    params = hero_tv_params(conf)
    asked = nodes.finetune_task(params["finetune"], params["launch"], MANIFEST, FEATURES, {"run_dir": "r", "key": "k"},
                                params["text"], dataset="tvqa")
    assert dict(asked.jobs) == {}
