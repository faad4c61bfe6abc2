"""The HERO encoder: a Cross-modal Transformer per subtitle, then a Temporal Transformer over the video.

Also the `flat` ablation (F-TRM): one transformer over all frames and all subtitle tokens of a video.
Both return the same `HeroOutput`, so every task head works with either.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from hero.data.batch import VideoBatch
from hero.model.config import ModelConfig
from hero.model.dropout import Dropout
from hero.model.embeddings import (FrameEmbedding, FrameResidual, PositionEmbedding, RegionEmbedding, RowGradEmbedding,
                                   TextEmbedding, add_mask_vectors, fill_missing_buffer)
from hero.model.linear import Linear
from hero.model.transformer import Encoder


@dataclass(frozen=True)
class HeroOutput:
    """Encoder outputs.

    frame_states: [B, T, D]   temporal-level (contextualised) frame embeddings, used by every video head
    frame_mask:   [B, T]      bool, real frames
    text_states:  [S, Lt, D]  subtitle token states at the cross-modal level (``forward(text_states=True)``, else
                              None: the frame outputs alone are computed there)
    fused_frames: [B, T, D]   temporal-level input: cross-modal frame output + feature residual (HERO's
                              `forward_repr(encode_clip=False)`), in the (possibly shuffled) input order
    extra_states: [B, Lx, D]  temporal-level states of the appended text (``forward(extra_text=...)``), else None
    extra_cross_states: [S, Lx, D]  cross-modal states of the appended text in each subtitle's sequence (row s
                              belongs to video ``batch.sub_video[s]``; ``forward(extra_text_states=True)``), else None
    """

    frame_states: Tensor
    frame_mask: Tensor
    text_states: Tensor | None
    fused_frames: Tensor | None = None
    extra_states: Tensor | None = None
    extra_cross_states: Tensor | None = None


def init_weights(module: nn.Module, std: float) -> None:
    """BERT initialisation: normal(0, std) weights, zero biases, unit LayerNorms."""
    if isinstance(module, (nn.Linear, nn.Embedding, nn.Conv1d)):
        nn.init.normal_(module.weight, std=std)
        if getattr(module, "bias", None) is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def use_reference_path(module: nn.Module, reference: bool = True) -> nn.Module:
    """Switch every HERO encoder inside ``module`` to the reference implementation (or back): the cross-modal level
    padded, torch's own dropout, the dense word-embedding gradient, the tied decoder over the whole table with its
    padding columns sliced off, every product at the batch's own row count (no `hero.model.linear` buckets); and
    any other module with a ``reference_path`` attribute (MLM's head: the accuracy by argmax; MFM's head: negatives
    scored in feature space; the frame embedding: autograd's LayerNorm and Linear instead of `norm_project`). Same weights and results up to float rounding and
    dropout draws; the benchmark and the equivalence tests run it side by side with the default."""
    for m in module.modules():
        if isinstance(m, Hero):
            m.packed = not reference
        elif isinstance(m, Dropout):
            m.cheap_mask = not reference
        elif isinstance(m, RowGradEmbedding):
            m.row_grad = not reference
        elif isinstance(m, Linear):
            m.bucket_rows = not reference
        elif hasattr(m, "reference_path"):   # a module above the model with its own reference form (MLM's head)
            m.reference_path = reference
    return module


def gather_clip_frames(feats: Tensor, sub_video: Tensor, sub_frames: Tensor) -> Tensor:
    """Per-subtitle frame inputs from the video timeline.

    feats:      [B, T, ...]
    sub_video:  [S]
    sub_frames: [S, F]  frame index per slot, -1 = empty slot (gathers frame 0; callers mask it)
    returns:    [S, F, ...]
    """
    return feats[sub_video[:, None], sub_frames.clamp(min=0)]


def scatter_clip_frames(states: Tensor, sub_video: Tensor, sub_frames: Tensor, num_videos: int, num_frames: int) -> Tensor:
    """Put per-subtitle frame outputs back on the video timeline (HERO's collect_frame_outputs).

    states:  [S, F, D]  cross-modal outputs at the frame slots
    returns: [B, T, D]  zeros where no subtitle owns the frame (unmatched frames bypass the cross-modal level)
    """
    out = states.new_zeros(num_videos, num_frames, states.shape[-1])
    s_idx, f_idx = (sub_frames >= 0).nonzero(as_tuple=True)
    return out.index_put((sub_video[s_idx], sub_frames[s_idx, f_idx]), states[s_idx, f_idx], accumulate=True)


def _left_aligned_slots(mask: Tensor) -> Tensor:
    """[N, L] bool -> [N, L] long: rank of each valid entry among its row's valid entries (0, 1, ...)."""
    return mask.long().cumsum(1) - 1


class Hero(nn.Module):
    """HERO encoder (hierarchical, or flat when ``cfg.encoder == "flat"``)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.text_embed = TextEmbedding(cfg)
        self.frame_embed = FrameEmbedding(cfg)
        if cfg.encoder == "hierarchical":
            self.cross = Encoder(cfg, cfg.cross_layers)
            self.frame_residual = FrameResidual(cfg)
            self.clip_mask_vector = nn.Parameter(torch.zeros(cfg.feature_dim))
            # row 0 of the original's clip-level mask table: a buffer under compat: original (see FrameEmbedding)
            self.register_buffer("clip_unmasked_vector",
                                 torch.zeros(cfg.feature_dim) if cfg.compat == "original" else None)
            self.temporal_embed = PositionEmbedding(cfg)
            self.temporal = Encoder(cfg, cfg.temporal_layers)
            if cfg.regions:
                self.region_embed = RegionEmbedding(cfg)
        else:
            self.flat = Encoder(cfg, cfg.cross_layers + cfg.temporal_layers)
        self.packed = True
        """Cross-modal level on valid positions only (`Encoder`); False: the padded reference form."""
        self.apply(lambda m: init_weights(m, cfg.init_std))
        nn.init.normal_(self.frame_embed.mask_vector, std=cfg.init_std)
        if cfg.encoder == "hierarchical":
            nn.init.normal_(self.clip_mask_vector, std=cfg.init_std)
        if cfg.regions:
            nn.init.normal_(self.region_embed.type_vector, std=cfg.init_std)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        fill_missing_buffer(self, state_dict, prefix, "clip_unmasked_vector")
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def word_embeddings(self) -> Tensor:
        """The word embedding matrix [rows, D] (MLM's output layer is tied to it)."""
        return self.text_embed.word.weight

    def word_table(self) -> RowGradEmbedding:
        """The word embedding table; MLM's output layer decodes through it (`RowGradEmbedding.decode`)."""
        return self.text_embed.word

    # ------------------------------------------------------------------ text only
    def encode_text(self, ids: Tensor, mask: Tensor) -> Tensor:
        """Text-only pass through the cross-modal (or flat) layers: queries, and MiniLM parity.

        ids, mask: [N, L] -> [N, L, D]
        """
        layers = self.cross if self.cfg.encoder == "hierarchical" else self.flat
        return layers(self.text_embed(ids), mask, packed=self.packed)

    # ------------------------------------------------------------------ hierarchical
    def _frame_type(self) -> Tensor:
        return self.text_embed.token_type.weight[self.cfg.frame_type_id]

    def _cross_modal(self, batch: VideoBatch, feats: Tensor, masked: Tensor | None, sub_ids: Tensor,
                     extra_text: tuple[Tensor, Tensor] | None = None,
                     read: Tensor | str = "all", read_extra: bool = False) -> tuple[Tensor, Tensor, Tensor | None]:
        """One sequence per subtitle: [its frames ; its tokens (; its video's extra text)].
        Returns frame slots [S, F, D], subtitle text [S, Lt, D] and, with ``read_extra``, the extra text [S, Lx, D].

        ``read`` says which outputs the caller uses, so that the packed form computes only those (see
        `Encoder.forward`; the others come back as zeros): "all", "frames", or a [S, Lt] bool of text positions.
        """
        F_ = batch.sub_frames.shape[1]
        frame_valid = batch.sub_frames >= 0                                        # [S, F]
        # Project each video frame once ([B, T, D]), then gather the subtitles' frames: a frame belongs to at
        # most one subtitle, so this is the same math as projecting the gathered copies, with less work.
        projected = self.frame_embed.project(feats, masked)
        frames = gather_clip_frames(projected, batch.sub_video, batch.sub_frames)  # [S, F, D]
        if self.cfg.frame_positions == "local":
            pos = torch.arange(F_, device=feats.device).expand_as(batch.sub_frames)
        else:
            pos = batch.sub_frames.clamp(0, self.cfg.max_frames - 1)
        text, text_valid = self.text_embed(sub_ids), batch.sub_mask
        if extra_text is not None:
            # HERO c.3/c.4: `[SEP] q [SEP] a` continues every subtitle of its video; positions follow the
            # subtitle's own last token, so padding of either part changes nothing.
            x_ids, x_mask = extra_text[0][batch.sub_video], extra_text[1][batch.sub_video]      # [S, Lx]
            x_pos = batch.sub_mask.sum(1, keepdim=True) + _left_aligned_slots(x_mask).clamp(min=0)
            x_pos = (x_pos + self.text_embed.offset).clamp(max=self.cfg.max_text_positions - 1)
            text = torch.cat([text, self.text_embed(x_ids, x_pos)], dim=1)
            text_valid = torch.cat([text_valid, x_mask], dim=1)
        frames = self.frame_embed.finish(frames, pos, self._frame_type())
        if self.cfg.regions:
            frames, frame_valid, slot = self._with_regions(batch, frames, frame_valid, pos, masked)
        else:
            slot = torch.ones_like(frame_valid)
        V = frames.shape[1]                                                        # video slots: F, or F * (1 + R)
        x = torch.cat([frames, text], dim=1)
        valid = torch.cat([frame_valid, text_valid], dim=1)                       # [S, V + Lt (+ Lx)]
        outputs = None
        if isinstance(read, Tensor):
            outputs = torch.zeros_like(valid)
            outputs[:, V:V + read.shape[1]] = read
        elif read == "frames":
            outputs = torch.cat([frame_valid & slot, torch.zeros_like(text_valid)], dim=1)
        Lt = sub_ids.shape[1]
        if read_extra and outputs is not None:
            outputs[:, V + Lt:] = text_valid[:, Lt:]
        # Region tokens are context: every layer's frame and text tokens attend to them, no layer updates them
        # (their cost is keys and values alone: docs/architecture.md, "Region tokens").
        context = torch.cat([~slot, torch.zeros_like(text_valid)], dim=1) if self.cfg.regions else None
        y = self.cross(x, valid, packed=self.packed, outputs=outputs, context=context)
        extra = y[:, V + Lt:] if read_extra and extra_text is not None else None
        return y[:, :V:V // F_], y[:, V:V + Lt], extra

    def _with_regions(self, batch: VideoBatch, frames: Tensor, frame_valid: Tensor, pos: Tensor,
                      masked: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
        """Each frame slot followed by its clip's R region tokens: [S, F, D] -> [S, F * (1 + R), D], with the
        validity [S, F * (1 + R)] and a [S, F * (1 + R)] bool that is True at the frame tokens.

        A region token takes its clip's frame position and the frame token type (`RegionEmbedding`). The regions
        of a frame MFM masks are zeroed and left out of attention: the model must not read the hidden clip from
        its regions.
        """
        if not batch.has_regions:
            raise ValueError("model.regions: the batch has no region features (read the store with regions: "
                             "VideoFeatures(regions=True); the trainer does so when model.regions is true)")
        S, F_, D = frames.shape
        reg, box = batch.region_feats, batch.region_boxes                          # [B, T, R, Dr], [B, T, R, 4]
        R = reg.shape[2]
        region_valid = frame_valid.unsqueeze(-1).expand(S, F_, R)
        if masked is not None:
            reg = reg.masked_fill(masked[:, :, None, None], 0.0)
            hidden = gather_clip_frames(masked, batch.sub_video, batch.sub_frames)  # [S, F]
            region_valid = region_valid & ~hidden.unsqueeze(-1)
        projected = self.region_embed(reg, box)                                    # [B, T, R, D], once per clip
        regions = gather_clip_frames(projected, batch.sub_video, batch.sub_frames)  # [S, F, R, D]
        regions = self.frame_embed.finish(regions.reshape(S, F_ * R, D), pos.repeat_interleave(R, dim=1),
                                          self._frame_type()).view(S, F_, R, D)
        tokens = torch.cat([frames.unsqueeze(2), regions], dim=2).view(S, F_ * (1 + R), D)
        valid = torch.cat([frame_valid.unsqueeze(-1), region_valid], dim=2).view(S, F_ * (1 + R))
        slot = torch.zeros(S, F_, 1 + R, dtype=torch.bool, device=frames.device)
        slot[:, :, 0] = True
        return tokens, valid, slot.view(S, F_ * (1 + R))

    def encode_subtitles(self, batch: VideoBatch, sub_ids: Tensor | None = None, read: Tensor | None = None) -> Tensor:
        """Subtitle token states [S, Lt, D] with unmasked frames (the MLM path: no temporal level in HERO).

        read: [S, Lt] bool, the positions the caller uses (MLM: the masked tokens); the others may be zeros,
        and subtitles without one are not encoded at all.
        """
        sub_ids = batch.sub_ids if sub_ids is None else sub_ids
        if self.cfg.encoder == "flat":
            return self._flat(batch, batch.frame_feats, None, None, sub_ids).text_states
        return self._cross_modal(batch, batch.frame_feats, None, sub_ids,
                                 read=batch.sub_mask if read is None else read)[1]

    def forward(
        self,
        batch: VideoBatch,
        *,
        frame_masked: Tensor | None = None,
        frame_permutation: Tensor | None = None,
        sub_ids: Tensor | None = None,
        extra_text: tuple[Tensor, Tensor] | None = None,
        text_states: bool = False,
        extra_text_states: bool = False,
    ) -> HeroOutput:
        """Encode a batch of videos.

        Args:
            batch: the videos and their subtitles.
            frame_masked: [B, T] bool, frames hidden from the model (MFM): zeroed and replaced by a learned
                mask vector at both levels.
            frame_permutation: [B, T] long, slot p of the temporal input takes frame ``perm[p]`` (FOM): the
                shuffle happens after the cross-modal level, so only the temporal level sees it.
            sub_ids: [S, Lt] replacement token ids (e.g. VSM blanks the query subtitles).
            extra_text: ([B, Lx] long ids, [B, Lx] bool mask) per video, e.g. `[SEP] q [SEP] a` (video QA) or a
                statement (VIOLIN): appended to every subtitle's cross-modal sequence of that video, and its
                text embeddings placed after the video's frames at the temporal level (positions n_frames + j).
                Their temporal states come back as ``HeroOutput.extra_states`` [B, Lx, D].
            text_states: also return the subtitle tokens' cross-modal states (``HeroOutput.text_states``); without
                it the cross-modal level computes the frame outputs alone and ``text_states`` is None (the flat
                encoder and the padded reference form return them either way).
            extra_text_states: also return the appended text's cross-modal states, one row per subtitle
                (``HeroOutput.extra_cross_states``): where that text has read the subtitle's tokens and frames.
                Hierarchical encoder only.
        """
        if batch.num_frames > self.cfg.max_frames:
            raise ValueError(f"batch has {batch.num_frames} frames per video, model.max_frames is {self.cfg.max_frames}")
        feats = batch.frame_feats
        if frame_masked is not None:
            feats = feats.masked_fill(frame_masked.unsqueeze(-1), 0.0)
        sub_ids = batch.sub_ids if sub_ids is None else sub_ids
        if extra_text is not None and (extra_text[0].shape != extra_text[1].shape
                                       or extra_text[0].shape[0] != batch.num_videos):
            raise ValueError(f"extra_text ids {tuple(extra_text[0].shape)} / mask {tuple(extra_text[1].shape)} "
                             f"must both be [{batch.num_videos}, Lx]")
        if self.cfg.encoder == "flat":
            if extra_text_states:
                raise ValueError("extra_text_states: the flat encoder has no per-subtitle sequences")
            return self._flat(batch, feats, frame_masked, frame_permutation, sub_ids, extra_text)
        frame_slots, texts, extra_cross = self._cross_modal(batch, feats, frame_masked, sub_ids, extra_text,
                                                            read="all" if text_states else "frames",
                                                            read_extra=extra_text_states)
        text_states = texts if text_states or not self.packed else None
        matched = scatter_clip_frames(frame_slots, batch.sub_video, batch.sub_frames, batch.num_videos, batch.num_frames)
        clip_feats = feats
        if frame_masked is not None:
            clip_feats = add_mask_vectors(feats, frame_masked, self.clip_mask_vector, self.clip_unmasked_vector)
        fused = self.frame_residual(clip_feats) + matched                          # [B, T, D]
        if frame_permutation is not None:
            fused = fused.gather(1, frame_permutation.unsqueeze(-1).expand_as(fused))
        if extra_text is None:
            states = self.temporal(self.temporal_embed(fused), batch.frame_mask)
            return HeroOutput(frame_states=states, frame_mask=batch.frame_mask, text_states=text_states, fused_frames=fused)
        out = self._temporal_with_extra(batch, fused, text_states, extra_text)
        return out if extra_cross is None else dataclasses.replace(out, extra_cross_states=extra_cross)

    def _temporal_with_extra(self, batch: VideoBatch, fused: Tensor, text_states: Tensor,
                             extra_text: tuple[Tensor, Tensor]) -> HeroOutput:
        """Temporal level over [frames ; extra-text embeddings]; the text takes positions n_frames + j."""
        x_ids, x_mask = extra_text
        B, T = batch.frame_mask.shape
        n = batch.frame_mask.sum(1, keepdim=True)                                  # [B, 1]
        text = self.text_embed(x_ids)                                              # [B, Lx, D] (SubEmbeddings)
        pos = torch.cat([torch.arange(T, device=n.device).expand(B, T), n + _left_aligned_slots(x_mask).clamp(min=0)], 1)
        emb = self.temporal_embed
        x = emb.drop(emb.norm(torch.cat([fused, text], 1) + emb.position(pos.clamp(max=emb.position.num_embeddings - 1))))
        y = self.temporal(x, torch.cat([batch.frame_mask, x_mask], 1))
        return HeroOutput(frame_states=y[:, :T], frame_mask=batch.frame_mask, text_states=text_states,
                          fused_frames=fused, extra_states=y[:, T:])

    # ------------------------------------------------------------------ flat (F-TRM)
    def _flat(self, batch: VideoBatch, feats: Tensor, frame_masked: Tensor | None,
              frame_permutation: Tensor | None, sub_ids: Tensor,
              extra_text: tuple[Tensor, Tensor] | None = None) -> HeroOutput:
        """[all frames ; all subtitle tokens (; extra text)] per video, global positions, one transformer."""
        B, T = batch.frame_mask.shape
        if frame_permutation is not None:
            feats = feats.gather(1, frame_permutation.unsqueeze(-1).expand_as(feats))
            if frame_masked is not None:
                frame_masked = frame_masked.gather(1, frame_permutation)
        frame_pos = torch.arange(T, device=feats.device).clamp(max=self.cfg.max_frames - 1).expand(B, T)
        frames = self.frame_embed(feats, frame_pos, self._frame_type(), frame_masked)
        # Token (s, l) goes to column tok_col[s, l] of its video's text row; tokens are left-aligned per subtitle.
        lens = batch.sub_mask.sum(1)                                               # [S]
        per_video = torch.zeros(B, dtype=torch.long, device=lens.device).index_add_(0, batch.sub_video, lens)
        video_start = per_video.cumsum(0) - per_video                             # subtitles are ordered by video
        start = lens.cumsum(0) - lens - video_start[batch.sub_video]               # offset of each subtitle in its video
        tok_col = start[:, None] + torch.arange(sub_ids.shape[1], device=lens.device)
        n_text = per_video
        if extra_text is not None:                      # the extra text follows the video's subtitle tokens
            x_col = per_video[:, None] + _left_aligned_slots(extra_text[1])        # [B, Lx]
            n_text = per_video + extra_text[1].sum(1)
        n_tok = max(int(n_text.max()) if B else 0, 1)
        s_idx, l_idx = batch.sub_mask.nonzero(as_tuple=True)
        rows, cols = batch.sub_video[s_idx], tok_col[s_idx, l_idx]
        text_ids = sub_ids.new_zeros(B, n_tok).index_put((rows, cols), sub_ids[s_idx, l_idx])
        text_valid = torch.zeros(B, n_tok, dtype=torch.bool, device=lens.device).index_put((rows, cols), torch.ones_like(rows, dtype=torch.bool))
        if extra_text is not None:
            xb, xl = extra_text[1].nonzero(as_tuple=True)
            text_ids = text_ids.index_put((xb, x_col[xb, xl]), extra_text[0][xb, xl])
            text_valid = text_valid.index_put((xb, x_col[xb, xl]), torch.ones_like(xb, dtype=torch.bool))
        text = self.text_embed(text_ids)
        y = self.flat(torch.cat([frames, text], 1), torch.cat([batch.frame_mask, text_valid], 1))
        text_states = y.new_zeros(*sub_ids.shape, y.shape[-1]).index_put((s_idx, l_idx), y[:, T:][rows, cols])
        extra_states = None
        if extra_text is not None:
            extra_states = y[:, T:].gather(1, x_col.clamp(min=0).unsqueeze(-1).expand(-1, -1, y.shape[-1]))
            extra_states = extra_states * extra_text[1].unsqueeze(-1).to(y.dtype)
        return HeroOutput(frame_states=y[:, :T], frame_mask=batch.frame_mask, text_states=text_states, fused_frames=None,
                          extra_states=extra_states)
