"""Import of state dicts in the original HERO release's layout (key list: fixtures/, from HERO_SPEC.md f)."""

import re
from pathlib import Path

import pytest
import torch

from hero.model.original import export_original, import_original, infer_model_config, load_original_checkpoint

KEYS = Path(__file__).parent / "fixtures" / "hero_official_state_dict_keys.txt"


def _section(index: int) -> list[tuple[str, tuple[int, ...]]]:
    """(key, shape) rows of the index-th HeroForPretraining listing in the key file (0 = small, 1 = full size)."""
    sections, cur = [], None
    for line in KEYS.read_text().splitlines():
        if line.startswith("# HeroForPretraining"):
            cur = []
            sections.append(cur)
        elif line.startswith("# Hero"):
            cur = None  # another model's listing
        elif line.startswith("#"):
            continue
        elif cur is not None and line.strip():
            key, shape = line.split("\t")[:2]
            cur.append((key, tuple(int(x) for x in re.findall(r"\d+", shape))))
    return sections[index]


def _random_original(rows, seed=0):
    g = torch.Generator().manual_seed(seed)
    sd = {k: torch.randn(shape, generator=g) * 0.02 for k, shape in rows}
    for k in ("v_encoder.f_encoder.img_embeddings.mask_embedding.weight", "v_encoder.mask_embedding.weight"):
        sd[k][0] = 0  # padding_idx row, zero in the original
    sd["v_encoder.f_encoder.lm_head.decoder.weight"] = sd["v_encoder.f_encoder.embeddings.word_embeddings.weight"]
    sd["vocab_padded"] = True
    return sd


def test_key_list_fixture_has_both_sizes():
    assert len(_section(0)) == 131 and len(_section(1)) == 211


def test_infer_config_from_tensors():
    cfg = infer_model_config(_random_original(_section(0)))
    assert (cfg.hidden_size, cfg.num_heads, cfg.cross_layers, cfg.temporal_layers) == (256, 4, 2, 2)
    assert (cfg.vocab_size, cfg.embedding_rows, cfg.feature_dim, cfg.max_frames) == (50265, 50272, 4352, 100)
    assert cfg.compat == "original" and cfg.frame_positions == "local" and cfg.embedding_norm_eps == 1e-5


def test_round_trip_small_layout_nothing_unmapped(tmp_path):
    sd = _random_original(_section(0))
    path = tmp_path / "model_step_100.pt"
    torch.save(sd, path)
    model, report = load_original_checkpoint(path)
    assert report.unmapped == []
    assert report.missing == []  # every tensor of our pretraining model came from the file
    assert set(report.mapped) | set(report.unused) == set(sd)
    assert sorted(report.unused) == sorted([
        "v_encoder.pad", "v_encoder.f_encoder.pad", "vocab_padded", "v_encoder.f_encoder.lm_head.decoder.weight",
        "v_encoder.f_encoder.pooler.dense.weight", "v_encoder.f_encoder.pooler.dense.bias",
        "v_encoder.c_encoder.pooler.dense.weight", "v_encoder.c_encoder.pooler.dense.bias"])
    back = export_original(model)
    for key in report.mapped:
        torch.testing.assert_close(back[key], sd[key], atol=0, rtol=0, msg=key)
    assert back["vocab_padded"] is True


def test_unknown_keys_are_reported_by_name():
    sd = _random_original(_section(0))
    sd["v_encoder.some_new_head.weight"] = torch.zeros(3)
    sd["extra_flag"] = 7
    from hero.presets import ROBERTA_TOKENS
    from hero.tasks import PretrainConfig, PretrainModel

    model = PretrainModel(infer_model_config(sd), PretrainConfig(), ROBERTA_TOKENS)
    report = import_original(model, sd)
    assert sorted(report.unmapped) == ["extra_flag", "v_encoder.some_new_head.weight"]


def test_shape_mismatch_names_the_key():
    sd = _random_original(_section(0))
    from hero.presets import ROBERTA_TOKENS
    from hero.tasks import PretrainConfig, PretrainModel

    model = PretrainModel(infer_model_config(sd), PretrainConfig(), ROBERTA_TOKENS)
    sd["v_encoder.feat_regress.net.3.weight"] = torch.zeros(10, 256)
    with pytest.raises(ValueError, match="heads.mfm.fc2.weight"):
        import_original(model, sd)


def test_imported_model_runs_every_objective():
    from hero.data.random_batch import random_video_batch

    sd = _random_original(_section(0))
    from hero.presets import ROBERTA_TOKENS
    from hero.tasks import PretrainConfig, PretrainModel

    model = PretrainModel(infer_model_config(sd), PretrainConfig(), ROBERTA_TOKENS)
    import_original(model, sd)
    batch = random_video_batch(model.model_cfg, ROBERTA_TOKENS, num_videos=2)
    g = torch.Generator().manual_seed(0)
    for name in ("mlm", "mfm_nce", "mffr", "fom", "vsm"):
        assert torch.isfinite(model(name, model.prepare(name, batch, g, 0)).loss)


@pytest.mark.slow
def test_round_trip_full_size_layout(tmp_path):
    sd = _random_original(_section(1))
    from hero.presets import ROBERTA_TOKENS
    from hero.tasks import PretrainConfig, PretrainModel

    cfg = infer_model_config(sd)
    assert (cfg.hidden_size, cfg.num_heads, cfg.cross_layers, cfg.temporal_layers) == (768, 12, 6, 3)
    model = PretrainModel(cfg, PretrainConfig(), ROBERTA_TOKENS)
    report = import_original(model, sd)
    assert report.unmapped == [] and report.missing == []
    n_params = sum(p.numel() for p in model.parameters())
    # 121,037,262 in the original (tied decoder counted once), less its two unused poolers (768*768 + 768 each)
    # and the zero padding rows of its two mask tables (4352 each), which our single mask vectors leave out.
    assert n_params == 121_037_262 - 2 * (768 * 768 + 768) - 2 * 4352
