"""Generate a synthetic corpus in the raw-corpus layout of DESIGN.md §4 (the platform's default data)."""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from hero.config import ConfigError
from hero.corpus.atomic import atomic_path
from hero.synth.annotate import annotate
from hero.synth.render import encode_mp4, frames
from hero.synth.script import Episode, write_episode

logger = logging.getLogger(__name__)

SIZES = {  # name: (videos, duration range in seconds)
    "tiny": (12, (12.0, 18.0)),
    "demo": (300, (24.0, 40.0)),
    "large": (3000, (30.0, 60.0)),
}


@dataclass(frozen=True, kw_only=True)
class SynthConfig:
    size: Literal["tiny", "demo", "large"] = "demo"
    seed: int = 0
    num_videos: int | None = None
    """Overrides the size's video count."""
    fps: int = 8
    width: int = 160
    height: int = 120
    workers: int | None = None
    """Processes that render and encode (default: 1 below 24 videos, else min(cpu count, 4)); the output does not
    depend on it."""

    def __post_init__(self) -> None:
        if self.size not in SIZES:
            raise ConfigError(f"synth.size: unknown size {self.size!r} (known: {', '.join(SIZES)})")
        if self.num_videos is not None and self.num_videos < 1:
            raise ConfigError(f"synth.num_videos: must be >= 1, got {self.num_videos}")
        if not 1 <= self.fps <= 60:
            raise ConfigError(f"synth.fps: must be in [1, 60], got {self.fps}")
        if self.width % 2 or self.height % 2 or self.width < 32 or self.height < 32:
            raise ConfigError(f"synth.width/height: must be even and >= 32, got {self.width}x{self.height}")


def _srt(ep: Episode) -> str:
    import pysubs2

    doc = pysubs2.SSAFile()
    for ln in ep.lines:
        doc.append(pysubs2.SSAEvent(start=int(round(ln.start * 1000)), end=int(round(ln.end * 1000)),
                                    text=f"{ln.speaker}: {ln.text}"))
    return doc.to_string("srt")


def _make_video(args: tuple[int, int, int, tuple[float, float], int, tuple[int, int], str]) -> Episode:
    seed, index, n, durations, fps, size, root = args
    ep = write_episode(seed, index, durations, n)
    encode_mp4(frames(ep, fps, size), os.path.join(root, "videos", f"{ep.vid_name}.mp4"), fps)
    with open(os.path.join(root, "subtitles", f"{ep.vid_name}.srt"), "w", encoding="utf-8") as f:
        f.write(_srt(ep))
    return ep


def generate_corpus(out: str | os.PathLike, cfg: SynthConfig = SynthConfig(), *, overwrite: bool = False) -> dict:
    """Write a corpus to ``out``: videos/*.mp4, subtitles/*.srt, annotations/<task>_<split>.jsonl and the ground
    truth under meta/ (episodes.jsonl: the event logs; truth.jsonl: what each annotation refers to).

    The folder appears whole or not at all (built under a temporary name, then renamed).
    Returns a summary dict (videos, clips of 1.5 s, annotation counts, seconds).
    """
    t0 = time.perf_counter()
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(f"{out}: exists and is not empty (pass overwrite=True / --overwrite)")
    n, durations = SIZES[cfg.size]
    n = cfg.num_videos or n
    workers = cfg.workers or (1 if n < 24 else min(os.cpu_count() or 1, 4))
    with atomic_path(out) as tmp:
        for sub in ("videos", "subtitles", "annotations", "meta"):
            (tmp / sub).mkdir(parents=True)
        jobs = [(cfg.seed, i, n, durations, cfg.fps, (cfg.width, cfg.height), str(tmp)) for i in range(n)]
        if workers > 1 and n > 1:
            # fork: workers need no re-import of torch (spawn costs seconds per worker); they only use numpy + PyAV
            ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
            with ctx.Pool(workers) as pool:
                episodes = pool.map(_make_video, jobs, chunksize=max(1, n // (workers * 8)))
        else:
            episodes = [_make_video(j) for j in jobs]
        ids: dict[str, int] = {}
        files: dict[str, list[str]] = {}
        truth: list[str] = []
        for ep in episodes:
            for task, rec, gt in annotate(ep, cfg.seed, ids):
                files.setdefault(f"{task}_{ep.split}", []).append(json.dumps(rec))
                key = rec.get("desc_id", rec.get("qid", rec.get("clip_id")))
                truth.append(json.dumps({"task": task, "id": key, **gt}))
        for name, lines in files.items():
            (tmp / "annotations" / f"{name}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
        (tmp / "meta" / "episodes.jsonl").write_text("\n".join(json.dumps(ep.to_dict()) for ep in episodes) + "\n")
        (tmp / "meta" / "truth.jsonl").write_text("\n".join(truth) + "\n")
        summary = {"videos": n, "seconds_of_video": sum(ep.duration for ep in episodes),
                   "annotations": {k: len(v) for k, v in sorted(files.items())}, "seed": cfg.seed, "size": cfg.size}
        (tmp / "meta" / "config.json").write_text(json.dumps({**summary, "fps": cfg.fps, "width": cfg.width,
                                                              "height": cfg.height}, indent=1) + "\n")
        if out.exists():
            shutil.rmtree(out) if out.is_dir() else out.unlink()
    summary["elapsed_s"] = round(time.perf_counter() - t0, 2)
    logger.info("wrote %d videos (%.0f s of video) to %s in %.1fs", n, summary["seconds_of_video"], out, summary["elapsed_s"])
    return summary


def load_episodes(root: str | os.PathLike) -> list[dict]:
    """The generator's event logs (meta/episodes.jsonl) as plain dicts."""
    with open(Path(root, "meta", "episodes.jsonl"), encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
