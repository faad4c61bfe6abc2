import numpy as np
import pytest

from hero.corpus.errors import CorpusError
from hero.features.decode import DecodeSpec, decode_clips
from hero.synth.render import encode_mp4


def _video(path, n, fps):
    """Frame i is a flat grey of level 30 * i + 10 (so a clip's frames can be told apart)."""
    frames = (np.full((64, 96, 3), 30 * i + 10, np.uint8) for i in range(n))
    encode_mp4(frames, str(path), fps, crf=0)
    return str(path)


def test_frames_go_to_their_clip_and_empty_clips_reuse_the_previous(tmp_path):
    # 4 frames at 1 fps (t = 0, 1, 2, 3); clips of 1.5 s: [0,1.5) [1.5,3) [3,4.5) [4.5,6) [6,7.5)
    # -> frames 0, 1 in clip 0; frame 2 in clip 1; frame 3 in clip 2; clips 3, 4 have none
    path = _video(tmp_path / "v.mp4", 4, fps=1)
    clips = decode_clips(path, 3, 1.5, DecodeSpec(image_size=32, motion_size=(48, 32), motion_frames=4))
    levels = [round(float(clips.cnn[c].mean())) for c in range(3)]
    assert levels == pytest.approx([40, 70, 100], abs=3)  # the middle frame of clip 0 is frame 1
    assert clips.motion.shape == (3, 4, 3, 32, 48)
    assert clips.pair_mask[0].tolist() == [False, True, False]  # frames 0,0,1,1 -> one real difference
    assert not clips.pair_mask[1].any()  # a single frame: no difference at all
    more = decode_clips(path, 5, 1.5, DecodeSpec(image_size=32, motion_size=(48, 32), motion_frames=4))
    assert [round(float(more.cnn[c].mean())) for c in range(5)] == pytest.approx([40, 70, 100, 100, 100], abs=3)


def test_undecodable(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00\x01" * 500)
    with pytest.raises(CorpusError, match=r"bad.mp4: \[video.undecodable\]"):
        decode_clips(str(bad), 3, 1.5, DecodeSpec())
