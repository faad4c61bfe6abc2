"""Same seed, same bytes: a synthetic corpus is a function of its seed and options alone — not of the worker count,
the process, what else is in memory, or the CPU's SIMD family (the video encoder is pinned to settings whose output
x264 guarantees across CPUs; these tests check that guarantee on the machine at hand by forcing x264 down to its
portable C code and to the SSE2 / AVX2 kernel sets, as other CPUs would run it)."""

import hashlib
import platform
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from hero.synth import SynthConfig, generate_corpus
from hero.synth.generate import DOMAINS
from hero.synth.render import encode_mp4, rgb_to_yuv420p


def _digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(p.relative_to(root).as_posix().encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def _file_digest(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    line = next((ln for ln in text.splitlines() if ln.startswith("flags")), "")
    return set(line.split(":", 1)[-1].split())


def _kernel_sets() -> list[str]:
    """x264 CPU feature sets this machine can run: its own best ("auto"), none ("0"), and on x86-64 the SSE2 baseline
    and the AVX2 set of an AVX2-only machine (only where this CPU has AVX2: asking for more than it has would crash)."""
    sets = ["auto", "0"]
    if platform.machine() in ("x86_64", "AMD64"):
        sets.append("MMX2,SSE,SSE2")
        if {"avx2", "fma", "bmi2"} <= _cpu_flags():
            sets.append("MMX2,SSE,SSE2,SSE3,SSSE3,SSE4.1,SSE4.2,AVX,FMA3,BMI1,BMI2,AVX2,LZCNT")
    return sets


@pytest.fixture(scope="module")
def episode_frames():
    domain = DOMAINS["instructional"]
    return list(domain.frames(domain.write(5, 1, (12.0, 18.0), 4), 8, (160, 120)))


def test_video_bytes_are_the_same_for_every_cpu_kernel_set(episode_frames, tmp_path):
    digests = {}
    for i, asm in enumerate(_kernel_sets()):
        path = tmp_path / f"{i}.mp4"
        encode_mp4(iter(episode_frames), str(path), 8, x264_asm=asm)
        digests[asm] = _file_digest(path)
    assert len(set(digests.values())) == 1, digests


def test_video_bytes_do_not_depend_on_memory_state(episode_frames, tmp_path):
    """The unpinned encoder changed its output between two encodes of the same frames in one process on AVX-512
    machines (its SIMD macroblock-tree code): encode repeatedly with differently filled heaps in between."""
    rng = np.random.default_rng(0)
    digests = set()
    for i in range(4):
        junk = [rng.integers(0, 256, int(rng.integers(1, 200_000)), dtype=np.uint8) for _ in range(8 * i)]
        frames = [np.ascontiguousarray(f) for f in episode_frames]
        encode_mp4(iter(frames), str(tmp_path / f"{i}.mp4"), 8)
        digests.add(_file_digest(tmp_path / f"{i}.mp4"))
        del junk
    assert len(digests) == 1


def test_rgb_to_yuv420p_is_bt601_limited_range():
    def yuv(rgb):
        out = rgb_to_yuv420p(np.full((2, 2, 3), rgb, np.uint8))
        return out[:2].ravel().tolist(), int(out[2, 0]), int(out[2, 1])  # Y of the 4 pixels, U, V

    assert yuv((255, 255, 255)) == ([235] * 4, 128, 128)
    assert yuv((0, 0, 0)) == ([16] * 4, 128, 128)
    assert yuv((255, 0, 0)) == ([82] * 4, 90, 240)  # the BT.601 studio-swing red
    with pytest.raises(ValueError, match="even"):
        rgb_to_yuv420p(np.zeros((3, 4, 3), np.uint8))


def test_decoded_colours_are_the_rendered_ones(episode_frames, tmp_path):
    """What a decoder shows is what was drawn (lossless encode: only the colour conversion is left)."""
    path = tmp_path / "v.mp4"
    encode_mp4(iter(episode_frames[:4]), str(path), 8, crf=0)
    with av.open(str(path)) as c:
        decoded = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(decoded) == 4
    err = np.abs(decoded[0].astype(int) - episode_frames[0].astype(int))
    assert np.median(err) <= 2 and err.mean() < 3  # rounding of two conversions; chroma edges are subsampled


@pytest.mark.parametrize("domain", ["tv", "instructional"])
def test_corpus_is_the_same_for_any_worker_count_and_process(domain, tmp_path):
    def cfg(workers):
        return SynthConfig(size="tiny", seed=7, num_videos=5, workers=workers, domain=domain)

    digests = {}
    for w in (1, 2, 4):
        generate_corpus(tmp_path / f"w{w}", cfg(w))
        digests[f"workers={w}"] = _digest(tmp_path / f"w{w}")
    out = tmp_path / "subprocess"
    subprocess.run([sys.executable, "-m", "hero.synth", "--out", str(out), "--size", "tiny", "--seed", "7",
                    "--num-videos", "5", "--workers", "2", "--domain", domain], check=True, capture_output=True)
    digests["another process"] = _digest(out)
    assert len(set(digests.values())) == 1, digests
    generate_corpus(tmp_path / "seed8", SynthConfig(size="tiny", seed=8, num_videos=5, workers=1, domain=domain))
    assert _digest(tmp_path / "seed8") != digests["workers=1"]


def test_no_temporary_file_is_left_behind(episode_frames, tmp_path):
    encode_mp4(iter(episode_frames[:2]), str(tmp_path / "v.mp4"), 8)
    assert [p.name for p in tmp_path.iterdir()] == ["v.mp4"]
    with pytest.raises(ValueError):
        encode_mp4(iter([episode_frames[0], np.zeros((3, 4, 3), np.uint8)]), str(tmp_path / "bad.mp4"), 8)
    assert [p.name for p in tmp_path.iterdir()] == ["v.mp4"]  # a failed encode leaves nothing, not half a file


PINNED = {  # sha256 over (relative path, bytes) of every file; seed 7, 3 videos, tiny, workers 1
    "tv": "e67a433967e9a0b00c1a0ce1831579ffa9488558e5376b8d4f75e1f1df40b0d3",
    "instructional": "944e3c522eb5f53fae3ce2903281dd2453579754d748f23697c198e8c7bc1eff",
}
"""Taken on an AVX-512 machine with PyAV 18.1.0 (its bundled FFmpeg and x264). Every machine with that PyAV, AVX2-only
or AVX-512, gives these bytes; another PyAV release may encode differently, which this test then says."""


@pytest.mark.parametrize("domain", sorted(PINNED))
def test_corpus_bytes_equal_the_pinned_digest(domain, tmp_path):
    if av.__version__ != "18.1.0":
        pytest.skip(f"digests were taken with PyAV 18.1.0 (constraints.txt); this is {av.__version__}")
    generate_corpus(tmp_path / "c", SynthConfig(size="tiny", seed=7, num_videos=3, workers=1, domain=domain))
    assert _digest(tmp_path / "c") == PINNED[domain]
