"""Import (and export) state dicts in the original HERO release's layout (docs/hero-fidelity.md f).

The original `HeroForPretraining` names its tensors `v_encoder.f_encoder.…` (cross-modal),
`v_encoder.c_encoder.…` (temporal), `q_feat_attn.…` (query encoder) and so on, with separate Q/K/V
projections. `import_original` maps every tensor onto a `PretrainModel` (sizes inferred from the tensors,
quirks switched on with `compat: original`) and reports each key it could not map, by name.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from hero.config import to_dict
from hero.model.config import ModelConfig, original_compat
from hero.presets import ROBERTA_TOKENS
from hero.tasks import PretrainConfig, PretrainModel

log = logging.getLogger(__name__)

# Tensors the original computes but never uses, or keeps as derived constants: listed, not mapped.
KNOWN_UNUSED = (
    re.compile(r"^v_encoder\.(f_encoder\.)?pad$"),                   # padding rows for fp16 alignment
    re.compile(r"^v_encoder\.[fc]_encoder\.pooler\.dense\.(weight|bias)$"),  # BertPooler: computed, unused
    re.compile(r"^v_encoder\.f_encoder\.lm_head\.decoder\.weight$"),  # tied to the word embeddings
)

_LAYER = {  # BERT layer names -> ours (query/key/value are fused into attn.qkv separately)
    "attention.output.dense": "attn.out",
    "attention.output.LayerNorm": "attn_norm",
    "intermediate.dense": "mlp.fc1",
    "output.dense": "mlp.fc2",
    "output.LayerNorm": "mlp_norm",
}

_FIXED = {  # original prefix -> our prefix (each followed by .weight / .bias)
    "v_encoder.f_encoder.embeddings.word_embeddings": "encoder.text_embed.word",
    "v_encoder.f_encoder.embeddings.position_embeddings": "encoder.text_embed.position",
    "v_encoder.f_encoder.embeddings.token_type_embeddings": "encoder.text_embed.token_type",
    "v_encoder.f_encoder.embeddings.LayerNorm": "encoder.text_embed.norm",
    "v_encoder.f_encoder.img_embeddings.img_LayerNorm": "encoder.frame_embed.feat_norm",
    "v_encoder.f_encoder.img_embeddings.img_linear": "encoder.frame_embed.proj",
    "v_encoder.f_encoder.img_embeddings.position_embeddings": "encoder.frame_embed.position",
    "v_encoder.f_encoder.img_embeddings.LayerNorm": "encoder.frame_embed.norm",
    "v_encoder.frame_transform.LayerNorm": "encoder.frame_residual.norm",
    "v_encoder.frame_transform.net.1": "encoder.frame_residual.proj",
    "v_encoder.c_encoder.embeddings.position_embeddings": "encoder.temporal_embed.position",
    "v_encoder.c_encoder.embeddings.LayerNorm": "encoder.temporal_embed.norm",
    "v_encoder.f_encoder.lm_head.dense": "heads.mlm.dense",
    "v_encoder.f_encoder.lm_head.LayerNorm": "heads.mlm.norm",
    "v_encoder.feat_regress.net.0": "heads.mfm.fc1",
    "v_encoder.feat_regress.net.2": "heads.mfm.norm",
    "v_encoder.feat_regress.net.3": "heads.mfm.fc2",
    "v_encoder.fom_output.linear_1": "heads.fom.fc1",
    "v_encoder.fom_output.LayerNorm": "heads.fom.norm",
    "v_encoder.fom_output.linear_2": "heads.fom.fc2",
    "video_query_linear": "heads.vsm.query_linear",
    "video_st_predictor": "heads.vsm.start_conv",
    "video_ed_predictor": "heads.vsm.end_conv",
    "q_feat_attn.query_input_proj.LayerNorm": "heads.vsm.query_encoder.in_norm",
    "q_feat_attn.query_input_proj.net.1": "heads.vsm.query_encoder.in_proj",
    "q_feat_attn.query_pos_embed.position_embeddings": "heads.vsm.query_encoder.position.position",
    "q_feat_attn.query_pos_embed.LayerNorm": "heads.vsm.query_encoder.position.norm",
    "q_feat_attn.query_self_attention.output.dense": "heads.vsm.query_encoder.layers.0.attn.out",
    "q_feat_attn.query_self_attention.output.LayerNorm": "heads.vsm.query_encoder.layers.0.norm",
    "q_feat_attn.modular_vector_mapping": "heads.vsm.query_encoder.pool",
}
# The original's 2-row MFM mask tables -> (row 1: our mask vector, row 0: our unmasked vector). Row 0 is the
# `padding_idx` row, yet not zero: the cross-modal table's is random (init_weights overwrites it; no gradient
# reaches it) and the original adds it to every frame MFM leaves unmasked. `compat: original` models keep it as a
# buffer; a native model has no place for it, so a non-zero row 0 is refused (`import_original`).
_ROWS = {
    "v_encoder.f_encoder.img_embeddings.mask_embedding.weight": ("encoder.frame_embed.mask_vector",
                                                                 "encoder.frame_embed.unmasked_vector"),
    "v_encoder.mask_embedding.weight": ("encoder.clip_mask_vector", "encoder.clip_unmasked_vector"),
}
_QKV = {  # original attention prefix (+ .query/.key/.value) -> our fused projection
    "q_feat_attn.query_self_attention.self": "heads.vsm.query_encoder.layers.0.attn.qkv",
}
_LM_BIAS = ("v_encoder.f_encoder.lm_head.bias", "heads.mlm.bias")


@dataclass
class ImportReport:
    """What the import did with each key of the original state dict."""

    mapped: list[str] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)
    """Known-unused tensors of the original (poolers, pad buffers, the tied decoder copy)."""
    unmapped: list[str] = field(default_factory=list)
    """Keys with no place in our model: reported by name, never silently dropped."""
    missing: list[str] = field(default_factory=list)
    """Our tensors the file did not provide (left at their initialisation)."""


def _layer_rules(n_cross: int, n_temp: int) -> tuple[dict[str, str], dict[str, str]]:
    fixed, qkv = dict(_FIXED), dict(_QKV)
    for src, dst, n in (("v_encoder.f_encoder.encoder.layer", "encoder.cross.layers", n_cross),
                        ("v_encoder.c_encoder.encoder.layer", "encoder.temporal.layers", n_temp)):
        for i in range(n):
            for a, b in _LAYER.items():
                fixed[f"{src}.{i}.{a}"] = f"{dst}.{i}.{b}"
            qkv[f"{src}.{i}.attention.self"] = f"{dst}.{i}.attn.qkv"
    return fixed, qkv


def infer_model_config(sd: Mapping[str, Tensor], *, vocab_size: int | None = None, num_heads: int | None = None) -> ModelConfig:
    """The `compat: original` ModelConfig whose shapes match an original-layout state dict.

    Head count cannot be read from tensors: HERO uses 64-d heads, so ``hidden // 64`` unless given.
    The true vocabulary (before padding to a multiple of 8) defaults to RoBERTa's 50265 when the table
    has the padded 50272 rows and ``vocab_padded`` is set, otherwise to the table's row count.
    """
    def count_layers(prefix: str) -> int:
        idx = {int(m.group(1)) for k in sd if (m := re.match(re.escape(prefix) + r"\.(\d+)\.", k))}
        return max(idx) + 1 if idx else 0

    word = sd["v_encoder.f_encoder.embeddings.word_embeddings.weight"]
    rows, hidden = word.shape
    if vocab_size is None:
        vocab_size = 50265 if (rows == 50272 and bool(sd.get("vocab_padded", False))) else rows
    cfg = dict(
        hidden_size=hidden,
        num_heads=num_heads or max(1, hidden // 64),
        intermediate_size=sd["v_encoder.f_encoder.encoder.layer.0.intermediate.dense.weight"].shape[0],
        cross_layers=count_layers("v_encoder.f_encoder.encoder.layer"),
        temporal_layers=count_layers("v_encoder.c_encoder.encoder.layer"),
        vocab_size=vocab_size,
        pad_vocab_multiple=8 if rows % 8 == 0 else 1,
        feature_dim=sd["v_encoder.f_encoder.img_embeddings.img_linear.weight"].shape[1],
        max_frames=sd["v_encoder.f_encoder.img_embeddings.position_embeddings.weight"].shape[0],
        max_text_positions=sd["v_encoder.f_encoder.embeddings.position_embeddings.weight"].shape[0],
        type_vocab_size=sd["v_encoder.f_encoder.embeddings.token_type_embeddings.weight"].shape[0],
    )
    cfg = ModelConfig(**original_compat(cfg))
    if cfg.embedding_rows != rows:
        raise ValueError(f"word embeddings have {rows} rows; vocab_size={vocab_size} pads to {cfg.embedding_rows}")
    return cfg


def import_original(model: PretrainModel, sd: Mapping[str, Tensor | bool]) -> ImportReport:
    """Copy an original-layout state dict into ``model`` (a `PretrainModel` of matching shapes), in place."""
    cfg: ModelConfig = model.model_cfg
    fixed, qkv = _layer_rules(cfg.cross_layers, cfg.temporal_layers)
    ours = model.state_dict()
    new: dict[str, Tensor] = {}
    report = ImportReport()
    for key, value in sd.items():
        if not isinstance(value, Tensor):
            if key == "vocab_padded":
                report.unused.append(key)
            else:
                report.unmapped.append(key)
            continue
        value = value.float()
        base, _, leaf = key.rpartition(".")
        if any(p.match(key) for p in KNOWN_UNUSED):
            report.unused.append(key)
        elif base in fixed:
            new[f"{fixed[base]}.{leaf}"] = value
            report.mapped.append(key)
        elif key in _ROWS:
            masked_dst, unmasked_dst = _ROWS[key]
            new[masked_dst] = value[1]
            if unmasked_dst in ours:
                new[unmasked_dst] = value[0]
            elif value[0].any():
                raise ValueError(f"{key}: row 0 is non-zero (max |x| = {value[0].abs().max().item():.3g}) and the "
                                 f"original adds it to every unmasked frame in MFM; a compat: native model has no "
                                 f"place for it. Import into a compat: original model (infer_model_config).")
            report.mapped.append(key)
        elif key == _LM_BIAS[0]:
            new[_LM_BIAS[1]] = value
            report.mapped.append(key)
        elif base.rpartition(".")[0] in qkv and base.rpartition(".")[2] in ("query", "key", "value"):
            report.mapped.append(key)  # fused below, once all three parts are present
        else:
            report.unmapped.append(key)
    for src, dst in qkv.items():
        for leaf in ("weight", "bias"):
            parts = [sd.get(f"{src}.{p}.{leaf}") for p in ("query", "key", "value")]
            if all(isinstance(p, Tensor) for p in parts):
                new[f"{dst}.{leaf}"] = torch.cat([p.float() for p in parts], 0)
    for key, value in new.items():
        if key not in ours:
            raise KeyError(f"{key}: mapped from the original but absent from the model (cross_layers/temporal_layers?)")
        if ours[key].shape != value.shape:
            raise ValueError(f"{key}: shape {tuple(value.shape)} in the file, {tuple(ours[key].shape)} in the model")
    report.missing = sorted(k for k in ours if k not in new)
    model.load_state_dict({**ours, **new})
    if report.unmapped:
        log.warning("original checkpoint: %d unmapped keys: %s", len(report.unmapped), ", ".join(report.unmapped))
    return report


def export_original(model: PretrainModel) -> dict[str, Tensor | bool]:
    """Our `PretrainModel` weights in the original layout (poolers omitted: the original loads non-strictly)."""
    cfg: ModelConfig = model.model_cfg
    fixed, qkv = _layer_rules(cfg.cross_layers, cfg.temporal_layers)
    ours = model.state_dict()
    out: dict[str, Tensor | bool] = {}
    for src, dst in fixed.items():
        for leaf in ("weight", "bias"):
            if f"{dst}.{leaf}" in ours:
                out[f"{src}.{leaf}"] = ours[f"{dst}.{leaf}"].clone()
    for src, (masked_dst, unmasked_dst) in _ROWS.items():
        out[src] = torch.stack([ours.get(unmasked_dst, torch.zeros_like(ours[masked_dst])), ours[masked_dst]])
    out[_LM_BIAS[0]] = ours[_LM_BIAS[1]].clone()
    out["v_encoder.f_encoder.lm_head.decoder.weight"] = ours["encoder.text_embed.word.weight"].clone()
    for src, dst in qkv.items():
        for leaf in ("weight", "bias"):
            for name, part in zip(("query", "key", "value"), ours[f"{dst}.{leaf}"].chunk(3, 0)):
                out[f"{src}.{name}.{leaf}"] = part.clone()
    out["v_encoder.pad"] = torch.zeros(8, cfg.hidden_size)
    out["v_encoder.f_encoder.pad"] = torch.zeros(8, cfg.hidden_size)
    out["vocab_padded"] = cfg.embedding_rows != cfg.vocab_size
    return out


def load_original_checkpoint(path: str | Path, *, vocab_size: int | None = None, num_heads: int | None = None):
    """Build a `PretrainModel` from an original `.pt` file (read with ``weights_only=True``: no arbitrary
    unpickling). Returns (model, report)."""
    sd = torch.load(Path(path), map_location="cpu", weights_only=True)
    if not isinstance(sd, Mapping):
        raise ValueError(f"{path}: expected a state dict, got {type(sd).__name__}")
    if "model" in sd and isinstance(sd["model"], Mapping):
        sd = sd["model"]
    cfg = infer_model_config(sd, vocab_size=vocab_size, num_heads=num_heads)
    model = PretrainModel(cfg, PretrainConfig(nce_padded_negatives=True), ROBERTA_TOKENS)
    report = import_original(model, sd)
    log.info("imported %s: %d tensors mapped, %d known-unused, %d unmapped; model %s", path, len(report.mapped),
             len(report.unused), len(report.unmapped), to_dict(cfg))
    return model, report
