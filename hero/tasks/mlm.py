"""Masked language modelling on subtitles, conditioned on their own frames (docs/hero-fidelity.md b.1).

A video without subtitle text (docs/hero-fidelity.md a.5: only separator-only subtitles over its frames) has nothing to
mask: MLM skips it and counts it (``mlm/skipped_videos``); a micro-batch of only such videos scores nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hero.data.batch import VideoBatch
from hero.data.masking import mask_tokens
from hero.model.config import ModelConfig
from hero.model.embeddings import RowGradEmbedding
from hero.model.linear import Linear
from hero.tasks.base import TaskOutput, nothing_to_score
from hero.tasks.config import PretrainConfig
from hero.text.tokenizer import SpecialTokens


class MlmHead(nn.Module):
    """dense -> GELU -> LayerNorm -> decoder tied to the word embeddings (+ own bias)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.dense = Linear(cfg.hidden_size, cfg.hidden_size)
        self.norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.embedding_norm_eps)
        self.bias = nn.Parameter(torch.zeros(cfg.embedding_rows))
        self.vocab_size = cfg.vocab_size
        self.reference_path = False
        """True on the benchmark's reference path (`hero.model.use_reference_path`): the accuracy metric by
        ``argmax``, as before `top1_correct`."""

    def forward(self, states: Tensor, word: Tensor | RowGradEmbedding) -> Tensor:
        """states: [N, D]; word: the word embeddings [V_padded, D] or their table (then its `decode`: the same
        logits with less memory traffic, computed for the vocabulary's rows only) -> logits [N, vocab_size] (padding rows sliced off)."""
        h = self.norm(F.gelu(self.dense(states)))
        if isinstance(word, RowGradEmbedding):
            return word.decode(h, self.bias, rows=self.vocab_size)
        # linear(), not h @ W.t(): under bf16 autocast the tied [V, D] table is cast without a transposed copy
        return F.linear(h, word, self.bias)[:, : self.vocab_size]


def top1_correct(logits: Tensor, labels: Tensor) -> Tensor:
    """[N] bool: the label's logit is the row's only maximum (argmax == label, except that a tie for the maximum
    counts as wrong). From the two largest logits per row: over a 50k vocabulary on the CPU several times cheaper
    than ``argmax``, or than counting the maximum's occurrences (a [N, 50k] comparison summed as int64)."""
    top2 = logits.topk(2, dim=-1).values
    hit = logits.gather(1, labels[:, None])[:, 0] == top2[:, 0]
    return hit & (top2[:, 1] < top2[:, 0])


def mlm_loss(logits: Tensor, labels: Tensor, *, consume: bool = False) -> Tensor:
    """Mean cross-entropy over the masked tokens, computed in fp32. logits: [N, V]; labels: [N].

    ``consume``: the caller owns ``logits`` and reads them only before backward (MLM's own decoder output):
    `_ConsumingCrossEntropy` then writes the gradient into the logits' own memory, in cache-sized row blocks,
    instead of torch's log-softmax output, zero-filled NLL gradient and log-softmax gradient: three fresh
    [N, 50k] tensors per step, each page-faulted in, since allocations this large go back to the system."""
    if consume and logits.requires_grad and torch.is_grad_enabled():
        return _ConsumingCrossEntropy.apply(logits, labels, False)[0]
    return F.cross_entropy(logits.float(), labels)


def mlm_loss_and_top1(logits: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """``(mlm_loss(logits, labels, consume=True), top1_correct(logits, labels))`` in one pass over the logits: the
    accuracy is read from each row block while the loss's log-sum-exp has it in cache (a `topk` over [N, 50k] cost
    ~10 ms per MLM step on its own). Off the consuming path (no gradient): the two functions."""
    if logits.requires_grad and torch.is_grad_enabled():
        loss, correct = _ConsumingCrossEntropy.apply(logits, labels, True)
        return loss, correct
    return mlm_loss(logits, labels), top1_correct(logits, labels)


_ROW_BLOCK = 8   # rows of a [N, 50k] fp32 block: 1.6 MB, within a core's L2 cache


class _ConsumingCrossEntropy(torch.autograd.Function):
    """``F.cross_entropy(logits.float(), labels)`` (mean), whose backward overwrites ``logits`` with the gradient
    (softmax - one-hot) / N and returns it; the logits are unusable after backward, and a second backward fails.
    The second output ([N] bool, with ``top1``; else empty) is `top1_correct`: the label's logit above every other
    logit of its row.

    Each row block is read while it is in cache. Low-precision logits are summed in an fp32 copy of the block that
    is ours to overwrite: the labels' entries set to -inf give the largest other logit and are put back, then it
    is shifted and exponentiated in place; their gradient is the softmax computed in place by torch's fused
    kernel (fp32 inside, one rounding to the logits' dtype) and scaled, where an fp32 detour would write and read
    the block three more times. fp32 logits, which are the caller's, are not written in the forward (they are
    another Function's view): ``torch.logsumexp``, a masked copy for the largest other logit, ``exp(x - lse)``."""

    @staticmethod
    def forward(ctx, logits: Tensor, labels: Tensor, top1: bool) -> tuple[Tensor, Tensor]:
        n = logits.shape[0]
        lse = torch.empty(n, dtype=torch.float32, device=logits.device)
        target = logits.gather(1, labels[:, None])[:, 0]
        correct = torch.empty(n if top1 else 0, dtype=torch.bool, device=logits.device)
        for s in range(0, n, _ROW_BLOCK):
            block, lab, tgt = logits[s:s + _ROW_BLOCK], labels[s:s + _ROW_BLOCK], target[s:s + _ROW_BLOCK]
            if block.dtype == torch.float32:
                torch.logsumexp(block, -1, out=lse[s:s + _ROW_BLOCK])
                if top1:   # the largest logit other than the label's, from the block while it is in cache
                    torch.gt(tgt, block.scatter(1, lab[:, None], float("-inf")).amax(-1), out=correct[s:s + _ROW_BLOCK])
                continue
            f = block.float()  # ours: the labels' entries go to -inf and back, then it is shifted and exponentiated
            if top1:
                rows = torch.arange(f.shape[0], device=f.device)
                f[rows, lab] = float("-inf")
                others = f.amax(-1)
                f[rows, lab] = tgt.float()
                torch.gt(tgt, others, out=correct[s:s + _ROW_BLOCK])
                top = torch.maximum(others, tgt.float())
            else:
                top = f.amax(-1)
            torch.log(f.sub_(top[:, None]).exp_().sum(-1), out=lse[s:s + _ROW_BLOCK]).add_(top)
        ctx.save_for_backward(logits, lse, labels)
        ctx.consumed = False
        ctx.mark_non_differentiable(correct)
        return (lse - target.float()).mean(), correct

    @staticmethod
    def backward(ctx, grad: Tensor, _grad_correct: Tensor | None = None):
        if ctx.consumed:
            raise RuntimeError("mlm_loss(consume=True): its backward overwrote the logits and cannot run twice")
        ctx.consumed = True
        logits, lse, labels = ctx.saved_tensors
        n = logits.shape[0]
        scale = grad.float() / n
        for s in range(0, n, _ROW_BLOCK):
            block = logits[s:s + _ROW_BLOCK]
            if block.dtype == torch.float32:
                block.sub_(lse[s:s + _ROW_BLOCK, None]).exp_().mul_(scale)
            else:
                torch._softmax(block, -1, False, out=block).mul_(scale)
        rows = torch.arange(n, device=logits.device)
        logits[rows, labels] -= scale.to(logits.dtype)
        return logits, None, None


@dataclass(frozen=True)
class MlmInputs:
    batch: VideoBatch  # sub_ids masked; position 0 is the CLS token
    labels: Tensor     # [S, Lt] original id at masked positions, -1 elsewhere
    skipped_videos: int = 0  # videos with no subtitle token to mask


class Mlm:
    """MLM over each subtitle with its aligned frames (frames unmasked; cross-modal level only in HERO)."""

    name = "mlm"
    head = "mlm"
    head_cls = MlmHead

    def __init__(self, cfg: PretrainConfig, tokens: SpecialTokens) -> None:
        self.prob = cfg.mask_prob
        self.tokens = tokens

    def prepare(self, batch: VideoBatch, generator: torch.Generator, step: int) -> MlmInputs:
        maskable = batch.sub_mask.clone()
        maskable[:, 0] = False  # the leading special token is never a target
        ids, labels = mask_tokens(batch.sub_ids, maskable, prob=self.prob, mask_id=self.tokens.mask,
                                  random_range=(self.tokens.random_low, self.tokens.random_high), generator=generator)
        ids[:, 0] = self.tokens.cls
        with_text = torch.zeros(batch.num_videos, dtype=torch.bool)
        with_text[batch.sub_video[maskable.any(1)]] = True
        return MlmInputs(batch=batch.replace(sub_ids=ids), labels=labels,
                         skipped_videos=batch.num_videos - int(with_text.sum()))

    def __call__(self, encoder, head: MlmHead, inputs: MlmInputs) -> TaskOutput:
        counters = {"mlm/skipped_videos": inputs.skipped_videos}
        where = inputs.labels >= 0
        if not where.any():
            return TaskOutput(loss=nothing_to_score(head), count=0, counters=counters)
        states = encoder.encode_subtitles(inputs.batch, read=where)              # [S, Lt, D], masked positions
        logits = head(states[where], encoder.word_table())
        labels = inputs.labels[where]
        if head.reference_path:
            loss, correct = mlm_loss(logits, labels), logits.argmax(-1) == labels
        else:   # the metric with the loss, before its backward overwrites the logits
            loss, correct = mlm_loss_and_top1(logits, labels)
        acc = correct.float().mean()
        return TaskOutput(loss=loss, metrics={"mlm/loss": loss.detach(), "mlm/acc": acc.detach()},
                          count=int(where.sum()), counters=counters)
