"""Hand-worked cases of HERO's subtitle -> clip alignment (docs/hero-fidelity.md d.3), clip length 1.5 s."""

import pytest

from hero.corpus.alignment import align_subtitles, count_clips


def test_count_clips():
    assert count_clips(6.0, 1.5) == 4
    assert count_clips(6.1, 1.5) == 5  # a partial last clip counts
    assert count_clips(0.2, 1.5) == 1
    assert count_clips(4.5000000001, 1.5) == 3  # float noise is not a clip


def test_each_clip_goes_to_the_subtitle_with_max_iou():
    # clips: 0=[0,1.5) 1=[1.5,3) 2=[3,4.5) 3=[4.5,6) 4=[6,7.5) 5=[7.5,9)
    # sub0 [0.3, 2.0] -> frame units [0.2, 1.333] covers clips 0,1; sub1 [2.4, 5.0] -> [1.6, 3.333] covers 1,2,3
    # IoU is taken against the whole subtitle span:
    # clip 1 = [1, 2]: IoU(sub0) = (1.333-1)/(2-0.2) = 0.185 ; IoU(sub1) = (2-1.6)/(3.333-1) = 0.171 -> sub0
    # clip 3: sub1 only. clips 4, 5: nobody -> unmatched
    al = align_subtitles([(0.3, 2.0), (2.4, 5.0)], num_clips=6, clip_len=1.5)
    assert al.sub_clips == ((0, 1), (2, 3))
    # move sub1 earlier to [2.1, 5.0] -> [1.4, 3.333]: IoU(clip 1) = 0.6/2.333 = 0.257 > 0.185 -> sub1
    al = align_subtitles([(0.3, 2.0), (2.1, 5.0)], num_clips=6, clip_len=1.5)
    assert al.sub_clips == ((0,), (1, 2, 3))
    assert al.unmatched == (4, 5)
    assert al.kept == (True, True)


def test_a_subtitle_can_end_with_no_clips_and_ties_go_to_the_earlier():
    # sub0 [1.5, 3.0] covers clip 1 exactly (IoU 1); sub1 [2.0, 2.5] inside clip 1 (IoU 1/3) -> sub1 gets nothing.
    # sub2 [4.5, 6.0] and sub3 [4.5, 6.0]: identical -> clip 3 goes to sub2 (the earlier).
    al = align_subtitles([(1.5, 3.0), (2.0, 2.5), (4.5, 6.0), (4.5, 6.0)], num_clips=4, clip_len=1.5)
    assert al.sub_clips == ((1,), (), (3,), ())
    assert al.unmatched == (0, 2)


def test_subtitles_after_the_video_end_are_dropped_and_clips_past_the_end_ignored():
    # 3 clips = 4.5 s. sub0 [3.5, 9.0] covers clips 2..5 -> only clip 2 exists. sub1 starts at 4.5 = the end -> dropped.
    al = align_subtitles([(3.5, 9.0), (4.5, 5.0)], num_clips=3, clip_len=1.5)
    assert al.kept == (True, False)
    assert al.sub_clips == ((2,),)
    assert al.unmatched == (0, 1)


def test_long_last_subtitle_is_cut_to_11_clips():
    # last sub [0, 30] on a 40-clip video: 20 clips covered, longer than 16 s -> only clips 0..10
    al = align_subtitles([(0.0, 30.0)], num_clips=40, clip_len=1.5)
    assert al.sub_clips == (tuple(range(11)),)
    # the same span not last is kept whole
    al = align_subtitles([(0.0, 30.0), (31.0, 32.0)], num_clips=40, clip_len=1.5)
    assert al.sub_clips[0] == tuple(range(20))


@pytest.mark.parametrize("clip_len", [1.0, 2.0])
def test_clip_length_is_configurable(clip_len):
    al = align_subtitles([(0.5, 2.5)], num_clips=4, clip_len=clip_len)
    expected = (0, 1, 2) if clip_len == 1.0 else (0, 1)
    assert al.sub_clips == (expected,)
