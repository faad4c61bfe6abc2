from collections import Counter

import pytest

from hero.tasks import TaskSampler


def test_follows_ratios():
    s = TaskSampler({"mlm": 2, "mfm_nce": 2, "fom": 1, "vsm": 2}, seed=3)
    counts = Counter(s.stream(0, 14000))
    for name, w in {"mlm": 2, "mfm_nce": 2, "fom": 1, "vsm": 2}.items():
        assert abs(counts[name] / 14000 - w / 7) < 0.015


def test_same_answer_everywhere_and_resumable():
    a = TaskSampler({"mlm": 2, "fom": 1}, seed=11)
    stream = a.stream(0, 200)
    b = TaskSampler({"mlm": 2, "fom": 1}, seed=0)
    b.load_state_dict(a.state_dict())                               # e.g. another rank, or a resumed run
    assert b.stream(120, 80) == stream[120:]
    assert TaskSampler({"mlm": 2, "fom": 1}, seed=12).stream(0, 200) != stream


def test_zero_ratio_never_drawn_and_changed_ratios_rejected():
    s = TaskSampler({"mlm": 1, "vsm": 0}, seed=0)
    assert set(s.stream(0, 500)) == {"mlm"}
    with pytest.raises(ValueError, match="ratios changed"):
        TaskSampler({"mlm": 1, "fom": 1}, seed=0).load_state_dict(s.state_dict())
