"""Benchmark: VCMR inference over a 2,000-video x 100-clip corpus, queries/s and peak memory.

``python -m hero.eval.bench [--videos 2000 --clips 100 --queries 400 --hidden 768 --out bench.json]``

A synthetic encoded corpus (unit-norm frame embeddings [Nv, T, D], random lengths) stands in for the model's
output. Per chunk of queries the head-like scoring runs (cosine against every frame, VR score = max over frames,
start/end = softmax of a 5-tap ConvSE-like filter over the similarities) and then ``rank_vcmr`` (HERO TVR
settings, NMS 0.5). Reported: queries/s end to end, of the ranking alone, with and without NMS, and the peak
resident memory of the process (Linux VmHWM, reset before each phase; CUDA: peak allocated). The baseline, run in
the same process on the same chunk, is HERO's formulation: the full [chunk, videos, T, T] span product, a length
mask and a full sort (no NMS); ``ranking_speedup`` = ours / baseline at equal settings without NMS.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor
from torch.nn import functional as F

from hero.metrics.moment_ranking import MomentRankConfig, rank_vcmr
from hero.storage.atomic import write_text_atomic

log = logging.getLogger(__name__)


def _reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return
    try:
        with open("/proc/self/clear_refs", "w") as f:       # "5" resets VmHWM (Linux >= 4.0)
            f.write("5")
    except OSError:
        pass


def _peak_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024          # lifetime peak, KiB on Linux


def make_corpus(num_videos: int, num_clips: int, hidden: int, gen: torch.Generator,
                device: torch.device) -> tuple[Tensor, Tensor]:
    """frames: [Nv, T, D] unit-norm (zeros past each video's length); lengths: [Nv] in [T/2, T]."""
    frames = F.normalize(torch.randn(num_videos, num_clips, hidden, generator=gen), dim=-1)
    lengths = torch.randint(num_clips // 2, num_clips + 1, (num_videos,), generator=gen)
    frames[torch.arange(num_clips)[None, :] >= lengths[:, None]] = 0
    return frames.to(device), lengths.to(device)


def score_queries(queries: Tensor, frames: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Head-like scores. queries: [c, D] unit-norm -> video scores [c, Nv], st / ed probabilities [c, Nv, T]."""
    nv, t, d = frames.shape
    sims = (frames.view(nv * t, d) @ queries.T).T.reshape(-1, nv, t)               # [c, Nv, T] cosines
    pad = torch.arange(t, device=frames.device)[None, None, :] >= lengths[None, :, None]
    video = sims.masked_fill(pad, -1.0).amax(-1)
    padded = F.pad(sims, (2, 2))

    def probs(taps: Sequence[float]) -> Tensor:                                     # 5-tap filter, like ConvSE
        logits = sum(w * padded[..., i:i + t] for i, w in enumerate(taps)) * 10
        return logits.masked_fill_(pad, -1e4).softmax(-1)

    return video, probs((0.1, 0.2, 4.0, 0.5, 0.1)), probs((0.1, 0.5, 4.0, 0.2, 0.1))


def hero_style_rank(video_scores: Tensor, st: Tensor, ed: Tensor, cfg: MomentRankConfig) -> Tensor:
    """Baseline (HERO ``validate_full_vcmr``): full [c, K, T, T] product, length mask, full sort; top indices."""
    w, top = torch.exp(cfg.q2c_alpha * video_scores).topk(min(cfg.max_videos, video_scores.shape[1]), dim=1)
    idx = top[:, :, None].expand(-1, -1, st.shape[-1])
    prod = torch.einsum("qvm,qv,qvn->qvmn", st.gather(1, idx), w, ed.gather(1, idx))
    t = st.shape[-1]
    mask = torch.ones(t, t, device=st.device).triu(cfg.min_len) * (1 - torch.ones(t, t, device=st.device)
                                                                    .triu(cfg.max_len))
    flat = (prod * mask).reshape(prod.shape[0], -1)
    return flat.sort(dim=1, descending=True).indices[:, : cfg.max_before_nms]


def _timed(fn: Callable[[], Any], device: torch.device) -> tuple[Any, float, float]:
    _reset_peak(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    out = fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return out, time.perf_counter() - t0, _peak_mb(device)


@torch.no_grad()
def run_benchmark(num_videos: int = 2000, num_clips: int = 100, num_queries: int = 400, hidden: int = 768,
                  query_chunk: int = 80, device: str = "cpu", seed: int = 0) -> dict[str, Any]:
    """Run the phases described in the module docstring; returns a flat dict of numbers and settings."""
    dev = torch.device(device)
    gen = torch.Generator().manual_seed(seed)
    frames, lengths = make_corpus(num_videos, num_clips, hidden, gen, dev)
    queries = F.normalize(torch.randn(num_queries, hidden, generator=gen), dim=-1).to(dev)
    nms_cfg = MomentRankConfig(nms_threshold=0.5, query_chunk=query_chunk)
    plain_cfg = MomentRankConfig(nms_threshold=None, query_chunk=query_chunk)
    chunks = [queries[i:i + query_chunk] for i in range(0, num_queries, query_chunk)]

    def end_to_end() -> float:
        ranking_s = 0.0
        for q in chunks:
            scores = score_queries(q, frames, lengths)
            t0 = time.perf_counter()
            rank_vcmr(*scores, nms_cfg, num_frames=lengths)
            ranking_s += time.perf_counter() - t0
        return ranking_s

    ranking_s, total_s, peak = _timed(end_to_end, dev)
    first = score_queries(chunks[0], frames, lengths)
    _, plain_s, plain_peak = _timed(lambda: rank_vcmr(*first, plain_cfg, num_frames=lengths), dev)
    _, base_s, base_peak = _timed(lambda: hero_style_rank(*first, plain_cfg), dev)
    n0 = len(chunks[0])
    result = {
        "vcmr/videos": num_videos, "vcmr/clips": num_clips, "vcmr/queries": num_queries, "vcmr/hidden": hidden,
        "vcmr/query_chunk": query_chunk, "vcmr/device": str(dev), "vcmr/threads": torch.get_num_threads(),
        "vcmr/queries_per_s": num_queries / total_s,
        "vcmr/ranking_queries_per_s_nms": num_queries / ranking_s,
        "vcmr/ranking_queries_per_s": n0 / plain_s,
        "vcmr/baseline_hero_sort_queries_per_s": n0 / base_s,
        "vcmr/ranking_speedup": base_s / plain_s,
        "vcmr/peak_memory_mb": peak,
        "vcmr/ranking_peak_memory_mb": plain_peak,
        "vcmr/baseline_peak_memory_mb": base_peak,
        "vcmr/corpus_embeddings_mb": frames.numel() * frames.element_size() / 2**20,
    }
    log.info("VCMR %d videos x %d clips (D=%d, %s): %.1f queries/s end to end, ranking %.1f q/s (NMS) / %.1f q/s, "
             "HERO-style baseline %.1f q/s (x%.2f); peak memory %.0f MB (baseline phase %.0f MB)",
             num_videos, num_clips, hidden, dev, result["vcmr/queries_per_s"],
             result["vcmr/ranking_queries_per_s_nms"], result["vcmr/ranking_queries_per_s"],
             result["vcmr/baseline_hero_sort_queries_per_s"], result["vcmr/ranking_speedup"], peak, base_peak)
    return result


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """CLI: run the benchmark, log a summary, write the JSON to ``--out`` (``-`` = stdout)."""
    p = argparse.ArgumentParser(prog="python -m hero.eval.bench", description=__doc__.splitlines()[0])
    p.add_argument("--videos", type=int, default=2000)
    p.add_argument("--clips", type=int, default=100)
    p.add_argument("--queries", type=int, default=400)
    p.add_argument("--hidden", type=int, default=768)
    p.add_argument("--chunk", type=int, default=80)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default="-")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    result = run_benchmark(args.videos, args.clips, args.queries, args.hidden, args.chunk, args.device)
    write_result(result, args.out)
    return result


def write_result(result: dict, out: str) -> None:
    """A benchmark's JSON to stdout (``-``) or to the file ``out`` (written beside it, then renamed)."""
    text = json.dumps(result, indent=2) + "\n"
    if out == "-":
        sys.stdout.write(text)
    else:
        write_text_atomic(out, text)


if __name__ == "__main__":
    main()
