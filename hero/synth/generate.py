"""Generate a synthetic corpus in the raw-corpus layout of docs/formats.md (the platform's default data).

Two domains share the layout, the annotation files and the generator: ``tv`` (a TV show: people in rooms acting
with everyday things, dialogue with speaker names) and ``instructional`` (how-to tutorials: a workspace seen from
above, tools working materials step by step, automatic-speech narration). They share no objects, actions,
colours or content words, and their video names differ (``synth_*`` vs ``howto_*``), so corpora can be mixed.
"""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from hero.config import ConfigError
from hero.storage.atomic import atomic_path
from hero.corpus.how2 import how2qa_line, how2r_line
from hero.synth import annotate as tv_annotate
from hero.synth import render as tv_render
from hero.synth.howto import annotate as howto_annotate
from hero.synth.howto import render as howto_render
from hero.synth.howto.script import Tutorial, write_tutorial
from hero.synth.render import encode_mp4
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
    domain: Literal["tv", "instructional"] = "tv"
    """What the videos show: a TV show (``tv``) or how-to tutorials (``instructional``)."""
    how2_csv: bool = False
    """Also write the instructional annotations as How2R / How2QA CSV (``annotations/how2r_<split>.csv``,
    ``how2qa_<split>.csv``; every video is a clip of a longer source video, as in HowTo100M)."""

    def __post_init__(self) -> None:
        if self.size not in SIZES:
            raise ConfigError(f"synth.size: unknown size {self.size!r} (known: {', '.join(SIZES)})")
        if self.domain not in DOMAINS:
            raise ConfigError(f"synth.domain: unknown domain {self.domain!r} (known: {', '.join(DOMAINS)})")
        if self.how2_csv and self.domain != "instructional":
            raise ConfigError("synth.how2_csv: only the instructional domain has How2R / How2QA annotations")
        if self.num_videos is not None and self.num_videos < 1:
            raise ConfigError(f"synth.num_videos: must be >= 1, got {self.num_videos}")
        if not 1 <= self.fps <= 60:
            raise ConfigError(f"synth.fps: must be in [1, 60], got {self.fps}")
        if self.width % 2 or self.height % 2 or self.width < 32 or self.height < 32:
            raise ConfigError(f"synth.width/height: must be even and >= 32, got {self.width}x{self.height}")


@dataclass(frozen=True)
class Domain:
    """What a domain plugs into the generator: its script writer, renderer, subtitle text and annotator."""

    write: Callable[[int, int, tuple[float, float], int], Any]
    """(seed, index, duration range, videos) -> the video's script (an object with ``vid_name``, ``split``,
    ``duration``, ``lines`` and ``to_dict()``)."""
    frames: Callable[[Any, int, tuple[int, int]], Iterator]
    subtitle: Callable[[Any], str]
    """A script line -> its subtitle text."""
    annotate: Callable[[Any, int, dict[str, int]], Iterator[tuple[str, dict, dict]]]


DOMAINS = {
    "tv": Domain(write_episode, tv_render.frames, lambda ln: f"{ln.speaker}: {ln.text}", tv_annotate.annotate),
    "instructional": Domain(write_tutorial, howto_render.frames, lambda ln: ln.text, howto_annotate.annotate),
}


def _srt(script: Episode | Tutorial, domain: Domain) -> str:
    import pysubs2

    doc = pysubs2.SSAFile()
    for ln in script.lines:
        doc.append(pysubs2.SSAEvent(start=int(round(ln.start * 1000)), end=int(round(ln.end * 1000)),
                                    text=domain.subtitle(ln)))
    return doc.to_string("srt")


def _make_video(args: tuple[str, int, int, int, tuple[float, float], int, tuple[int, int], str]) -> Episode | Tutorial:
    name, seed, index, n, durations, fps, size, root = args
    domain = DOMAINS[name]
    script = domain.write(seed, index, durations, n)
    encode_mp4(domain.frames(script, fps, size), os.path.join(root, "videos", f"{script.vid_name}.mp4"), fps)
    with open(os.path.join(root, "subtitles", f"{script.vid_name}.srt"), "w", encoding="utf-8") as f:
        f.write(_srt(script, domain))
    return script


def _how2_lines(task: str, rec: dict[str, Any], truth: dict[str, Any], tut: Tutorial) -> tuple[str, str] | None:
    """A tvr / tvqa record of a tutorial as a How2R / How2QA CSV line (times in the source video), or None."""
    cs = tut.clip_start
    st, ed = cs + truth["ts"][0], cs + truth["ts"][1]
    if task == "tvr":
        return "how2r", how2r_line(tut.video_id, (cs, cs + tut.duration), (st, ed), rec["desc"])
    if task == "tvqa":
        answers = [rec[f"a{i}"] for i in range(5)]
        wrong = [a for i, a in enumerate(answers) if i != rec["answer_idx"]][:3]
        return "how2qa", how2qa_line(tut.video_id, (st, ed), wrong, rec["q"], answers[rec["answer_idx"]])
    return None


def generate_corpus(out: str | os.PathLike, cfg: SynthConfig = SynthConfig(), *, overwrite: bool = False) -> dict:
    """Write a corpus to ``out``: videos/*.mp4, subtitles/*.srt, annotations/<task>_<split>.jsonl (and, with
    ``cfg.how2_csv``, annotations/how2r|how2qa_<split>.csv) and the ground truth under meta/ (episodes.jsonl: the
    scripts with their event or step logs; truth.jsonl: what each annotation refers to).

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
        jobs = [(cfg.domain, cfg.seed, i, n, durations, cfg.fps, (cfg.width, cfg.height), str(tmp)) for i in range(n)]
        if workers > 1 and n > 1:
            # fork: workers need no re-import of torch (spawn costs seconds per worker); they only use numpy + PyAV
            ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
            with ctx.Pool(workers) as pool:
                episodes = pool.map(_make_video, jobs, chunksize=max(1, n // (workers * 8)))
        else:
            episodes = [_make_video(j) for j in jobs]
        ids: dict[str, int] = {}
        files: dict[str, list[str]] = {}
        csv_files: dict[str, list[str]] = {}
        truth: list[str] = []
        for ep in episodes:
            for task, rec, gt in DOMAINS[cfg.domain].annotate(ep, cfg.seed, ids):
                files.setdefault(f"{task}_{ep.split}", []).append(json.dumps(rec))
                key = rec.get("desc_id", rec.get("qid", rec.get("clip_id")))
                truth.append(json.dumps({"task": task, "id": key, **gt}))
                how2 = _how2_lines(task, rec, gt, ep) if cfg.how2_csv else None
                if how2 is not None:
                    csv_files.setdefault(f"{how2[0]}_{ep.split}", []).append(how2[1])
        for name, lines in files.items():
            (tmp / "annotations" / f"{name}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
        for name, lines in csv_files.items():
            (tmp / "annotations" / f"{name}.csv").write_text("".join(lines), encoding="utf-8")
        (tmp / "meta" / "episodes.jsonl").write_text("\n".join(json.dumps(ep.to_dict()) for ep in episodes) + "\n")
        (tmp / "meta" / "truth.jsonl").write_text("\n".join(truth) + "\n")
        summary = {"videos": n, "seconds_of_video": sum(ep.duration for ep in episodes),
                   "annotations": {k: len(v) for k, v in sorted({**files, **csv_files}.items())}, "seed": cfg.seed,
                   "size": cfg.size}
        if cfg.domain != "tv":  # the tv corpus stays byte-identical to the one generated before domains existed
            summary["domain"] = cfg.domain
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
