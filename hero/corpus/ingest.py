"""Ingest a raw corpus folder (docs/formats.md) into a `Manifest`: probe videos, parse and align subtitles, read
and check annotations. Bad input raises a `CorpusError` naming file, line and rule, or with
``on_error="skip"`` is logged, skipped and counted in the manifest's report."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from hero.config import ConfigError, to_dict
from hero.corpus.alignment import align_subtitles, count_clips
from hero.corpus.annotations import SPLITS, TASKS, known_datasets, parse_annotations
from hero.corpus.encoding import check_encoding, decode_text
from hero.corpus.errors import CorpusError, IngestReport, OnError
from hero.corpus.how2 import CSV_TASKS, parse_how2_csv
from hero.corpus.manifest import Manifest, VideoEntry
from hero.corpus.probe import file_sha256, probe_video
from hero.storage import Storage, open_storage
from hero.corpus.subtitles import Subtitle, parse_subtitle_text, parse_subtitles_jsonl, validate_subtitles

logger = logging.getLogger(__name__)

VIDEO_EXTS = (".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".mpg", ".mpeg")


@dataclass(frozen=True, kw_only=True)
class CorpusConfig:
    """Where a corpus lives and how to read it. A user's folder differs from the default only in these fields."""

    path: str
    """Corpus root: a local folder, a file:// URI or an s3://bucket/prefix URI (credentials from the AWS environment)."""
    clip_len: float = 1.5
    """Seconds per clip (one feature per clip; HERO: 1.5 for TV data)."""
    videos_dir: str = "videos"
    """Folder of the video files under ``path``, one `<vid_name>.<ext>` per video (searched recursively)."""
    subtitles_dir: str = "subtitles"
    """Per-video `<vid_name>.srt` / `.vtt` files (optional)."""
    subtitles_jsonl: str = "subtitles.jsonl"
    """TVR/TVQA-style subtitles file, used for videos with no .srt/.vtt (optional)."""
    annotations_dir: str = "annotations"
    """Folder of the annotation files under ``path``: `<dataset>_<split>.jsonl` (`.csv` for how2r / how2qa)."""
    tasks: tuple[str, ...] = TASKS
    """Task families to read; a missing `<task>_<split>.jsonl` (`.csv` for how2r / how2qa) is fine."""
    on_error: OnError = "raise"
    """`raise`: stop at the first bad input; `skip`: log it, skip the item and count it in the report."""
    encoding: str = "auto"
    """How annotation and subtitle files are decoded: `auto` (a byte-order mark, else UTF-8, else cp1252 when the
    whole file decodes under it and holds no UTF-8 sequence; counted as the note `text.cp1252_fallback`) or a
    Python codec (`utf-8`, `cp1252`, `latin-1`, ...). Bytes that do not decode break `text.bad_encoding`
    (`hero.corpus.encoding`)."""
    ts_tolerance: float = 0.1
    """Seconds an annotation's ts may run past the probed duration (container durations round)."""
    span_tolerance: float = 2.0
    """Seconds a How2R / How2QA span may run past its clip (the public files overrun 60-s clips by up to ~1.7 s);
    the overrun is cut off."""
    long_last_sub_s: float = 16.0
    """HERO's alignment rule: a last subtitle longer than this many seconds keeps only its first
    ``long_last_sub_clips`` clips (docs/hero-fidelity.md d.3)."""
    long_last_sub_clips: int = 11
    """Clips such a long last subtitle keeps (HERO: 11)."""
    video_exts: tuple[str, ...] = VIDEO_EXTS
    """File suffixes under ``videos_dir`` that are videos (compared case-blind); other files are ignored."""

    def __post_init__(self) -> None:
        if not self.clip_len > 0:
            raise ConfigError(f"corpus.clip_len: must be > 0, got {self.clip_len}")
        if self.on_error not in ("raise", "skip"):
            raise ConfigError(f"corpus.on_error: must be raise or skip, got {self.on_error!r}")
        try:
            check_encoding(self.encoding)
        except ValueError as err:
            raise ConfigError(f"corpus.encoding: {err}") from None
        for t in self.tasks:
            if t not in known_datasets():
                raise ConfigError(f"corpus.tasks: unknown task {t!r} (known: {', '.join(known_datasets())})")
        if self.ts_tolerance < 0:
            raise ConfigError(f"corpus.ts_tolerance: must be >= 0, got {self.ts_tolerance}")
        if self.span_tolerance < 0:
            raise ConfigError(f"corpus.span_tolerance: must be >= 0, got {self.span_tolerance}")


def _read_subtitles(storage: Storage, cfg: CorpusConfig, names: set[str], report: IngestReport) -> dict[str, tuple[str, list[Subtitle]]]:
    """vid_name -> (source file, subtitles as parsed, unvalidated). Per-video files win over subtitles.jsonl."""
    found: dict[str, tuple[str, list[Subtitle]]] = {}
    if storage.exists(cfg.subtitles_jsonl):
        file = storage.uri(cfg.subtitles_jsonl)
        data = storage.read_bytes(cfg.subtitles_jsonl)
        text = decode_text(data, file, cfg.encoding, report, cfg.on_error, by_line=True)
        for vid, subs, line in parse_subtitles_jsonl(text or "", file, report, cfg.on_error):
            if vid not in names:
                report.handle(CorpusError(file, "subtitle.missing_video", f"vid_name {vid!r} is not a video", line), cfg.on_error)
                continue
            found[vid] = (f"{file}:{line}", subs)
    for rel in storage.list_files(cfg.subtitles_dir):
        p = PurePosixPath(rel)
        fmt = {".srt": "srt", ".vtt": "vtt"}.get(p.suffix.lower())
        if fmt is None:
            continue
        file = storage.uri(rel)
        if p.stem not in names:
            report.handle(CorpusError(file, "subtitle.missing_video", f"no video named {p.stem!r}"), cfg.on_error)
            continue
        text = decode_text(storage.read_bytes(rel), file, cfg.encoding, report, cfg.on_error)
        if text is None:
            continue
        try:
            subs = parse_subtitle_text(text, file, fmt)
        except CorpusError as err:
            report.handle(err, cfg.on_error)
            continue
        found[p.stem] = (file, subs)
    return found


@dataclass(frozen=True)
class VideoInfo:
    """What ingestion needs of one video, however it was found: a probed file, or an entry of a features-only
    corpus (hero.features.prebuilt)."""

    path: str
    """Relative to the corpus root; "" when the video has no file (features only)."""
    sha256: str
    """Content hash: of the file's bytes, or of the video's feature bytes."""
    duration: float
    fps: float = 0.0
    """Frame rate of the file (0.0: unknown, features only)."""
    num_clips: int | None = None
    """Clips the video's features hold; None: ``count_clips(duration, clip_len)``."""


def _list_videos(storage: Storage, cfg: CorpusConfig, report: IngestReport) -> dict[str, str]:
    """vid_name -> relative path of each video file under ``cfg.videos_dir`` (duplicates reported)."""
    rels = [r for r in storage.list_files(cfg.videos_dir) if PurePosixPath(r).suffix.lower() in cfg.video_exts]
    by_name: dict[str, str] = {}
    for rel in rels:
        name = PurePosixPath(rel).stem
        if name in by_name:
            report.handle(CorpusError(storage.uri(rel), "video.duplicate_name",
                                      f"{name!r} is also {by_name[name]}"), cfg.on_error)
            continue
        by_name[name] = rel
    return by_name


def _probe_file(storage: Storage, rel: str) -> VideoInfo:
    local = storage.local_path(rel)
    info = probe_video(local, storage.uri(rel))
    return VideoInfo(path=rel, sha256=file_sha256(local), duration=info.duration, fps=info.fps)


def ingest_corpus(cfg: CorpusConfig, storage: Storage | None = None, *,
                  videos: Mapping[str, VideoInfo | CorpusError] | None = None,
                  features: dict[str, Any] | None = None, report: IngestReport | None = None) -> Manifest:
    """Read the corpus at ``cfg.path`` and return its manifest (nothing is written; see `write_manifest`).

    Args:
        videos: the corpus's videos when they are not files under ``cfg.videos_dir`` (a features-only corpus,
            `hero.features.prebuilt.ingest_features_corpus`): vid_name -> its `VideoInfo`, or the `CorpusError` that
            makes it a bad video (raised or skipped and counted, like a video that does not decode). None: probe
            the files under ``cfg.videos_dir``.
        features: recorded as ``Manifest.features`` (where a features-only corpus's features come from).
        report: a report to add to (what the caller already counted); default a new one.
    """
    t0 = time.perf_counter()
    storage = storage or open_storage(cfg.path)
    report = report or IngestReport()
    if videos is None:
        by_name = _list_videos(storage, cfg, report)
        names = list(by_name)
    else:
        names = list(videos)
    subtitles = _read_subtitles(storage, cfg, set(names), report)
    entries: dict[str, VideoEntry] = {}
    skipped: set[str] = set()
    for name in names:
        try:
            info = _probe_file(storage, by_name[name]) if videos is None else videos[name]
            if isinstance(info, CorpusError):
                raise info
        except CorpusError as err:
            report.handle(err, cfg.on_error)
            skipped.add(name)
            continue
        n = info.num_clips if info.num_clips is not None else count_clips(info.duration, cfg.clip_len)
        source, subs = subtitles.get(name, (None, []))
        subs = validate_subtitles(subs, source or name, report, cfg.on_error)
        al = align_subtitles([(s.start, s.end) for s in subs], n, cfg.clip_len,
                             long_last_sub_s=cfg.long_last_sub_s, long_last_sub_clips=cfg.long_last_sub_clips)
        kept = [s for s, k in zip(subs, al.kept) if k]
        if len(kept) < len(subs):
            report.note("subtitle.after_video_end", len(subs) - len(kept))
        entries[name] = VideoEntry(
            vid_name=name, path=info.path, sha256=info.sha256, duration=round(info.duration, 6), num_clips=n,
            fps=info.fps, subs=[[s.text, s.start, s.end] for s in kept], sub_clips=[list(c) for c in al.sub_clips],
            unmatched=list(al.unmatched), subtitle_source=source,
        )
    durations = {k: v.duration for k, v in entries.items()}
    tasks: dict[str, dict[str, list]] = {}
    for task in cfg.tasks:
        for split in SPLITS:
            rel = f"{cfg.annotations_dir}/{task}_{split}.{'csv' if task in CSV_TASKS else 'jsonl'}"
            if not storage.exists(rel):
                continue
            text = decode_text(storage.read_bytes(rel), storage.uri(rel), cfg.encoding, report, cfg.on_error,
                               by_line=True) or ""
            if task in CSV_TASKS:
                examples = parse_how2_csv(text, storage.uri(rel), task, durations, report, cfg.on_error, cfg.span_tolerance,
                                          frozenset(skipped))
            else:
                examples = parse_annotations(text, storage.uri(rel), task, split, durations, report, cfg.on_error,
                                             cfg.ts_tolerance, frozenset(skipped))
            tasks.setdefault(task, {})[split] = examples
    if not entries:
        where = f"{cfg.videos_dir}/" if videos is None else f"the features {(features or {}).get('source')}"
        logger.warning("%s: no usable video in %s", storage.root, where)
    logger.info("ingested %d videos, %d annotation files from %s in %.1fs (%d skipped)", len(entries),
                sum(len(s) for s in tasks.values()), storage.root, time.perf_counter() - t0, sum(report.skipped.values()))
    return Manifest(root=storage.root, clip_len=cfg.clip_len, videos=entries, tasks=tasks, report=report.to_dict(),
                    config=to_dict(cfg), features=features)


def write_manifest(manifest: Manifest, path: str | os.PathLike) -> None:
    """Write ``manifest`` as JSON atomically (a temp file, then os.replace)."""
    manifest.save(path)
