"""Decode a video with PyAV into clips: per clip, one frame for the CNN and a fixed number of small frames for
motion and colour statistics.

Only the frames a clip needs are converted. The small motion frames come out of the decoder as YUV planes (a
plain copy) and are converted at the chroma resolution in one vectorized torch step (BT.601 limited range, what
swscale does for untagged yuv420p); the CNN frame goes through one reused swscale context.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from hero.corpus.errors import CorpusError


@dataclass(frozen=True, kw_only=True)
class DecodeSpec:
    """What an extractor needs from each clip."""

    image_size: int = 224
    """Side of the square CNN input: the clip's middle frame, resized (aspect ratio not kept)."""
    motion_size: tuple[int, int] = (80, 60)
    """(width, height) of the small frames used for frame differences and colour statistics."""
    motion_frames: int = 8
    """Small frames per clip, evenly spaced over the clip (repeated when the clip has fewer)."""


@dataclass
class ClipFrames:
    """One video's clips, RGB float in [0, 255].

    cnn:       [C, 3, S, S]       the middle frame of each clip at the CNN size
    motion:    [C, M, 3, h, w]    M frames spread over each clip at the motion size
    pair_mask: [C, M - 1] bool    True where motion frames m and m + 1 are different decoded frames
    """

    cnn: Tensor
    motion: Tensor
    pair_mask: Tensor

    @property
    def num_clips(self) -> int:
        return self.motion.shape[0]


def _yuv_to_rgb(y: Tensor, u: Tensor, v: Tensor) -> Tensor:
    """BT.601 limited range; y, u, v: [N, h, w] float -> [N, 3, h, w] in [0, 255]."""
    c, u, v = (y - 16.0) * 1.164, u - 128.0, v - 128.0
    return torch.stack([c + 1.596 * v, c - 0.392 * u - 0.813 * v, c + 2.017 * u], 1).clamp_(0, 255)


def _small_rgb(frames: list, width: int, height: int, reformatter) -> Tensor:
    """Frames -> [N, 3, height, width] RGB. For even-sized yuv420p the conversion runs at the chroma resolution
    (luma averaged 2x2) in one vectorized step, then an area resize; other formats go through swscale."""
    f0 = frames[0]
    if f0.format.name == "yuv420p" and f0.width % 2 == 0 and f0.height % 2 == 0:
        h, w, n = f0.height, f0.width, len(frames)
        planes = torch.from_numpy(np.stack([f.to_ndarray() for f in frames])).float()  # [N, H*3/2, W]
        y = F.avg_pool2d(planes[:, None, :h], 2)[:, 0]
        # after Y come the U and V planes, each [H/2, W/2] stored as H/4 rows of W values
        u = planes[:, h:h + h // 4].reshape(n, h // 2, w // 2)
        v = planes[:, h + h // 4:].reshape(n, h // 2, w // 2)
        return _resize(_yuv_to_rgb(y, u, v), height, width)
    arrays = [reformatter.reformat(f, width=width, height=height, format="rgb24").to_ndarray() for f in frames]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float()


def _cnn_rgb(frames: list, size: int, reformatter) -> Tensor:
    """Frames -> [N, 3, size, size] RGB through swscale (bilinear), one reused context."""
    arrays = [reformatter.reformat(f, width=size, height=size, format="rgb24", interpolation="BILINEAR").to_ndarray()
              for f in frames]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float()


def _resize(x: Tensor, height: int, width: int) -> Tensor:
    if x.shape[-2:] == (height, width):
        return x
    if height <= x.shape[-2] and width <= x.shape[-1]:
        return F.interpolate(x, size=(height, width), mode="area")
    return F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False)


def decode_clips(path: str, num_clips: int, clip_len: float, spec: DecodeSpec, file: str | None = None) -> ClipFrames:
    """Decode ``path`` once, streaming: the frame at time t belongs to clip floor(t / clip_len); when a clip ends,
    its frames are picked and converted and the rest released (memory: one clip of decoded frames). A clip with no
    frame of its own (frame rate below 1 / clip_len, or a short tail) reuses the nearest earlier clip's frames
    (the first clip with frames, for leading ones).

    Raises:
        CorpusError: ``video.undecodable`` if PyAV fails or the video has no frame.
    """
    import av
    from av.video.reformatter import VideoReformatter

    reformatter = VideoReformatter()
    M, (w, h) = spec.motion_frames, spec.motion_size
    done: dict[int, tuple[Tensor, Tensor, np.ndarray]] = {}  # clip -> (cnn [3,S,S], motion [M,3,h,w], pick)

    def finish(c: int, frames: list) -> None:
        pick = np.linspace(0, len(frames) - 1, M).round().astype(int)
        cnn = _cnn_rgb([frames[len(frames) // 2]], spec.image_size, reformatter)[0]
        done[c] = (cnn, _small_rgb([frames[i] for i in pick], w, h, reformatter), pick)

    try:
        with av.open(path) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            rate = float(stream.average_rate or 25)
            current, frames = -1, []
            for k, frame in enumerate(container.decode(stream)):
                t = frame.time if frame.time is not None else k / rate
                if t > num_clips * clip_len + 1e-3:
                    break
                c = min(max(int(t / clip_len + 1e-6), 0), num_clips - 1)  # a frame exactly at the end: last clip
                if c != current and frames:
                    finish(current, frames)
                    frames = []
                current = c
                frames.append(frame)
            if frames:
                finish(current, frames)
    except CorpusError:
        raise
    except Exception as err:  # PyAV errors, OSError, ...
        raise CorpusError(file or path, "video.undecodable", f"{type(err).__name__}: {err}") from None
    if not done:
        raise CorpusError(file or path, "video.undecodable", "no decodable frame")
    src, last = [], min(done)
    for c in range(num_clips):
        last = c if c in done else last
        src.append(last)
    cnn = torch.stack([done[s][0] for s in src])
    motion = torch.stack([done[s][1] for s in src])
    pairs = torch.from_numpy(np.stack([np.diff(done[s][2]) != 0 for s in src]))
    return ClipFrames(cnn=cnn, motion=motion, pair_mask=pairs)
