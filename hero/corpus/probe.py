"""Probe a video with PyAV: duration, frame rate, size, and proof that it decodes."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from hero.corpus.errors import CorpusError


@dataclass(frozen=True)
class VideoInfo:
    duration: float
    """Seconds (stream duration, else container duration, else last decoded frame's end)."""
    fps: float
    width: int
    height: int


def probe_video(path: str, file: str | None = None) -> VideoInfo:
    """Open ``path``, decode its first frame and read its duration.

    Raises:
        CorpusError: rule ``video.undecodable`` naming ``file`` (default: ``path``).
    """
    import av

    file = file or path
    try:
        with av.open(path) as container:
            if not container.streams.video:
                raise CorpusError(file, "video.undecodable", "no video stream")
            stream = container.streams.video[0]
            first = next(container.decode(stream), None)
            if first is None:
                raise CorpusError(file, "video.undecodable", "the video stream holds no decodable frame")
            fps = float(stream.average_rate or stream.guessed_rate or 0.0)
            if stream.duration is not None and stream.time_base is not None:
                duration = float(stream.duration * stream.time_base)
            elif container.duration is not None:
                duration = container.duration / 1_000_000
            else:
                last = first
                for last in container.decode(stream):
                    pass
                duration = float(last.time or 0.0) + (1.0 / fps if fps else 0.0)
            width, height = first.width, first.height
    except CorpusError:
        raise
    except Exception as err:  # PyAV raises FFmpegError subclasses, OSError, StopIteration, ...
        raise CorpusError(file, "video.undecodable", f"{type(err).__name__}: {err}") from None
    if not duration > 0:
        raise CorpusError(file, "video.undecodable", f"duration {duration} is not positive")
    return VideoInfo(duration=duration, fps=fps, width=width, height=height)


def file_sha256(path: str, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes (the video's content address)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
