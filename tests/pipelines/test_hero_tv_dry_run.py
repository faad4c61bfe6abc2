"""A dry run of conf/hero_tv (HERO's TV pretraining + TVR finetuning) on CPU: the same environment with --params
that shrink the network, the batches and the steps, on a synthetic features-only corpus (a HERO video_db LMDB of
4352-d features + subtitles.jsonl + TVR annotations, no videos/), a hand-built RoBERTa-shaped vocabulary, and
conf/local launching 2 ranks, so VSM negatives are gathered across ranks as on the cluster."""

import json
import time

import pytest
import yaml

from features_only_corpus import build_features_corpus

HERO_DIM = 4352
TINY_MODEL = {"hidden_size": 32, "num_heads": 2, "intermediate_size": 64, "cross_layers": 1, "temporal_layers": 1}
TINY_TRAIN = {"global_batch": 4, "micro_batch": 2, "max_steps": 4, "ckpt_every": 2, "log_every": 1}


@pytest.fixture(scope="module")
def tvr_features_corpus(tmp_path_factory):
    """(corpus folder, video_db folder, video2dur file) as HERO's TV release looks: 4352-d features, tvr only."""
    return build_features_corpus(tmp_path_factory.mktemp("hero_tv"), HERO_DIM, tasks=("tvr",))


@pytest.mark.slow  # a 2-rank pretraining job, a 2-rank TVR finetuning job and the evaluation
def test_hero_tv_runs_pretrain_finetune_evaluate_at_tiny_sizes(project, tvr_features_corpus, roberta_like_vocab):
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    root, db, dur = tvr_features_corpus
    (project / "conf/local/parameters_launch.yml").write_text("launch: {nproc_per_node: 2, nnodes: 1}\n")  # the cluster's place
    shrink = {
        "corpus": {"path": str(root), "features": str(db), "video2dur": str(dur)},
        "text": {"tokenizer": str(roberta_like_vocab)},
        # seed 77 draws mlm, mfm_nce, mlm, mlm, mlm, mfm_nce, fom, mfm_nce, vsm, vsm: 10 steps see every objective
        "pretrain": {"run": {"model": TINY_MODEL, "pretrain": {"vsm": {"hard_negative_start_step": 9}},
                             "optim": {"warmup_steps": 1}, "data": {"num_workers": 0},
                             "train": {**TINY_TRAIN, "max_steps": 10, "ckpt_every": 5}}},
        "finetune": {"run": {"model": TINY_MODEL, "optim": {"warmup_steps": 1}, "data": {"num_workers": 0},
                             "train": TINY_TRAIN},
                     "tasks": {"tvr": {"finetune": {"hard_negative_start_step": 2}}}},
    }
    bootstrap_project(project)
    t0 = time.perf_counter()
    with KedroSession.create(project_path=project, env="hero_tv", runtime_params=shrink) as session:
        session.run(pipeline_names=["evaluate"])          # corpus -> features -> pretrain -> finetune -> evaluate
    print(f"hero_tv dry run: {time.perf_counter() - t0:.1f} s")

    pre = json.loads((project / "data/06_models/pretrain/pretrain_info.json").read_text())
    pre_dir = project / "data/06_models/pretrain" / pre["key"]
    cfg = yaml.safe_load((pre_dir / "config.yaml").read_text())
    from hero.train.checkpoint import find_latest

    resolved = find_latest(pre_dir).meta["config"]   # what the trainer ran: the feature dim read from the store
    assert cfg["preset"] == "hero-base" and resolved["model"]["feature_dim"] == HERO_DIM and cfg["train"]["seed"] == 77
    assert cfg["pretrain"]["tasks"] == {"mlm": 2, "mfm_nce": 2, "fom": 1, "vsm": 2}
    assert cfg["pretrain"]["vsm"]["gather_across_ranks"] is True and cfg["train"]["precision"] == "bf16"
    assert cfg["optim"]["lr"] == 3e-5 and cfg["data"]["tokenizer"] == str(roberta_like_vocab)
    rows = [json.loads(x) for x in (pre_dir / "metrics.jsonl").read_text().splitlines()]
    seen = {k.split("/")[1] for r in rows for k in r if k.startswith("train/") and k.endswith("/loss")}
    assert {"mlm", "mfm_nce", "fom", "vsm"} <= seen, seen                    # every objective ran, VSM gathered
    ft_info = json.loads((project / "data/06_models/finetune/tvr_finetune_info.json").read_text())
    assert list(ft_info) == ["pretrained"]                                  # no from-scratch twin
    ft_dir = project / ft_info["pretrained"]["run_dir"]
    ft = yaml.safe_load((ft_dir / "config.yaml").read_text())
    assert ft["task"] == "tvr" and ft["finetune"]["gather_across_ranks"] is True and ft["optim"]["lr"] == 1e-4
    assert ft["train"]["init_from"] == pre["run_dir"]
    for run_dir in (pre_dir, ft_dir):                                        # conf/local's launch: 2 ranks
        assert json.loads((sorted(run_dir.glob("step-*"))[-1] / "state.json").read_text())["world_size"] == 2
    for other in ("tvqa", "violin", "tvc", "retrieval"):                     # finetune.datasets: [tvr]
        assert json.loads((project / f"data/06_models/finetune/{other}_finetune_info.json").read_text()) == {}
    metrics = json.loads((project / "data/08_reporting/metrics.json").read_text())
    assert "tvr/val/vcmr_r1_iou0.7" in metrics and "tvr/val/svmr_r1_iou0.5" in metrics
    assert all(k.startswith("tvr/") for k in metrics)
    assert (project / "data/07_model_output/tvr/pretrained/val_predictions.json").is_file()
