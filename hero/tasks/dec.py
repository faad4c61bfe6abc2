"""Decoder pretraining for captioning (``dec``; beyond the original HERO, docs/hero-fidelity.md b.6).

UniVL-style generation on unlabeled video: a few subtitles per video (with text and aligned frames) are chosen,
their tokens removed from the encoder's input (each keeps only its separator token over its frames, as VSM blanks
its queries), and a caption decoder generates each one by teacher forcing from the temporal-level frame states of
the clip around it: the subtitle's aligned frames and ``pretrain.dec.context_frames`` frames on each side.

What the encoder sees: every other subtitle stays visible, the neighbours of a hidden one included. TVC
finetuning reads all subtitles too, so the encoder's input stays close to what it will see there; only the
target's own tokens would let the decoder copy instead of generate, and those are gone from every path into the
encoder (the cross-modal sequence of a subtitle is its frames and its own tokens; the flat encoder's text row is
built from the subtitle mask). A test changes a hidden subtitle's tokens and checks the memory does not move.

The head is the TVC decoder (`hero.tasks.captioning.CaptionHead`: positions, post-LN layers, its own tied LM
output layer), held as ``heads.dec``; TVC finetuning from a checkpoint that has it loads it as its ``head``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
from torch import Tensor

from hero.data.batch import VideoBatch
from hero.data.masking import sample_queries
from hero.data.task_collate import pad_token_lists
from hero.tasks.base import TaskOutput, nothing_to_score
from hero.tasks.captioning import CaptionHead, caption_loss
from hero.tasks.config import PretrainConfig
from hero.text.tokenizer import SpecialTokens


@dataclass(frozen=True)
class DecInputs:
    """batch: the context, the target subtitles blanked to their separator token; per target (N rows): rows [N]
    its subtitle (row of the batch's sub_ids), caption_video [N] its video; memory_start, memory_end [N] the memory's frames [start, end); caption_in [N, L]
    ``[CLS] + subtitle``; caption_out [N, L] ``subtitle + [SEP]``, -1 at padding."""

    batch: VideoBatch
    rows: Tensor
    caption_video: Tensor
    memory_start: Tensor
    memory_end: Tensor
    caption_in: Tensor
    caption_out: Tensor
    skipped_videos: int = 0  # videos with no subtitle to generate (no text or no aligned frame)


def hide_subtitles(batch: VideoBatch, rows: Tensor, pad: int) -> VideoBatch:
    """``batch`` with the subtitles ``rows`` reduced to their separator token (position 0): their frames stay."""
    mask = batch.sub_mask.clone()
    mask[rows, 1:] = False
    return batch.replace(sub_ids=batch.sub_ids.masked_fill(~mask, pad), sub_mask=mask)


def memory_span(batch: VideoBatch, rows: Tensor, context: int) -> tuple[Tensor, Tensor]:
    """Frames [start, end) of each subtitle ``rows``' clip: its aligned frames widened by ``context`` on each
    side, inside its video's real frames."""
    frames = batch.sub_frames[rows]                                               # [N, F], -1 = none
    first = frames.masked_fill(frames < 0, 1 << 30).amin(1)
    last = frames.amax(1)
    n = batch.frame_mask.sum(1)[batch.sub_video[rows]]
    return (first - context).clamp(min=0), torch.minimum(last + 1 + context, n)


class Dec:
    """Generate hidden subtitles from the video around them (token cross-entropy, teacher forcing)."""

    name = "dec"
    head = "dec"

    def __init__(self, cfg: PretrainConfig, tokens: SpecialTokens) -> None:
        self.cfg = cfg.dec
        self.tokens = tokens
        # the TVC decoder's layout (its config's decoder_layers / max_positions), built from the model config
        self.head_cls = functools.partial(CaptionHead, task_cfg=self.cfg)

    def prepare(self, batch: VideoBatch, generator: torch.Generator, step: int) -> DecInputs:
        usable = (batch.sub_frames >= 0).any(1) & batch.sub_mask[:, 1:].any(1)   # text and frames
        rows = sample_queries(batch.sub_video, usable, batch.num_videos, per_video=self.cfg.captions_per_video,
                              generator=generator)
        rows = torch.unique_consecutive(rows)  # sample_queries pads by repeating; each subtitle is one target
        caps = [batch.sub_ids[r, 1:][batch.sub_mask[r, 1:]].tolist()[: self.cfg.max_caption_len - 1]
                for r in rows.tolist()]
        if caps:
            cap_in, mask = pad_token_lists([[self.tokens.cls, *c] for c in caps], self.tokens.pad)
            cap_out, _ = pad_token_lists([[*c, self.tokens.sep] for c in caps], self.tokens.pad)
            cap_out = cap_out.masked_fill(~mask, -1)
        else:
            cap_in = cap_out = torch.zeros(0, 2, dtype=torch.long)
        start, end = memory_span(batch, rows, self.cfg.context_frames)
        video = batch.sub_video[rows]
        return DecInputs(batch=hide_subtitles(batch, rows, self.tokens.pad), rows=rows, caption_video=video,
                         memory_start=start, memory_end=end, caption_in=cap_in, caption_out=cap_out,
                         skipped_videos=batch.num_videos - len(video.unique()))

    @staticmethod
    def memory(encoder, inputs: DecInputs) -> tuple[Tensor, Tensor]:
        """The decoder's memory per target: frame states [N, T, D] of its video and their mask [N, T] (the clip)."""
        out = encoder(inputs.batch)
        t = torch.arange(out.frame_states.shape[1], device=out.frame_states.device)
        mask = ((t[None] >= inputs.memory_start[:, None]) & (t[None] < inputs.memory_end[:, None])
                & out.frame_mask[inputs.caption_video])
        return out.frame_states[inputs.caption_video], mask

    def __call__(self, encoder, head: CaptionHead, inputs: DecInputs) -> TaskOutput:
        counters = {"dec/skipped_videos": inputs.skipped_videos}
        valid = inputs.caption_out >= 0
        if not valid.any():
            return TaskOutput(loss=nothing_to_score(head), count=0, counters=counters)
        memory, mask = self.memory(encoder, inputs)
        logits = head(inputs.caption_in, encoder.word_embeddings(), memory, mask)
        loss = caption_loss(logits, inputs.caption_out, self.cfg.label_smoothing)
        acc = (logits.argmax(-1) == inputs.caption_out)[valid].float().mean()
        return TaskOutput(loss=loss, metrics={"dec/loss": loss.detach(), "dec/token_acc": acc.detach()},
                          count=int(valid.sum()), counters=counters)
