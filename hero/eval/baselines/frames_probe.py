"""How much a small learner retrieves from the clip features alone: a frames-only probe for TVR's video retrieval.

The queries' frozen sentence embeddings (MiniLM-L6, as the text-only baseline) and the corpus's clip features, two
maps trained on the train split's queries that name something visible (types ``v`` and ``vt``): a linear map of
the query and an MLP of the clip into one space, scored by cosine; per query an InfoNCE loss over every train clip,
the clips inside its moment the positives. A video's score is its best clip's. Reported: VR R@1 on a split per
query type with a 95% interval over its queries (Wilson), beside chance (1 / the split's videos).

It answers one question: do the features show what the queries name? The text-only baseline reads subtitles, the
ceiling (`hero.eval.baselines.ceiling`) bounds any model; a probe far below the ceiling on the visual-only queries
(type ``v``, whose answer is in the frames alone) says the features, not the model on top of them, limit the frame
side::

    python -m hero.eval.baselines.frames_probe data/02_intermediate/manifest-<key>.json --features data/03_primary/features

prints one line of JSON. Seeded (``--seed``); equal across runs on one machine and thread count.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hero.corpus.manifest import Manifest
from hero.eval.baselines.encoder import SentenceEncoder


@dataclass(frozen=True, kw_only=True)
class ProbeConfig:
    dim: int = 256
    """The shared space of queries and clips."""
    hidden: int = 512
    """The clip MLP's hidden width."""
    steps: int = 600
    batch: int = 256
    """Train queries per step."""
    lr: float = 1e-3
    temperature: float = 0.05
    dropout: float = 0.2
    """On the standardised clip features, in training."""
    types: tuple[str, ...] = ("v", "vt")
    """The train query types it learns from (``t`` queries name speech, which the frames do not show)."""
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("dim", "hidden", "steps", "batch"):
            if getattr(self, name) < 1:
                raise ValueError(f"frames probe: {name} must be >= 1, got {getattr(self, name)}")


class _Clips:
    """A split's clip features, standardised, stacked: ``x`` [C, Df], ``video`` [C] (index into ``videos``),
    ``start`` [C] seconds."""

    def __init__(self, videos: Sequence[str], features: Callable[[str], np.ndarray], clip_len: float,
                 mean: Tensor | None = None, std: Tensor | None = None) -> None:
        per = [torch.from_numpy(np.asarray(features(v), dtype=np.float32)) for v in videos]
        x = torch.cat(per)
        self.mean = x.mean(0) if mean is None else mean
        self.std = x.std(0) + 1e-3 if std is None else std
        self.x = (x - self.mean) / self.std
        self.videos = list(videos)
        self.video = torch.repeat_interleave(torch.arange(len(per)), torch.tensor([len(f) for f in per]))
        self.start = torch.cat([torch.arange(len(f)) for f in per]).float() * clip_len


def _video_scores(q: Tensor, clips: Tensor, video: Tensor, num_videos: int) -> Tensor:
    """[Q, C] clip scores -> [Q, V]: each video's best clip."""
    out = torch.full((q.shape[0], num_videos), -1e4)
    return out.scatter_reduce(1, video.expand(q.shape[0], -1), q @ clips.t(), reduce="amax")


def frames_probe(manifest: Manifest, features: Callable[[str], np.ndarray], encoder: SentenceEncoder,
                 split: str = "val", cfg: ProbeConfig | None = None, dataset: str = "tvr") -> dict:
    """Train the probe on ``dataset``'s train queries and report VR R@1 on ``split`` (module docstring).

    ``features(vid)``: that video's clip features [clips, Df]."""
    cfg = cfg or ProbeConfig()
    tasks = manifest.tasks.get(dataset, {})
    train = [e for e in tasks.get("train", []) if e.get("type", "v") in cfg.types and e.get("ts") is not None]
    evals = [e for e in tasks.get(split, []) if e.get("vid_name") is not None]
    if not train or not evals:
        raise ValueError(f"frames probe: {dataset} needs labelled train queries of types {list(cfg.types)} and "
                         f"{split} queries (found {len(train)} and {len(evals)})")
    gen = torch.Generator().manual_seed(cfg.seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        tr = _Clips(sorted({e["vid_name"] for e in train}), features, manifest.clip_len)
        ev = _Clips(sorted({e["vid_name"] for e in evals}), features, manifest.clip_len, tr.mean, tr.std)
        q_train, q_eval = encoder.encode([e["desc"] for e in train]), encoder.encode([e["desc"] for e in evals])
        pos = torch.stack([(tr.video == tr.videos.index(e["vid_name"])) & (tr.start + manifest.clip_len > e["ts"][0])
                           & (tr.start < e["ts"][1]) for e in train])                          # [Q, C]
        keep = pos.any(1)
        q_train, pos = q_train[keep], pos[keep]
        query = nn.Linear(q_train.shape[1], cfg.dim)
        clip = nn.Sequential(nn.Linear(tr.x.shape[1], cfg.hidden), nn.GELU(), nn.Linear(cfg.hidden, cfg.dim))
        opt = torch.optim.AdamW([*query.parameters(), *clip.parameters()], lr=cfg.lr)
        for _ in range(cfg.steps):
            idx = torch.randint(0, len(q_train), (min(cfg.batch, len(q_train)),), generator=gen)
            c = F.normalize(clip(F.dropout(tr.x, cfg.dropout, True)), dim=-1)
            s = F.normalize(query(q_train[idx]), dim=-1) @ c.t() / cfg.temperature             # [B, C]
            loss = (torch.logsumexp(s, 1) - torch.logsumexp(s.masked_fill(~pos[idx], -1e4), 1)).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            scores = _video_scores(F.normalize(query(q_eval), dim=-1), F.normalize(clip(ev.x), dim=-1), ev.video,
                                   len(ev.videos))
    target = torch.tensor([ev.videos.index(e["vid_name"]) for e in evals])
    hit = (scores.argmax(1) == target).numpy()
    types = [e.get("type", "") for e in evals]
    groups = {**{t: hit[[x == t for x in types]] for t in sorted(set(types))}, "all": hit}
    return {"dataset": dataset, "split": split, "videos": len(ev.videos), "chance": round(100 / len(ev.videos), 2),
            "vr_r1": {t: round(100 * float(h.mean()), 2) for t, h in groups.items()},
            "vr_r1_interval": {t: wilson_interval(int(h.sum()), len(h)) for t, h in groups.items()},
            "queries": {t: types.count(t) for t in sorted(set(types))}, "train_queries": int(keep.sum()),
            "final_loss": round(float(loss.detach()), 3), "steps": cfg.steps, "seed": cfg.seed}


def wilson_interval(hits: int, n: int, z: float = 1.96) -> list[float]:
    """The 95% Wilson score interval of a hit rate, in percent (over the queries; the probe's seed is not in it)."""
    p = hits / n
    centre, half = (p + z * z / (2 * n)) / (1 + z * z / n), z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [round(100 * max(0.0, float(centre - half)), 2), round(100 * min(1.0, float(centre + half)), 2)]


def store_features(manifest: Manifest, root: str | Path, *, regions: bool = False) -> Callable[[str], np.ndarray]:
    """``vid -> features`` from a feature store, refusing a video stored from other content than the manifest's
    (a store shared by corpora whose video names coincide keeps the last one extracted). ``regions``: each clip's
    pooled feature followed by its region features, flattened ([clips, Df + R * Dr]; extracted with
    ``features.extract.regions``)."""
    from hero.features.store import FeatureStore

    store = FeatureStore(root)

    def features(vid: str) -> np.ndarray:
        if vid not in store:
            raise KeyError(f"{root}: no features for video {vid!r}")
        stored, expected = store.entry(vid).get("video_sha256"), manifest.videos[vid].sha256
        if stored and expected and stored != expected:
            raise ValueError(f"{root}: the features of {vid!r} are another video's (sha256 {stored[:12]}…, the "
                             f"manifest's {expected[:12]}…): extract this corpus's features first")
        if not regions:
            return store[vid]
        pooled, (reg, _) = store[vid], store.regions(vid)
        return np.concatenate([np.asarray(pooled), np.asarray(reg).reshape(len(reg), -1)], axis=1)

    return features


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hero.eval.baselines.frames_probe",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("manifest", type=Path, help="the corpus manifest (data/02_intermediate/manifest-<key>.json)")
    ap.add_argument("--features", type=Path, default=Path("data/03_primary/features"), help="its feature store")
    ap.add_argument("--split", default="val")
    ap.add_argument("--dataset", default="tvr")
    ap.add_argument("--steps", type=int, default=ProbeConfig.steps)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--regions", action="store_true", help="add each clip's region features (extracted with regions)")
    args = ap.parse_args(argv)
    from hero.eval.baselines.encoder import MiniLMEncoder

    manifest = Manifest.load(args.manifest)
    out = frames_probe(manifest, store_features(manifest, args.features, regions=args.regions), MiniLMEncoder(), args.split,
                       ProbeConfig(steps=args.steps, seed=args.seed), args.dataset)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
