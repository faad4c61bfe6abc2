"""Masking, shuffling and query sampling: ratios, invariants, determinism."""

import torch

from hero.data.masking import mask_frames, mask_tokens, sample_queries, shuffle_frames


def _g(seed=0):
    return torch.Generator().manual_seed(seed)


def test_mask_tokens_ratios_and_invariants():
    ids = torch.randint(10, 1000, (400, 50), generator=_g(1))
    maskable = torch.ones_like(ids, dtype=torch.bool)
    maskable[:, 0] = False
    maskable[:, 40:] = False  # padding
    out, labels = mask_tokens(ids, maskable, prob=0.15, mask_id=3, random_range=(10, 1000), generator=_g())
    sel = labels >= 0
    assert not sel[~maskable].any()
    assert sel.sum(1).min() >= 1                                   # at least one per subtitle
    assert abs(sel.float().sum() / maskable.sum() - 0.15) < 0.01
    assert (labels[sel] == ids[sel]).all()
    masked = (out == 3) & sel
    kept = (out == ids) & sel
    frac_mask, frac_kept = masked.sum() / sel.sum(), kept.sum() / sel.sum()
    assert abs(frac_mask - 0.8) < 0.03
    assert 0.07 < frac_kept < 0.14                                  # 10% kept + random draws equal to the original
    assert (out[~sel] == ids[~sel]).all()


def test_mask_tokens_forces_one_even_for_short_rows():
    ids = torch.tensor([[2, 50, 1, 1], [2, 60, 61, 1]])
    maskable = torch.tensor([[False, True, False, False], [False, True, True, False]])
    for seed in range(20):
        _, labels = mask_tokens(ids, maskable, prob=0.01, mask_id=3, random_range=(10, 100), generator=_g(seed))
        assert ((labels >= 0).sum(1) >= 1).all()
        assert labels[0, 1] == 50


def test_masking_is_deterministic_by_generator():
    ids = torch.randint(10, 1000, (30, 20), generator=_g(1))
    m = torch.ones_like(ids, dtype=torch.bool)
    a = mask_tokens(ids, m, prob=0.15, mask_id=3, random_range=(10, 1000), generator=_g(5))
    b = mask_tokens(ids, m, prob=0.15, mask_id=3, random_range=(10, 1000), generator=_g(5))
    c = mask_tokens(ids, m, prob=0.15, mask_id=3, random_range=(10, 1000), generator=_g(6))
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(a[1], c[1])


def test_mask_frames_ratio_padding_and_at_least_one():
    fm = torch.zeros(300, 60, dtype=torch.bool)
    fm[:, :45] = True
    fm[0, :] = False
    fm[0, 0] = True                                                 # a one-frame video
    m = mask_frames(fm, prob=0.15, generator=_g())
    assert not m[~fm].any()
    assert (m.sum(1) >= 1).all()
    assert abs(m[1:].float().sum() / fm[1:].sum() - 0.15) < 0.01
    assert torch.equal(m, mask_frames(fm, prob=0.15, generator=_g()))


def test_shuffle_frames_is_a_permutation_of_selected_positions():
    fm = torch.zeros(50, 30, dtype=torch.bool)
    fm[:, :25] = True
    perm, targets = shuffle_frames(fm, prob=0.15, generator=_g())
    for b in range(50):
        assert sorted(perm[b].tolist()) == list(range(30))
        sel = targets[b] >= 0
        assert sel.sum() >= 2 and not sel[25:].any()
        assert torch.equal(perm[b][~sel], torch.arange(30)[~sel])   # untouched elsewhere
        assert torch.equal(targets[b][sel], perm[b][sel])           # target = original index of the frame now there
        assert set(perm[b][sel].tolist()) == set(torch.arange(30)[sel].tolist())
    share = (targets >= 0).float().sum() / fm.sum()
    assert 0.13 < share < 0.2


def test_sample_queries_pads_to_exactly_k_per_video():
    sub_video = torch.tensor([0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 2])
    has = torch.tensor([True, False, True, True, True, True, True, True, True, True, False])
    q = sample_queries(sub_video, has, 3, per_video=5, generator=_g())
    v0, v1 = q[sub_video[q] == 0], q[sub_video[q] == 1]
    assert len(v0) == 5 and set(v0.tolist()) == {0, 2}              # padded by repeating the last
    assert len(v1) == 5 and len(set(v1.tolist())) == 5 and has[v1].all()
    assert not (sub_video[q] == 2).any()                            # no subtitle with frames: no query
