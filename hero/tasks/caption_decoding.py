"""Caption decoding for `CaptioningTask`: greedy and beam search, with or without the KV cache, and a
tokens/s probe (``caption_decode_benchmark``) for the benchmarks.

With the cache, each step feeds one new token: every layer appends its keys/values to the cache, and the
memory's cross-attention keys/values are computed once. Without it, each step re-runs the decoder over the
whole prefix and re-projects the memory (the output projection is applied to the last position only, in
both). Both give the same tokens (a test checks it). Ties between equal
scores go to the lower token id (and, in beam search, to the better beam), so beam size 1 is greedy.
"""

from __future__ import annotations

import logging
import time

import torch
from torch import Tensor

from hero.metrics.moment_ranking import topk_stable

log = logging.getLogger(__name__)


class _Stepper:
    """Next-token log-probabilities [R, V] for R prefixes [R, t]."""

    def __init__(self, task, memory: Tensor, mask: Tensor, use_cache: bool) -> None:
        self.task, self.memory, self.mask = task, memory, mask
        self.cache = task.head.memory_cache(memory) if use_cache else None

    def __call__(self, prefix: Tensor) -> Tensor:
        head, word = self.task.head, self.task.word
        if self.cache is not None:
            logits = head(prefix[:, -1:], word, None, self.mask, cache=self.cache, past=prefix.shape[1] - 1)
        else:
            logits = head(prefix, word, self.memory, self.mask, last_only=True)
        return logits[:, -1].float().log_softmax(-1)

    def reorder(self, rows: Tensor) -> None:
        """Beam search: row r continues the hypothesis that was row rows[r]."""
        if self.cache is not None:
            for c in self.cache:
                c["k"], c["v"] = c["k"][rows], c["v"][rows]


def _until(tokens: list[int], eos: int | None) -> list[int]:
    return tokens[: tokens.index(eos)] if eos is not None and eos in tokens else tokens


@torch.no_grad()
def greedy(task, memory: Tensor, mask: Tensor, *, max_len: int, use_cache: bool = True,
           eos: int | None = -1) -> list[list[int]]:
    """Greedy decoding. memory: [N, S, D]; mask: [N, S] -> N token lists (BOS/EOS removed).
    ``eos=-1`` means the task's separator token; ``None`` never stops early (benchmarks)."""
    eos = task.tokens.sep if eos == -1 else eos
    step = _Stepper(task, memory, mask, use_cache)
    prefix = torch.full((memory.shape[0], 1), task.tokens.cls, dtype=torch.long, device=memory.device)
    done = torch.zeros(memory.shape[0], dtype=torch.bool, device=memory.device)
    for _ in range(max_len):
        nxt = step(prefix).argmax(-1).masked_fill(done, task.tokens.pad)
        prefix = torch.cat([prefix, nxt[:, None]], 1)
        if eos is not None:
            done |= nxt == eos
            if bool(done.all()):
                break
    return [_until(row[1:], eos) for row in prefix.tolist()]


@torch.no_grad()
def beam_search(task, memory: Tensor, mask: Tensor, *, beam_size: int, max_len: int, length_penalty: float = 0.0,
                use_cache: bool = True, eos: int | None = -1) -> list[list[int]]:
    """Beam search; a hypothesis is ranked by sum(log p) / length ** length_penalty (EOS counted in the length).

    A sample stops once ``beam_size`` hypotheses have ended (EOS among the top ``beam_size`` candidates of a
    step); at ``max_len`` the live beams end too. memory: [N, S, D]; mask: [N, S] -> N token lists.
    """
    eos = task.tokens.sep if eos == -1 else eos
    N, K, dev = memory.shape[0], beam_size, memory.device
    step = _Stepper(task, memory.repeat_interleave(K, 0), mask.repeat_interleave(K, 0), use_cache)
    prefix = torch.full((N * K, 1), task.tokens.cls, dtype=torch.long, device=dev)
    scores = torch.full((N, K), float("-inf"), device=dev)
    scores[:, 0] = 0.0                                                            # one live beam at the start
    finished: list[list[tuple[float, list[int]]]] = [[] for _ in range(N)]
    done = [False] * N
    for t in range(max_len):
        tok_val, tok_idx = topk_stable(step(prefix), 2 * K)                       # [N*K, 2K] per beam
        cand = (scores.view(-1, 1) + tok_val).view(N, K * 2 * K)
        cand_val, cand_idx = topk_stable(cand, 2 * K)                             # [N, 2K] best first
        cand_beam = (cand_idx // (2 * K)).tolist()
        cand_tok = tok_idx.view(N, K * 2 * K).gather(1, cand_idx).tolist()
        cand_val = cand_val.tolist()
        rows, toks, new_scores = [], [], []
        for n in range(N):
            kept: list[tuple[int, int, float]] = []
            for j in range(2 * K if not done[n] else 0):
                b, w, s = cand_beam[n][j], cand_tok[n][j], cand_val[n][j]
                if s == float("-inf") or len(kept) == K:
                    break
                if w == eos:
                    if j < K:
                        finished[n].append((s / (t + 1) ** length_penalty, prefix[n * K + b, 1:].tolist()))
                    continue
                kept.append((n * K + b, w, s))
            done[n] = done[n] or len(finished[n]) >= K
            kept += [(n * K, task.tokens.pad, float("-inf"))] * (K - len(kept))
            for r, w, s in kept:
                rows.append(r), toks.append(w), new_scores.append(s)
        rows_t = torch.tensor(rows, device=dev)
        prefix = torch.cat([prefix[rows_t], torch.tensor(toks, device=dev)[:, None]], 1)
        step.reorder(rows_t)
        scores = torch.tensor(new_scores, device=dev).view(N, K)
        if all(done):
            break
        if t == max_len - 1:
            for n in range(N):
                if not done[n]:
                    finished[n] += [(scores[n, k].item() / max_len ** length_penalty, prefix[n * K + k, 1:].tolist())
                                    for k in range(K) if scores[n, k] > float("-inf")]
    return [max(f, key=lambda h: h[0])[1] if f else [] for f in finished]


def generate(task, memory: Tensor, mask: Tensor, *, beam_size: int, max_len: int, length_penalty: float = 0.0,
             use_cache: bool = True, eos: int | None = -1) -> list[list[int]]:
    """Greedy when ``beam_size == 1``, beam search otherwise."""
    if beam_size == 1:
        return greedy(task, memory, mask, max_len=max_len, use_cache=use_cache, eos=eos)
    return beam_search(task, memory, mask, beam_size=beam_size, max_len=max_len, length_penalty=length_penalty,
                       use_cache=use_cache, eos=eos)


@torch.no_grad()
def decode_tokens_per_second(task, memory: Tensor, mask: Tensor, *, max_len: int = 30, beam_size: int = 1,
                             use_cache: bool = True, repeats: int = 3) -> float:
    """Generated tokens per second (N * max_len per run, no early stop), best of ``repeats`` runs."""
    was_training = task.training
    task.eval()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        generate(task, memory, mask, beam_size=beam_size, max_len=max_len, use_cache=use_cache, eos=None)
        best = min(best, time.perf_counter() - t0)
    task.train(was_training)
    return memory.shape[0] * max_len / best


def caption_decode_benchmark(preset: str = "hero-small", *, num_captions: int = 16, memory_frames: int = 20,
                             max_len: int = 30, beam_size: int = 1, repeats: int = 3, seed: int = 0) -> dict[str, float]:
    """Decode tokens/s with and without the KV cache on random weights and a random memory (for ``make bench``).

    Returns ``{"captioning/tokens_per_s_cache", "captioning/tokens_per_s_no_cache", "captioning/cache_speedup"}``.
    """
    from hero.presets import get_preset
    from hero.tasks.captioning import CaptioningConfig, CaptioningTask

    torch.manual_seed(seed)
    p = get_preset(preset)
    task = CaptioningTask(p.model, CaptioningConfig(), p.tokens).eval()
    memory = torch.randn(num_captions, memory_frames, p.model.hidden_size)
    mask = torch.ones(num_captions, memory_frames, dtype=torch.bool)
    kw = dict(max_len=max_len, beam_size=beam_size, repeats=repeats)
    cached = decode_tokens_per_second(task, memory, mask, use_cache=True, **kw)
    uncached = decode_tokens_per_second(task, memory, mask, use_cache=False, **kw)
    log.info("caption decoding (%s, beam %d, %d tokens): %.0f tok/s cached, %.0f uncached", preset, beam_size,
             max_len, cached, uncached)
    return {"captioning/tokens_per_s_cache": cached, "captioning/tokens_per_s_no_cache": uncached,
            "captioning/cache_speedup": cached / uncached}
