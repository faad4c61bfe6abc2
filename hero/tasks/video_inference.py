"""Video-and-language inference: VIOLIN (docs/hero-fidelity.md c.4).

A statement ``[SEP] tokens`` is appended to every subtitle at the cross-modal level and after the frames
at the temporal level (as video QA does); ``violin_pool`` attention over the frame states -> MLP(D -> 2D -> 1)
-> sigmoid -> binary cross-entropy. A training item is a statement with its paired opposite-label statement
(two copies of the video). Accuracy at probability 0.5 (logit 0).

``pair_loss`` (0 = HERO) adds a ranking term over each training pair: cross-entropy of picking the entailed
statement of the two. Both statements share the video, so this term can only fall by reading the statements;
the binary loss alone also falls by learning which videos tend to come with true statements, which a pair
(one true, one false, same video) cannot use.
"""

from __future__ import annotations

import math

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hero.config import ConfigError
from hero.data.batch import VideoBatch
from hero.data.task_collate import collate_videos, pad_token_lists, select_videos, unique_videos
from hero.metrics import scoring
from hero.metrics.formats import ViolinLabel, write_violin_labels
from hero.model.config import ModelConfig
from hero.model.linear import Linear
from hero.tasks.base import TaskOutput
from hero.tasks.downstream import DownstreamTask, Mlp, SubtitleTextMatch, SubtitleTextReader, attention_pool
from hero.tasks.prediction import PredictContext, PredictOptions, Written
from hero.tasks.registry import register_task
from hero.text.tokenizer import SpecialTokens


@dataclass(frozen=True, kw_only=True)
class ViolinConfig:
    """Defaults: HERO's VIOLIN config."""

    max_txt_len: int = 120
    """Longest `[SEP] statement` sequence (tokens beyond are cut)."""
    threshold: float = 0.5
    """Probability at which a statement counts as entailed."""
    window: float | None = None
    """Seconds of context around the statement's ``ts``: the model sees only that clip (a VIOLIN statement is
    written for one clip; `hero.data.window`); None = the whole video."""
    pair_loss: float = 0.0
    """Weight of the pair ranking term (cross-entropy over each statement and its opposite); 0 = HERO's loss."""
    read_text: bool = False
    """Also score the statement where it met the subtitles: its tokens' cross-modal states, pooled per subtitle,
    the best subtitle's score added to the logit (`SubtitleTextReader`). False = HERO's head (frame states only)."""
    text_match: bool = False
    """Also score the statement by its cosine similarity to the best-matching subtitle of the video (window), both
    encoded alone by the encoder's text side (`SubtitleTextMatch`), added to the logit. False = HERO."""

    def __post_init__(self) -> None:
        if self.window is not None and self.window < 0:
            raise ConfigError(f"window: must be >= 0 seconds or null, got {self.window}")
        if self.pair_loss < 0:
            raise ConfigError(f"pair_loss: must be >= 0, got {self.pair_loss}")
        if self.max_txt_len < 2:
            raise ConfigError(f"max_txt_len: must be >= 2, got {self.max_txt_len}")
        if not 0.0 < self.threshold < 1.0:
            raise ConfigError(f"threshold: must be in (0, 1), got {self.threshold}")


@dataclass(frozen=True)
class ViolinInputs:
    """batch: V distinct videos; statement_ids, statement_mask: [N, Lx] `[SEP] tokens`;
    statement_video: [N] in 0..V-1; label: [N] float 1 = entailed, 0 = contradicted, -1 = unknown;
    pairs: [P, 2] rows (entailed, contradicted) of the labelled statement pairs."""

    batch: VideoBatch
    statement_ids: Tensor
    statement_mask: Tensor
    statement_video: Tensor
    label: Tensor
    pairs: Tensor


def collate_violin(examples: Sequence[Mapping], tokens: SpecialTokens, cfg: ViolinConfig, *,
                   clip_len: float | None = None, max_frames: int | None = None) -> ViolinInputs:
    """Examples ``{"video": video example, "statement_ids": [...], "label": 0/1/None, "paired_ids": [...] (optional)}``
    (ids without special tokens) -> inputs. ``paired_ids`` adds the opposite-label statement right after it
    (HERO's training items); its label is ``1 - label``."""
    videos, vid_index = unique_videos([e["video"] for e in examples])
    batch = collate_videos(videos, tokens, max_frames)
    seqs, labels, owner, pairs = [], [], [], []
    for e, v in zip(examples, vid_index.tolist()):
        lab = e.get("label")
        seqs.append([tokens.sep, *e["statement_ids"]])
        labels.append(-1.0 if lab is None else float(lab))
        owner.append(v)
        if e.get("paired_ids") is not None:
            seqs.append([tokens.sep, *e["paired_ids"]])
            labels.append(-1.0 if lab is None else 1.0 - float(lab))
            owner.append(v)
            if lab is not None:
                n = len(seqs)
                pairs.append((n - 2, n - 1) if lab else (n - 1, n - 2))
    ids, mask = pad_token_lists(seqs, tokens.pad, cfg.max_txt_len)
    return ViolinInputs(batch=batch, statement_ids=ids, statement_mask=mask, statement_video=torch.tensor(owner),
                        label=torch.tensor(labels), pairs=torch.tensor(pairs, dtype=torch.long).view(-1, 2))


class ViolinHead(nn.Module):
    """violin_pool attention over frames, then MLP(D -> 2D -> 1)."""

    def __init__(self, cfg: ModelConfig, read_text: bool = False, text_match: bool = False) -> None:
        super().__init__()
        self.pool = Linear(cfg.hidden_size, 1)
        self.pred = Mlp(cfg, 1)
        self.text = SubtitleTextReader(cfg) if read_text else None
        self.match = SubtitleTextMatch() if text_match else None

    def forward(self, frames: Tensor, frame_mask: Tensor) -> Tensor:
        """frames: [N, T, D]; frame_mask: [N, T] -> entailment logits [N]."""
        return self.pred(attention_pool(frames, frame_mask, self.pool)).squeeze(-1)


def violin_loss(logits: Tensor, label: Tensor) -> Tensor:
    """Mean binary cross-entropy over statements with a label (label >= 0). logits, label: [N]."""
    known = label >= 0
    if not known.any():
        return logits.sum() * 0.0
    return F.binary_cross_entropy_with_logits(logits[known].float(), label[known].float())


def pair_ranking_loss(logits: Tensor, pairs: Tensor) -> Tensor:
    """Mean over pairs of -log softmax(logit[entailed], logit[contradicted])[0] = softplus(l_c - l_e).
    logits: [N]; pairs: [P, 2] (entailed row, contradicted row). Zero (tied to the graph) without pairs."""
    if pairs.numel() == 0:
        return logits.sum() * 0.0
    return F.softplus(logits[pairs[:, 1]].float() - logits[pairs[:, 0]].float()).mean()


def violin_labels(logits: Tensor, threshold: float = 0.5) -> Tensor:
    """[N] long: 1 where sigmoid(logit) > ``threshold``, decided on the logit (sigmoid rounds to exactly 0.5 for
    |logit| < ~3e-8). At 0.5 this is the scorer's rule, logit > 0 (`hero.metrics.qa.binary_accuracy_from_logits`)."""
    return (logits > math.log(threshold / (1.0 - threshold))).long()


@dataclass(frozen=True, eq=False)
class ViolinPredictions:
    """label: [N] long 0/1 at the threshold; prob: [N] sigmoid of the logit."""

    label: Tensor
    prob: Tensor


@register_task
class ViolinTask(DownstreamTask):
    name = "violin"
    config_cls = ViolinConfig
    collate = staticmethod(collate_violin)
    datasets = {"violin": "violin"}
    headlines = ("acc",)

    def __init__(self, model_cfg: ModelConfig, cfg: ViolinConfig, tokens: SpecialTokens) -> None:
        super().__init__(model_cfg, cfg, tokens)
        self.head = ViolinHead(model_cfg, read_text=cfg.read_text, text_match=cfg.text_match)
        self._init_head()

    def logits(self, inputs: ViolinInputs) -> Tensor:
        """[N] entailment logits, one video copy per statement."""
        copies = select_videos(inputs.batch, inputs.statement_video)
        read_text = self.head.text is not None
        out = self.encoder(copies, extra_text=(inputs.statement_ids, inputs.statement_mask), extra_text_states=read_text)
        logits = self.head(out.frame_states, out.frame_mask)
        if read_text:
            read = self.head.text(out.extra_cross_states, inputs.statement_mask[copies.sub_video], copies.sub_video,
                                  logits.shape[0])
            logits = logits + read.to(logits.dtype)
        if self.head.match is not None:
            match = self.head.match.score(self.encoder, inputs.batch, inputs.statement_ids, inputs.statement_mask,
                                          inputs.statement_video, self.tokens.cls)
            logits = logits + match.to(logits.dtype)
        return logits

    def forward(self, inputs: ViolinInputs) -> TaskOutput:
        logits = self.logits(inputs)
        bce = violin_loss(logits, inputs.label)
        pair = pair_ranking_loss(logits, inputs.pairs)
        loss = bce + self.cfg.pair_loss * pair if self.cfg.pair_loss else bce
        known = inputs.label >= 0
        pred = violin_labels(logits.detach().float(), self.cfg.threshold).float()
        acc = (pred == inputs.label)[known].float().mean() if known.any() else loss.new_zeros(())
        metrics = {"violin/loss": loss.detach(), "violin/loss_bce": bce.detach(), "violin/loss_pair": pair.detach(),
                   "violin/acc": acc.detach()}
        if inputs.pairs.numel():  # the entailed statement of a pair scored above its opposite
            entailed, contradicted = logits[inputs.pairs[:, 0]], logits[inputs.pairs[:, 1]]
            metrics["violin/pair_acc"] = (entailed > contradicted).float().mean().detach()
        return TaskOutput(loss=loss, metrics=metrics, count=int(known.sum()))

    @torch.no_grad()
    def predict(self, inputs: ViolinInputs) -> ViolinPredictions:
        """Entailment per statement (write ``{"desc_id", "label"}`` lines from it)."""
        logits = self.logits(inputs).float()
        return ViolinPredictions(label=violin_labels(logits, self.cfg.threshold), prob=torch.sigmoid(logits))

    def write_predictions(self, ctx: PredictContext) -> Written:
        """Entailment label [N] per statement."""
        def fn(items, inputs):
            labels = self.predict(inputs).label.tolist()
            return [ViolinLabel(desc_id=it["id"], label=int(x)) for it, x in zip(items, labels)]

        labels = ctx.run(fn)
        write_violin_labels(ctx.out_path, labels)
        return Written(len(labels))

    @classmethod
    def score(cls, predictions: Path, annotations: Path, options: PredictOptions, written: Written) -> dict:
        return scoring.score_violin(predictions, annotations)

    @classmethod
    def per_example(cls, predictions: Path, annotations: Path, options: PredictOptions,
                    written: Written | None = None) -> dict[str, dict[str, float]]:
        """``acc`` per statement (100 right / 0 wrong)."""
        return scoring.per_example_violin(predictions, annotations)
