"""Video captioning: TVC (docs/hero-fidelity.md c.5).

The encoder reads the whole video; the memory is the frame states of the captioned moment
``[floor(t0/clip), max(round(t1/clip), st+1))``. A 2-layer post-LN decoder (masked self-attention, cross-
attention to the memory, FFN, each followed by add & LayerNorm) reads the encoder's word embeddings (shared)
+ its own positions -> LayerNorm, and predicts through an MLM-style head tied to the word embeddings.
Teacher forcing ``[CLS] + caption -> caption + [SEP]`` with label smoothing. Decoding (greedy or beam, see
hero/tasks/caption_decoding.py) caches each layer's self-attention keys/values and, once, the cross-attention
keys/values of the memory.

Initialisation from pretraining: a checkpoint whose mix had the decoder objective (``dec``, hero/tasks/dec.py)
holds a decoder of this head's layout as ``heads.dec``; the whole head (positions, layers, output layer) starts
from it. Without one (HERO's objectives only), the decoder starts from scratch and its output layer from the MLM
head, as before. ``task.decoder_init`` and a log line say which tensors loaded.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hero.config import ConfigError
from hero.data.batch import VideoBatch
from hero.data.task_collate import collate_videos, moment_frames, pad_token_lists, unique_videos
from hero.metrics import scoring
from hero.metrics.captioning import CaptionEvalConfig
from hero.metrics.formats import CaptionPrediction, write_captions
from hero.model.config import ModelConfig
from hero.model.linear import Linear
from hero.tasks.base import TaskOutput
from hero.tasks.downstream import DownstreamTask, PretrainedKeyError
from hero.tasks.prediction import PredictContext, PredictOptions, Written
from hero.tasks.registry import register_task
from hero.tasks.mlm import MlmHead
from hero.text.tokenizer import SpecialTokens

log = logging.getLogger(__name__)

LayerCache = dict[str, Tensor]  # "k", "v": [N, h, t, hd] self-attention so far; "mk", "mv": [N, h, S, hd] memory


@dataclass(frozen=True, kw_only=True)
class CaptioningConfig:
    """Defaults: HERO's TVC config (decoder 2 layers, 1024 positions, label smoothing 0.1, max 30 steps)."""

    decoder_layers: int = 2
    """Layers of the caption decoder (HERO: 2)."""
    max_positions: int = 1024
    """Rows of the decoder's position table; bounds ``max_caption_len`` and ``max_decode_len`` (HERO: 1024)."""
    label_smoothing: float = 0.1
    """Label smoothing of the caption cross-entropy (HERO: 0.1)."""
    max_caption_len: int = 60
    """Caption tokens kept for teacher forcing (the special token included)."""
    max_decode_len: int = 30
    """Most tokens generated per caption at prediction (HERO: 30); ``evaluate.options.<dataset>.max_decode_len``
    overrides it."""
    beam_size: int = 1
    """1 = greedy (HERO); > 1 = beam search."""
    length_penalty: float = 0.0
    """Beam hypotheses are ranked by sum(log p) / length ** length_penalty."""

    def __post_init__(self) -> None:
        def check(cond: bool, key: str, msg: str) -> None:
            if not cond:
                raise ConfigError(f"{key}: {msg}")

        check(self.decoder_layers >= 1, "decoder_layers", f"must be >= 1, got {self.decoder_layers}")
        check(0.0 <= self.label_smoothing < 1.0, "label_smoothing", f"must be in [0, 1), got {self.label_smoothing}")
        check(2 <= self.max_caption_len <= self.max_positions, "max_caption_len", "must be in [2, max_positions]")
        check(1 <= self.max_decode_len < self.max_positions, "max_decode_len", "must be in [1, max_positions)")
        check(self.beam_size >= 1, "beam_size", f"must be >= 1, got {self.beam_size}")
        check(self.length_penalty >= 0, "length_penalty", f"must be >= 0, got {self.length_penalty}")


@dataclass(frozen=True)
class CaptioningInputs:
    """batch: V distinct videos; per caption (N rows): caption_video [N] in 0..V-1; moment_start, moment_end:
    [N] memory frames [start, end); caption_in [N, L] ``[CLS] + caption``; caption_out [N, L] ``caption + [SEP]``,
    -1 at padding (both None at inference)."""

    batch: VideoBatch
    caption_video: Tensor
    moment_start: Tensor
    moment_end: Tensor
    caption_in: Tensor | None = None
    caption_out: Tensor | None = None


def collate_captioning(examples: Sequence[Mapping], tokens: SpecialTokens, cfg: CaptioningConfig, *, clip_len: float,
                       max_frames: int | None = None) -> CaptioningInputs:
    """Examples ``{"video": video example, "ts": (t0, t1), "caption_ids": [...] or absent}`` (ids without
    special tokens) -> inputs; a clip with several reference captions is one example per caption. ``clip_len``:
    the corpus's seconds per frame feature (the moment's unit)."""
    videos, cv = unique_videos([e["video"] for e in examples])
    batch = collate_videos(videos, tokens, max_frames)
    n = batch.frame_mask.sum(1).tolist()
    spans = [moment_frames(e["ts"], int(n[int(v)]), clip_len) for e, v in zip(examples, cv)]
    cap_in = cap_out = None
    if all(e.get("caption_ids") is not None for e in examples):
        caps = [list(e["caption_ids"])[: cfg.max_caption_len - 1] for e in examples]
        cap_in, mask = pad_token_lists([[tokens.cls, *c] for c in caps], tokens.pad)
        cap_out, _ = pad_token_lists([[*c, tokens.sep] for c in caps], tokens.pad)
        cap_out = cap_out.masked_fill(~mask, -1)
    return CaptioningInputs(batch=batch, caption_video=cv, moment_start=torch.tensor([s for s, _ in spans]),
                            moment_end=torch.tensor([e for _, e in spans]), caption_in=cap_in, caption_out=cap_out)


class DecoderAttention(nn.Module):
    """Multi-head attention through SDPA; separate Q and K/V projections so keys/values can be cached."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.h = cfg.num_heads
        self.q = Linear(cfg.hidden_size, cfg.hidden_size)
        self.kv = Linear(cfg.hidden_size, 2 * cfg.hidden_size)
        self.out = Linear(cfg.hidden_size, cfg.hidden_size)
        self.dropout = cfg.attention_dropout

    def heads(self, x: Tensor) -> Tensor:
        """[N, L, D] -> [N, h, L, D/h]."""
        return x.view(*x.shape[:2], self.h, -1).transpose(1, 2)

    def keys_values(self, x: Tensor) -> tuple[Tensor, Tensor]:
        k, v = self.kv(x).chunk(2, dim=-1)
        return self.heads(k), self.heads(v)

    def attend(self, x: Tensor, k: Tensor, v: Tensor, mask: Tensor) -> Tensor:
        """x: [N, L, D] queries; k, v: [N, h, S, hd]; mask: bool, broadcastable to [N, h, L, S]."""
        y = F.scaled_dot_product_attention(self.heads(self.q(x)), k, v, attn_mask=mask,
                                           dropout_p=self.dropout if self.training else 0.0)
        return self.out(y.transpose(1, 2).flatten(2))


class DecoderLayer(nn.Module):
    """Post-LN: x = LN(x + self_attn(x)); x = LN(x + cross_attn(x, memory)); x = LN(x + FFN(x))."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.self_attn, self.cross_attn = DecoderAttention(cfg), DecoderAttention(cfg)
        self.fc1 = Linear(cfg.hidden_size, cfg.intermediate_size)
        self.fc2 = Linear(cfg.intermediate_size, cfg.hidden_size)
        self.norms = nn.ModuleList(nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps) for _ in range(3))
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: Tensor, cache: LayerCache, causal: Tensor, memory_mask: Tensor) -> Tensor:
        """x: [N, L, D] new positions; cache holds the memory's "mk"/"mv" and, when decoding step by step,
        past "k"/"v" (extended in place); causal: [L, P + L] bool; memory_mask: [N, 1, 1, S] bool."""
        k, v = self.self_attn.keys_values(x)
        if "k" in cache:                                                           # step-by-step decoding
            k, v = torch.cat([cache["k"], k], 2), torch.cat([cache["v"], v], 2)
        cache["k"], cache["v"] = k, v
        x = self.norms[0](x + self.drop(self.self_attn.attend(x, k, v, causal)))
        x = self.norms[1](x + self.drop(self.cross_attn.attend(x, cache["mk"], cache["mv"], memory_mask)))
        return self.norms[2](x + self.drop(self.fc2(F.gelu(self.fc1(x)))))


class CaptionHead(nn.Module):
    """Decoder positions + LayerNorm, the decoder layers, and the tied output head (``lm``, an `MlmHead`)."""

    def __init__(self, cfg: ModelConfig, task_cfg: CaptioningConfig) -> None:
        super().__init__()
        self.position = nn.Embedding(task_cfg.max_positions, cfg.hidden_size)
        self.norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.embedding_norm_eps)
        self.layers = nn.ModuleList(DecoderLayer(cfg) for _ in range(task_cfg.decoder_layers))
        self.lm = MlmHead(cfg)

    def memory_cache(self, memory: Tensor) -> list[LayerCache]:
        """Cross-attention keys/values of the memory [N, S, D], once per layer."""
        return [dict(zip(("mk", "mv"), layer.cross_attn.keys_values(memory))) for layer in self.layers]

    def forward(self, ids: Tensor, word: Tensor, memory: Tensor | None, memory_mask: Tensor,
                cache: list[LayerCache] | None = None, past: int = 0, last_only: bool = False) -> Tensor:
        """ids: [N, L] tokens at positions past..past+L-1; word: [V_padded, D] shared word embeddings;
        memory: [N, S, D] (None when ``cache`` already holds its keys/values); memory_mask: [N, S] bool.
        returns logits [N, L, vocab_size] ([N, 1, vocab_size] with ``last_only``: decoding)."""
        N, L = ids.shape
        pos = torch.arange(past, past + L, device=ids.device)
        x = self.norm(F.embedding(ids, word) + self.position(pos))
        causal = torch.arange(past + L, device=ids.device)[None, :] <= pos[:, None]           # [L, P + L]
        caches = cache if cache is not None else self.memory_cache(memory)        # uncached: recomputed every call
        for layer, c in zip(self.layers, caches):
            x = layer(x, c, causal, memory_mask[:, None, None, :])
        if last_only:
            x = x[:, -1:]
        return self.lm(x.flatten(0, 1), word).view(N, x.shape[1], -1)


@dataclass
class DecoderInitReport:
    """Where the caption head came from when finetuning started from a pretraining checkpoint."""

    source: str                                         # "heads.dec" (a pretrained decoder) or "heads.mlm"
    loaded: list[str] = field(default_factory=list)     # own head keys filled from the checkpoint
    new: list[str] = field(default_factory=list)        # own head keys left at their random initialisation


def caption_loss(logits: Tensor, targets: Tensor, label_smoothing: float) -> Tensor:
    """Token cross-entropy with label smoothing; targets -1 are padding. logits: [N, L, V]; targets: [N, L]."""
    return F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), ignore_index=-1,
                           label_smoothing=label_smoothing)


@register_task
class CaptioningTask(DownstreamTask):
    name = "captioning"
    config_cls = CaptioningConfig
    collate = staticmethod(collate_captioning)
    datasets = {"tvc": "tvc"}
    headlines = ("cider",)
    PRETRAINED = {"encoder.": "encoder.", "heads.mlm.": "head.lm."}
    PRETRAINED_DECODER = {"encoder.": "encoder.", "heads.dec.": "head."}
    """The mapping when the checkpoint holds a pretrained decoder (``heads.dec``, the same module as ``head``)."""

    def __init__(self, model_cfg: ModelConfig, cfg: CaptioningConfig, tokens: SpecialTokens) -> None:
        super().__init__(model_cfg, cfg, tokens)
        self.head = CaptionHead(model_cfg, cfg)
        self._init_head()
        self.decoder_init: DecoderInitReport | None = None
        """Set when weights come from a pretraining checkpoint: which head tensors loaded."""

    def pretrained_mapping(self, state: Mapping[str, Tensor]) -> dict[str, str]:
        return self.PRETRAINED_DECODER if _has_decoder(state) else self.PRETRAINED

    def load_pretrained_state(self, state: Mapping[str, Tensor], fresh: Sequence[str] = ()) -> list[str]:
        """As `DownstreamTask.load_pretrained_state`, the decoder too when the checkpoint has one; a decoder of
        another shape is refused, naming both settings. Logs and keeps (``decoder_init``) what the head got."""
        if _has_decoder(state):
            self._check_decoder_shape(state)
        missing = super().load_pretrained_state(state, fresh)
        head = [k for k in self.state_dict() if k.startswith("head.")]
        gone = set(missing)
        self.decoder_init = DecoderInitReport(source="heads.dec" if _has_decoder(state) else "heads.mlm",
                                              loaded=[k for k in head if k not in gone],
                                              new=[k for k in head if k in gone])
        r = self.decoder_init
        if r.source == "heads.dec":
            log.info("captioning: decoder from the pretraining checkpoint (heads.dec -> head): %d tensors loaded, "
                     "%d new", len(r.loaded), len(r.new))
        else:
            log.info("captioning: the checkpoint has no pretrained decoder (heads.dec): %d head tensors loaded "
                     "(the output layer, from heads.mlm), %d start from scratch", len(r.loaded), len(r.new))
        return missing

    def _check_decoder_shape(self, state: Mapping[str, Tensor]) -> None:
        layers = {int(m.group(1)) for k in state if (m := re.match(r"heads\.dec\.layers\.(\d+)\.", k))}
        positions = state["heads.dec.position.weight"].shape[0] if "heads.dec.position.weight" in state else None
        if len(layers) != self.cfg.decoder_layers or positions != self.cfg.max_positions:
            raise PretrainedKeyError(
                f"finetune.decoder_layers / finetune.max_positions: the checkpoint's decoder (heads.dec) has "
                f"{len(layers)} layers and {positions} positions, the task's {self.cfg.decoder_layers} and "
                f"{self.cfg.max_positions}; set them to the pretraining's pretrain.dec values")

    @property
    def word(self) -> Tensor:
        return self.encoder.text_embed.word.weight

    def encode_memory(self, inputs: CaptioningInputs) -> tuple[Tensor, Tensor]:
        """Moment frame states per caption: memory [N, T, D] and its mask [N, T] (the moment's valid frames)."""
        out = self.encoder(inputs.batch)
        t = torch.arange(out.frame_states.shape[1], device=out.frame_states.device)
        mask = ((t[None] >= inputs.moment_start[:, None]) & (t[None] < inputs.moment_end[:, None])
                & out.frame_mask[inputs.caption_video])
        return out.frame_states[inputs.caption_video], mask

    def forward(self, inputs: CaptioningInputs) -> TaskOutput:
        if inputs.caption_in is None:
            raise ValueError("captioning: training inputs need caption_in / caption_out")
        memory, mask = self.encode_memory(inputs)
        logits = self.head(inputs.caption_in, self.word, memory, mask)
        loss = caption_loss(logits, inputs.caption_out, self.cfg.label_smoothing)
        valid = inputs.caption_out >= 0
        acc = (logits.argmax(-1) == inputs.caption_out)[valid].float().mean()
        return TaskOutput(loss=loss, metrics={"captioning/loss": loss.detach(), "captioning/token_acc": acc.detach()},
                          count=int(valid.sum()))

    @torch.no_grad()
    def predict(self, inputs: CaptioningInputs, *, beam_size: int | None = None, max_len: int | None = None,
                length_penalty: float | None = None, use_cache: bool = True) -> list[list[int]]:
        """Caption token ids per row (no special tokens; decode them with the tokenizer)."""
        from hero.tasks.caption_decoding import generate

        memory, mask = self.encode_memory(inputs)
        return generate(self, memory, mask, beam_size=beam_size or self.cfg.beam_size,
                        max_len=max_len or self.cfg.max_decode_len,
                        length_penalty=self.cfg.length_penalty if length_penalty is None else length_penalty,
                        use_cache=use_cache)

    def write_predictions(self, ctx: PredictContext) -> Written:
        """One generated caption per clip (token ids -> text with the tokenizer)."""
        opts = ctx.options

        def fn(items, inputs):
            ids = self.predict(inputs, beam_size=opts.beam_size, max_len=opts.max_decode_len)
            return [CaptionPrediction(vid_name=it["vid_name"], clip_id=it["id"], ts=tuple(map(float, it["ts"])),
                                      descs=(ctx.tokenizer.decode(list(t)).strip(),)) for it, t in zip(items, ids)]

        caps = ctx.run(fn)
        write_captions(ctx.out_path, caps)
        return Written(len(caps))

    @classmethod
    def score(cls, predictions: Path, annotations: Path, options: PredictOptions, written: Written) -> dict:
        return scoring.score_captioning(predictions, annotations, options.caption_eval)

    @classmethod
    def scoring_options(cls, metrics: set[str]) -> dict[str, Any]:
        """No METEOR (a ~7-s JVM start per scoring) unless it is read."""
        return {} if "meteor" in metrics else {"caption_eval": CaptionEvalConfig(meteor=False)}

    @classmethod
    def per_example(cls, predictions: Path, annotations: Path, options: PredictOptions,
                    written: Written | None = None) -> dict[str, dict[str, float]]:
        """``cider`` per clip (CIDEr-D x100 with the split's document frequencies)."""
        return scoring.per_example_captioning(predictions, annotations, options.caption_eval)


def _has_decoder(state: Mapping[str, Tensor]) -> bool:
    """Whether a pretraining state dict holds a caption decoder (its mix had the ``dec`` objective)."""
    return any(k.startswith("heads.dec.") for k in state)
