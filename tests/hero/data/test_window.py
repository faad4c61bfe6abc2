"""An example's clip (hero.data.window): the frames around ``ts``, their subtitles, ``ts`` relative to the clip."""

import pytest
import torch

from hero.data.task_collate import span_labels
from hero.data.window import crop_example, window_frames

SEP = 2


def video(T=20):
    feats = torch.arange(T, dtype=torch.float32)[:, None].repeat(1, 3)
    # sub0 frames 0-2, sub1 3-5, frames 6-9 unmatched, sub2 10-12, sub3 13-19
    return {"video_id": "v", "frame_feats": feats,
            "sub_ids": [[SEP, 10], [SEP, 11], [SEP, 12], [SEP, 13]],
            "sub_frames": [[0, 1, 2], [3, 4, 5], [10, 11, 12], list(range(13, 20))]}


def test_window_frames_overlap_rule():
    # frame f covers [1.5 f, 1.5 (f + 1)): [4.5, 6.0] touches frames 3 (4.5-6.0) and, at 6.0 exactly, not 4
    assert window_frames([4.5, 6.0], 20, 1.5, 0.0) == (3, 4)
    assert window_frames([4.6, 6.1], 20, 1.5, 0.0) == (3, 5)
    # context on both sides, clamped to the video
    assert window_frames([4.5, 6.0], 20, 1.5, 1.5) == (2, 5)
    assert window_frames([0.0, 1.0], 20, 1.5, 10.0) == (0, 8)
    assert window_frames([28.0, 40.0], 20, 1.5, 0.0) == (18, 20)
    # a span past the end still yields one frame (the last)
    assert window_frames([35.0, 36.0], 20, 1.5, 0.0) == (19, 20)
    # a zero-length span yields one frame
    assert window_frames([3.0, 3.0], 20, 1.5, 0.0) == (2, 3)
    with pytest.raises(ValueError, match="window"):
        window_frames([1, 2], 20, 1.5, -1.0)


def test_crop_keeps_the_clip_frames_and_their_subtitles():
    clip, ts = crop_example(video(), [4.6, 9.0], 1.5, 0.0, SEP)
    # frames 3..5 (sub1): ts[1] = 9.0 is where frame 5 ends, so unmatched frame 6 stays out
    assert clip["frame_feats"][:, 0].tolist() == [3, 4, 5]
    assert clip["sub_ids"] == [[SEP, 11]] and clip["sub_frames"] == [[0, 1, 2]]
    assert ts == pytest.approx([4.6 - 4.5, 9.0 - 4.5])
    assert clip["video_id"] == "v[3:6]"


def test_crop_cuts_a_subtitle_at_the_clip_edge_and_renumbers():
    clip, ts = crop_example(video(), [3.2, 15.5], 1.5, 0.0, SEP)  # frames 2..10
    assert clip["frame_feats"][:, 0].tolist() == list(range(2, 11))
    assert clip["sub_ids"] == [[SEP, 10], [SEP, 11], [SEP, 12]]
    assert clip["sub_frames"] == [[0], [1, 2, 3], [8]]
    # span targets land on the same frames as in the whole video, relative to the clip's first frame
    n = clip["frame_feats"].shape[0]
    st, ed = span_labels(ts, n, 1.5)
    st_full, ed_full = span_labels([3.2, 15.5], 20, 1.5)
    assert (st + 2, ed + 2) == (st_full, ed_full)


def test_clip_without_subtitles_becomes_video_only():
    clip, _ = crop_example(video(), [10.0, 13.0], 1.5, 0.0, SEP)  # frames 6..8: unmatched only
    assert clip["frame_feats"].shape[0] == 3
    assert clip["sub_ids"] == [[SEP]] and clip["sub_frames"] == [[0, 1, 2]]


def test_two_clips_of_one_video_are_two_videos_to_the_collates():
    from hero.data.task_collate import unique_videos

    a, _ = crop_example(video(), [0.0, 2.0], 1.5, 0.0, SEP)
    b, _ = crop_example(video(), [15.0, 18.0], 1.5, 0.0, SEP)
    c, _ = crop_example(video(), [0.0, 2.0], 1.5, 0.0, SEP)
    kept, index = unique_videos([a, b, c])
    assert len(kept) == 2 and index.tolist() == [0, 1, 0]
