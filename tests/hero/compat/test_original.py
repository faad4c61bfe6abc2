"""Import of state dicts in the original HERO release's layout (key list: fixtures/, from docs/hero-fidelity.md f)."""

import re
from pathlib import Path

import pytest
import torch

from hero.compat.original import export_original, import_original, infer_model_config, load_original_checkpoint

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


F_MASK = "v_encoder.f_encoder.img_embeddings.mask_embedding.weight"   # cross-modal MFM mask table
C_MASK = "v_encoder.mask_embedding.weight"                            # clip-level MFM mask table


def _random_original(rows, seed=0):
    """Random tensors in the original layout. Row 0 of the cross-modal mask table is random, as in the
    original (its init overwrites padding_idx); the clip-level table's row 0 is zero (init_type_embedding)."""
    g = torch.Generator().manual_seed(seed)
    sd = {k: torch.randn(shape, generator=g) * 0.02 for k, shape in rows}
    sd[C_MASK][0] = 0
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
    # and the row 0 of its two mask tables (4352 each): never trained there, buffers (not parameters) here.
    assert n_params == 121_037_262 - 2 * (768 * 768 + 768) - 2 * 4352


def _original_mfm_reference(sd, batch, masked, heads=4):
    """The original HERO's MFM forward (HierarchicalVlModel.forward_mfm, eval mode) written from its code and
    state dict, independent of our modules: mask tables looked up as nn.Embedding(mask.long()), one cross-modal
    sequence [frames ; tokens] per subtitle, frame outputs scattered back, frame_transform residual, temporal
    level with the additive mask. Returns (frame states [B, T, D], feat_regress at masked / unmasked frames)."""
    import math

    import torch.nn.functional as F

    def w(name):
        return sd[name + ".weight"], sd[name + ".bias"]

    def ln(x, name, eps):
        return F.layer_norm(x, x.shape[-1:], *w(name), eps=eps)

    def lin(x, name):
        return F.linear(x, *w(name))

    def bert(x, prefix, n_layers, add_mask):                     # x: [N, L, D]; add_mask: [N, 1, 1, L]
        N, L, D = x.shape
        for i in range(n_layers):
            p = f"{prefix}.{i}."

            def split(t):
                return t.view(N, L, heads, D // heads).transpose(1, 2)

            q, k, v = (split(lin(x, p + f"attention.self.{n}")) for n in ("query", "key", "value"))
            att = (q @ k.transpose(-1, -2) / math.sqrt(D // heads) + add_mask).softmax(-1)
            ctx = (att @ v).transpose(1, 2).reshape(N, L, D)
            x = ln(lin(ctx, p + "attention.output.dense") + x, p + "attention.output.LayerNorm", 1e-12)
            h = lin(F.gelu(lin(x, p + "intermediate.dense")), p + "output.dense")
            x = ln(h + x, p + "output.LayerNorm", 1e-12)
        return x

    n_cross = len({k.split(".")[4] for k in sd if k.startswith("v_encoder.f_encoder.encoder.layer.")})
    n_temp = len({k.split(".")[4] for k in sd if k.startswith("v_encoder.c_encoder.encoder.layer.")})
    feats = batch.frame_feats.masked_fill(masked.unsqueeze(-1), 0)          # data/mfm.py _mask_img_feat
    B, T, _ = feats.shape
    f_in = feats + F.embedding(masked.long(), sd[F_MASK])                 # ImageEmbeddings: + mask_embedding
    c_in = feats + F.embedding(masked.long(), sd[C_MASK])                 # forward_mfm: + mask_embedding
    emb = "v_encoder.f_encoder.embeddings."
    type_row = sd[emb + "token_type_embeddings.weight"][1]
    matched = torch.zeros(B, T, type_row.shape[0])
    for s in range(batch.num_subs):
        v, frames = int(batch.sub_video[s]), batch.sub_frames[s][batch.sub_frames[s] >= 0]
        ids = batch.sub_ids[s][batch.sub_mask[s]]
        img = lin(ln(f_in[v, frames], "v_encoder.f_encoder.img_embeddings.img_LayerNorm", 1e-5),
                  "v_encoder.f_encoder.img_embeddings.img_linear")
        img = img + sd["v_encoder.f_encoder.img_embeddings.position_embeddings.weight"][:len(frames)] + type_row
        img = ln(img, "v_encoder.f_encoder.img_embeddings.LayerNorm", 1e-5)
        txt = (sd[emb + "word_embeddings.weight"][ids] + sd[emb + "position_embeddings.weight"][:len(ids)]
               + type_row)
        txt = ln(txt, emb + "LayerNorm", 1e-5)
        out = bert(torch.cat([img, txt])[None], "v_encoder.f_encoder.encoder.layer", n_cross, 0.0)[0]
        matched[v, frames] += out[:len(frames)]                           # collect_frame_outputs
    fused = F.relu(lin(ln(c_in, "v_encoder.frame_transform.LayerNorm", 1e-5), "v_encoder.frame_transform.net.1"))
    fused = fused + matched
    x = ln(fused + sd["v_encoder.c_encoder.embeddings.position_embeddings.weight"][:T],
           "v_encoder.c_encoder.embeddings.LayerNorm", 1e-5)
    add_mask = (1.0 - batch.frame_mask.float())[:, None, None, :] * -10000.0
    states = bert(x, "v_encoder.c_encoder.encoder.layer", n_temp, add_mask)

    def regress(h):
        h = ln(F.gelu(lin(h, "v_encoder.feat_regress.net.0")), "v_encoder.feat_regress.net.2", 1e-5)
        return lin(h, "v_encoder.feat_regress.net.3")

    return states, regress(states[masked]), regress(states[~masked])     # negatives include padding (HERO)


def test_mfm_matches_the_original_with_a_nonzero_mask_row_0():
    from hero.data.masking import mask_frames
    from hero.data.random_batch import random_video_batch
    from hero.presets import ROBERTA_TOKENS
    from hero.tasks import PretrainConfig, PretrainModel
    from hero.tasks.mfm import mfm_nce_loss

    sd = _random_original(_section(0))
    g = torch.Generator().manual_seed(1)
    for k in [k for k in sd if "LayerNorm.weight" in k]:                   # realistic scales: LN gains near 1
        sd[k] = 1 + 0.1 * torch.randn(sd[k].shape, generator=g)
    sd[F_MASK][0] = 0.5 * torch.randn(sd[F_MASK].shape[1], generator=g)    # the row the converter used to drop
    sd[C_MASK][0] = 0.5 * torch.randn(sd[C_MASK].shape[1], generator=g)    # non-zero here too, to cover both
    model = PretrainModel(infer_model_config(sd), PretrainConfig(nce_padded_negatives=True), ROBERTA_TOKENS)
    import_original(model, sd)
    model.eval()
    batch = random_video_batch(model.model_cfg, ROBERTA_TOKENS, num_videos=3, generator=g)
    masked = mask_frames(batch.frame_mask, prob=0.3, generator=g)
    with torch.no_grad():
        states_ref, pred_ref, neg_ref = _original_mfm_reference(sd, batch, masked)
        states = model.encoder(batch, frame_masked=masked).frame_states
        pred, neg = model.heads["mfm"](states[masked]), model.heads["mfm"](states[~masked])
        torch.testing.assert_close(states, states_ref, atol=2e-5, rtol=1e-4)
        torch.testing.assert_close(pred, pred_ref, atol=2e-5, rtol=1e-4)
        target = batch.frame_feats[masked]
        logits_ref = torch.cat([pred_ref @ target.t(), pred_ref @ neg_ref.t()], 1)
        logits = torch.cat([pred @ target.t(), pred @ neg.t()], 1)
        torch.testing.assert_close(logits, logits_ref, atol=1e-3, rtol=1e-4)
        inputs = model.prepare("mfm_nce", batch, g, 0)
        inputs = type(inputs)(batch=batch, masked=masked)
        torch.testing.assert_close(model("mfm_nce", inputs).loss, mfm_nce_loss(pred_ref, target, neg_ref))
        # without row 0 (the old conversion) the outputs are far from the original's
        sd_dropped = {**sd, F_MASK: sd[F_MASK].clone(), C_MASK: sd[C_MASK].clone()}
        sd_dropped[F_MASK][0] = sd_dropped[C_MASK][0] = 0
        import_original(model, sd_dropped)
        states_dropped = model.encoder(batch, frame_masked=masked).frame_states
        assert (states_dropped - states_ref).abs().max() > 0.1


def test_native_model_refuses_a_nonzero_mask_row_0_and_takes_a_zero_one():
    import dataclasses

    from hero.presets import ROBERTA_TOKENS
    from hero.tasks import PretrainConfig, PretrainModel

    sd = _random_original(_section(0))
    native = dataclasses.replace(infer_model_config(sd), compat="native")
    model = PretrainModel(native, PretrainConfig(), ROBERTA_TOKENS)
    assert "encoder.frame_embed.unmasked_vector" not in model.state_dict()
    with pytest.raises(ValueError, match="mask_embedding.weight: row 0 is non-zero"):
        import_original(model, sd)
    sd[F_MASK][0] = 0
    assert import_original(model, sd).unmapped == []
    assert export_original(model)[F_MASK][0].abs().max() == 0


def test_checkpoint_without_the_row_0_buffers_loads_with_zeros():
    # compat: original checkpoints written before the buffers existed ran MFM with zero rows
    from hero.presets import ROBERTA_TOKENS
    from hero.tasks import PretrainConfig, PretrainModel

    sd = _random_original(_section(0))
    model = PretrainModel(infer_model_config(sd), PretrainConfig(), ROBERTA_TOKENS)
    import_original(model, sd)
    state = model.state_dict()
    assert state["encoder.frame_embed.unmasked_vector"].abs().max() > 0
    old = {k: v for k, v in state.items() if "unmasked_vector" not in k}
    assert model.load_state_dict(old, strict=True).missing_keys == []
    assert model.encoder.frame_embed.unmasked_vector.abs().max() == 0
    assert model.encoder.clip_unmasked_vector.abs().max() == 0
