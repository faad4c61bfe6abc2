"""The corpus manifest: per video duration, clips and subtitle->clip alignment; per task normalized examples."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hero.storage.atomic import write_json_atomic
from hero.storage import is_remote, join_uri, local_file

MANIFEST_VERSION = 1


@dataclass(frozen=True)
class VideoEntry:
    """One video. ``subs[i] = [text, start, end]`` and ``sub_clips[i]`` its aligned clips (HERO d.3)."""

    vid_name: str
    path: str
    """Relative to the corpus root (forward slashes); "" for a video of a features-only corpus (no file)."""
    sha256: str
    """Content hash: of the video file, or for a features-only corpus of the video's feature bytes."""
    duration: float
    num_clips: int
    fps: float
    subs: list[list[Any]]
    sub_clips: list[list[int]]
    unmatched: list[int]
    subtitle_source: str | None = None


@dataclass
class Manifest:
    """What ingestion found. ``tasks[task][split]`` is a list of normalized examples (hero.corpus.annotations)."""

    root: str
    """The corpus: a local folder or an ``s3://bucket/prefix`` URI (never credentials: those stay in the AWS
    environment)."""
    clip_len: float
    videos: dict[str, VideoEntry]
    tasks: dict[str, dict[str, list[dict[str, Any]]]] = field(default_factory=dict)
    report: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    features: dict[str, Any] | None = None
    """A features-only corpus: where its videos' features come from (``{"source", "kind", "clip_len", "dim",
    "video2dur", ...}``, `hero.features.prebuilt`); the features stage imports them instead of extracting. None: the
    videos are files."""

    def to_dict(self) -> dict[str, Any]:
        d = {
            "version": MANIFEST_VERSION, "root": self.root, "clip_len": self.clip_len, "config": self.config,
            "videos": {k: asdict(v) for k, v in self.videos.items()}, "tasks": self.tasks, "report": self.report,
        }
        if self.features is not None:  # only a features-only corpus: other manifests keep their bytes
            d["features"] = self.features
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Manifest:
        if d.get("version") != MANIFEST_VERSION:
            raise ValueError(f"manifest version {d.get('version')!r} is not {MANIFEST_VERSION}")
        videos = {k: VideoEntry(**v) for k, v in d["videos"].items()}
        return cls(root=d["root"], clip_len=d["clip_len"], videos=videos, tasks=d.get("tasks", {}),
                   report=d.get("report", {}), config=d.get("config", {}), features=d.get("features"))

    def save(self, path: str | Path) -> None:
        """Write the manifest as JSON, whole or not at all."""
        write_json_atomic(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> Manifest:
        """Read a manifest; a file that is not a whole one fails with one line naming it."""
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: not a whole manifest (JSON error at line {err.lineno}, column {err.colno}: "
                             f"{err.msg}); delete it and ingest again") from None
        try:
            return cls.from_dict(data)
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"{path}: not a manifest of this version ({type(err).__name__}: {err})") from None

    def split_videos(self, split: str) -> list[str]:
        """Videos named by any task's examples of ``split``, in manifest order."""
        named = {ex["vid_name"] for per_split in self.tasks.values() for ex in per_split.get(split, []) if ex.get("vid_name")}
        return [v for v in self.videos if v in named]

    def video_uri(self, vid_name: str) -> str:
        """Where the video lives: a local path, or ``s3://bucket/prefix/videos/<name>`` (how errors name it)."""
        return join_uri(self.root, self.videos[vid_name].path)

    def video_path(self, vid_name: str) -> str:
        """A local file holding the video, for PyAV: the file itself, or for an ``s3://`` corpus its copy in the
        local cache (`hero.storage.local_file`: downloaded on first use, reused while the object's ETag stays the
        same). The copy has the object's bytes, so the entry's ``sha256`` (the feature store's content address)
        still holds.

        Raises:
            FileNotFoundError: the corpus is features-only (its videos have no file).
        """
        if not self.videos[vid_name].path:
            raise FileNotFoundError(f"{vid_name}: a video of a features-only corpus has no file")
        uri = self.video_uri(vid_name)
        return local_file(uri) if is_remote(uri) else uri
