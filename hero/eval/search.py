"""Moment search: a text query -> the top moments of an indexed corpus, with their subtitles.

`MomentSearcher` encodes every corpus video once with a finetuned moment-retrieval model (``batch_size`` videos
at a time) and ranks moments for a query with the task's VCMR ranking (`MomentRetrievalTask.predict`). The
encoded corpus is an *index*: a folder with ``corpus.safetensors`` (frames [Nv, T, D], frame_mask [Nv, T],
frame_norms [Nv, T]) and ``index.json`` (video ids + a fingerprint of the weights, the features and max_frames),
so a second call loads it instead of re-encoding; a stale index (other weights, features or videos) is rebuilt.

CLI::

    python -m hero.eval.search --run-dir RUN --manifest MANIFEST.json --features STORE [--index DIR] \\
        --query "..." [--top-k 10] [--html OUT.html]

The HTML report lives in `hero.eval.search_report`.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from hero.corpus.manifest import Manifest
from hero.data.datasets import VideoFeatures, normalize_text
from hero.data.task_collate import collate_videos, pad_token_lists
from hero.metrics.moment_ranking import MomentRankConfig
from hero.features.store import FeatureStore
from hero.tasks.moment_retrieval import EncodedCorpus
from hero.presets import preset_tokenizer
from hero.storage.atomic import atomic_path, write_json_atomic
from hero.text.tokenizer import TextTokenizer

log = logging.getLogger(__name__)
INDEX_VERSION = 1


@dataclass(frozen=True)
class Moment:
    """One search hit: ``video_id`` from ``start`` to ``end`` seconds (inside ``[0, duration]``), its VCMR score,
    and the subtitles ``(text, start, end)`` overlapping the span."""

    rank: int
    video_id: str
    start: float
    end: float
    score: float
    duration: float
    subtitles: tuple[tuple[str, float, float], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def save_index(path: str | Path, corpus: EncodedCorpus, fingerprint: dict[str, Any]) -> Path:
    """Write ``corpus`` to the folder ``path``: tensors first, then index.json (its presence commits the index)."""
    from safetensors.torch import save_file

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    (path / "index.json").unlink(missing_ok=True)  # no committed index while the tensors change
    tensors = {"frames": corpus.frames, "frame_mask": corpus.frame_mask, "frame_norms": corpus.frame_norms}
    if corpus.sub_embed is not None:   # a model with a query-subtitle match (text_match)
        tensors.update(sub_embed=corpus.sub_embed, frame_sub=corpus.frame_sub)
    with atomic_path(path / "corpus.safetensors") as tmp:
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp))
    meta = {"version": INDEX_VERSION, "video_ids": list(corpus.video_ids), "fingerprint": fingerprint}
    write_json_atomic(path / "index.json", meta, indent=1)
    return path


def load_index(path: str | Path, device: torch.device | str = "cpu") -> tuple[EncodedCorpus, dict[str, Any]]:
    """An index folder -> (the encoded corpus, its fingerprint). Raises FileNotFoundError / ValueError."""
    from safetensors.torch import load_file

    path = Path(path)
    if not (path / "index.json").is_file() or not (path / "corpus.safetensors").is_file():
        raise FileNotFoundError(f"{path}: not a search index (needs index.json and corpus.safetensors)")
    meta = json.loads((path / "index.json").read_text(encoding="utf-8"))
    if meta.get("version") != INDEX_VERSION:
        raise ValueError(f"{path}/index.json: index version {meta.get('version')!r} is not {INDEX_VERSION}")
    t = load_file(str(path / "corpus.safetensors"), device=str(device))
    if t["frames"].shape[0] != len(meta["video_ids"]):
        raise ValueError(f"{path}: {t['frames'].shape[0]} encoded videos but {len(meta['video_ids'])} video ids")
    corpus = EncodedCorpus(frames=t["frames"], frame_mask=t["frame_mask"].bool(), video_ids=tuple(meta["video_ids"]),
                           frame_norms=t["frame_norms"], sub_embed=t.get("sub_embed"), frame_sub=t.get("frame_sub"))
    return corpus, meta["fingerprint"]


def _fingerprint(weights_sha: str, store: FeatureStore, videos: Sequence[str], max_frames: int) -> dict[str, Any]:
    """What an index depends on: the weights, each video's feature content key, the frames kept per video."""
    keys = hashlib.sha256(json.dumps([[v, store.videos.get(v, {}).get("key")] for v in videos]).encode()).hexdigest()
    return {"weights": weights_sha, "features": keys, "max_frames": max_frames}


def _videos(manifest: Manifest, videos: Sequence[str] | None) -> list[str]:
    videos = list(videos) if videos is not None else list(manifest.videos)
    missing = [v for v in videos if v not in manifest.videos]
    if missing or not videos:
        raise ValueError(f"videos not in the manifest: {missing[:5]}" if missing else "no videos to index")
    return videos


def encode_videos(model, manifest: Manifest, store: FeatureStore, tokenizer: TextTokenizer, videos: Sequence[str],
                  batch_size: int = 32, device: torch.device | str = "cpu") -> EncodedCorpus:
    """Every video of ``videos`` through ``model``'s encoder once, ``batch_size`` videos at a time."""
    max_frames = model.model_cfg.max_frames
    feats = VideoFeatures(manifest, store, tokenizer, video_ids=list(videos), max_frames=max_frames,
                          regions=model.model_cfg.regions)
    if feats.feature_dim != model.model_cfg.feature_dim:
        raise ValueError(f"{store.root}: {feats.feature_dim}-d features, the model expects "
                         f"{model.model_cfg.feature_dim}-d")
    batches = (collate_videos([feats.example(v) for v in videos[i:i + batch_size]], model.tokens, max_frames)
               for i in range(0, len(videos), batch_size))
    with torch.no_grad():
        corpus = model.encode_corpus(batches, device)
    log.info("encoded %d videos", len(videos))
    return corpus


class MomentSearcher:
    """A moment-retrieval model over an encoded corpus; ``search(query, top_k)`` -> ranked `Moment`s.

    Args:
        model: a ``hero.tasks`` moment_retrieval task model (eval mode is set here).
        corpus: the encoded corpus (`encode_videos`, `load_index`); its videos must be in ``manifest``.
        rank_cfg: the VCMR ranking (default the model's span rule, `MomentRetrievalConfig.span_rule`, with the
            corpus clip length and temporal NMS at IoU 0.5,
            so the list does not repeat one moment with shifted ends).
    """

    def __init__(self, model, manifest: Manifest, tokenizer: TextTokenizer, corpus: EncodedCorpus, *,
                 store: FeatureStore | None = None, rank_cfg: MomentRankConfig | None = None,
                 device: torch.device | str = "cpu", fingerprint: dict[str, Any] | None = None) -> None:
        if getattr(model, "name", None) != "moment_retrieval":
            got = getattr(model, "name", type(model).__name__)
            raise ValueError(f"search needs a moment_retrieval model, got {got!r}")
        unknown = [v for v in corpus.video_ids if v not in manifest.videos]
        if unknown:
            raise ValueError(f"the index holds videos the manifest lacks: {unknown[:5]}")
        self.model, self.manifest, self.tokenizer, self.corpus = model.to(device).eval(), manifest, tokenizer, corpus
        self.store, self.device, self.fingerprint = store, torch.device(device), fingerprint or {}
        self.rank_cfg = rank_cfg or model.cfg.span_rule(manifest.clip_len, nms_threshold=0.5)

    @classmethod
    def from_run_dir(cls, run_dir: str | Path, manifest: Manifest | str | Path, store: FeatureStore | str | Path,
                     tokenizer: TextTokenizer | str | None = None, videos: Sequence[str] | None = None, *,
                     index: str | Path | None = None, batch_size: int = 32, rank_cfg: MomentRankConfig | None = None,
                     device: torch.device | str = "cpu") -> "MomentSearcher":
        """Load a finished TVR-style finetuning job and index ``videos`` (default: every manifest video).

        With ``index``, a matching index there is loaded instead of encoding; otherwise the corpus is encoded
        and saved there. ``tokenizer`` defaults to the run's own (checked against its preset).
        Raises:
            FileNotFoundError: no run dir, no checkpoint in it, no manifest or feature store.
            ValueError: not a moment-retrieval run, unknown videos, features of the wrong dimension.
        """
        from hero.train.checkpoint import find_latest
        from hero.train.finetune import load_task_model

        run_dir = Path(run_dir)
        if not run_dir.is_dir():
            raise FileNotFoundError(f"{run_dir}: run directory does not exist")
        ck = find_latest(run_dir)
        if ck is None:
            raise FileNotFoundError(f"{run_dir}: no valid checkpoint (step-*/) in the run directory")
        if ck.meta.get("config", {}).get("task") not in ("tvr", "how2r", "didemo"):
            raise ValueError(f"{run_dir}: a {ck.meta.get('config', {}).get('task')!r} run; search needs a moment "
                             "retrieval (tvr/how2r/didemo) finetuning run")
        model, preset = load_task_model(run_dir, step=ck.step)
        manifest = manifest if isinstance(manifest, Manifest) else Manifest.load(manifest)
        store = store if isinstance(store, FeatureStore) else FeatureStore(store)
        tokenizer = tokenizer if isinstance(tokenizer, TextTokenizer) else preset_tokenizer(preset, tokenizer,
                                                                                             key="tokenizer")
        videos, model = _videos(manifest, videos), model.to(device).eval()
        weights = json.loads((ck.path / "manifest.json").read_text())["files"]["model.safetensors"]["sha256"]
        fp = _fingerprint(weights, store, videos, model.model_cfg.max_frames)
        if index is not None and (Path(index) / "index.json").is_file():
            try:
                corpus, saved = load_index(index, device)
            except Exception as err:  # a cache: an unreadable index is rebuilt, not fatal
                log.warning("%s: unreadable search index (%s); re-encoding", index, err)
                corpus, saved = None, None
            if corpus is not None and saved == fp and list(corpus.video_ids) == videos:
                log.info("loaded the search index %s (%d videos)", index, len(videos))
                return cls(model, manifest, tokenizer, corpus, store=store, rank_cfg=rank_cfg, device=device,
                           fingerprint=fp)
            if corpus is not None:
                log.warning("%s: the index was built from other weights, features or videos; re-encoding", index)
        corpus = encode_videos(model, manifest, store, tokenizer, videos, batch_size, device)
        if index is not None:
            save_index(index, corpus, fp)
            log.info("saved the search index to %s", index)
        return cls(model, manifest, tokenizer, corpus, store=store, rank_cfg=rank_cfg, device=device, fingerprint=fp)

    @classmethod
    def from_model(cls, model, manifest: Manifest, store: FeatureStore, tokenizer: TextTokenizer,
                   videos: Sequence[str] | None = None, *, batch_size: int = 32,
                   rank_cfg: MomentRankConfig | None = None, device: torch.device | str = "cpu") -> "MomentSearcher":
        """Index ``videos`` (default: every manifest video) with an already loaded model (no index folder)."""
        videos, model = _videos(manifest, videos), model.to(device).eval()
        corpus = encode_videos(model, manifest, store, tokenizer, videos, batch_size, device)
        return cls(model, manifest, tokenizer, corpus, store=store, rank_cfg=rank_cfg, device=device)

    def save(self, path: str | Path) -> Path:
        """Save the encoded corpus as an index folder (see `save_index`)."""
        return save_index(path, self.corpus, self.fingerprint)

    @torch.no_grad()
    def search(self, query: str, top_k: int = 10) -> list[Moment]:
        """The ``top_k`` best moments for ``query``, best first (fewer when the corpus has fewer spans).

        Raises:
            ValueError: an empty query (or one with no tokens), ``top_k < 1``.
        """
        text = normalize_text(query).strip() if isinstance(query, str) else ""
        if not text:
            raise ValueError("empty query: give a few words describing the moment to find")
        if top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        toks = self.model.tokens
        words = self.tokenizer.encode(text)
        if not words:
            raise ValueError(f"the query {query!r} has no tokens the model knows")
        ids, mask = pad_token_lists([[toks.cls] + words], toks.pad, self.model.cfg.max_query_len)
        k = max(top_k, self.rank_cfg.max_after_nms)
        cfg = dataclasses.replace(self.rank_cfg, max_after_nms=k, max_before_nms=max(k, self.rank_cfg.max_before_nms))
        vcmr = self.model.predict(ids.to(self.device), mask.to(self.device), self.corpus, cfg).vcmr
        out: list[Moment] = []
        for v, st, ed, sc in zip(vcmr.video[0].tolist(), vcmr.start[0].tolist(), vcmr.end[0].tolist(),
                                 vcmr.score[0].tolist()):
            if v < 0 or len(out) == top_k:
                break
            vid = self.corpus.video_ids[v]
            entry = self.manifest.videos[vid]
            st, ed = min(max(st, 0.0), entry.duration), min(ed, entry.duration)
            subs = tuple((str(t), float(s), float(e)) for t, s, e in entry.subs if s < ed and e > st)
            out.append(Moment(rank=len(out) + 1, video_id=vid, start=st, end=ed, score=float(sc),
                              duration=entry.duration, subtitles=subs))
        return out


def format_table(moments: Sequence[Moment], width: int = 60) -> str:
    """A plain-text table of the moments (rank, video, span, score, overlapping subtitles)."""
    rows = [("#", "video", "start", "end", "score", "subtitles")]
    for m in moments:
        subs = " / ".join(t for t, _, _ in m.subtitles)
        rows.append((str(m.rank), m.video_id, f"{m.start:.1f}", f"{m.end:.1f}", f"{m.score:.4g}",
                     subs if len(subs) <= width else subs[:width - 1] + "…"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1] for r in rows)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: search a corpus, print the ranked moments, optionally write the HTML report. Returns the exit code."""
    ap = argparse.ArgumentParser(prog="python -m hero.eval.search", description=__doc__.split("\n")[0])
    ap.add_argument("--run-dir", required=True, help="a finished moment-retrieval finetuning run")
    ap.add_argument("--manifest", required=True, help="the corpus manifest.json")
    ap.add_argument("--features", required=True, help="the feature store folder")
    ap.add_argument("--index", help="index folder: loaded when it matches, else written")
    ap.add_argument("--query", required=True)
    ap.add_argument("--top-k", type=int, default=10)
    ap.add_argument("--html", help="write the HTML report here")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--log-level", default="WARNING")
    args = ap.parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr, format="%(name)s: %(message)s")
    if not args.query.strip():
        print("error: empty query: give a few words describing the moment to find", file=sys.stderr)
        return 2
    try:
        searcher = MomentSearcher.from_run_dir(args.run_dir, args.manifest, args.features, index=args.index,
                                               device=args.device)
        moments = searcher.search(args.query, args.top_k)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"query: {args.query}\n{format_table(moments)}")
    if args.html:
        from hero.eval.search_report import write_search_report

        print(f"report: {write_search_report(args.html, args.query, moments, searcher.manifest, searcher.store)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
