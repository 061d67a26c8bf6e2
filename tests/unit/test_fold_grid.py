"""The walk-forward grid anchored at the partitions' start (issue 12), by hand: windows line up across data that
starts on different days, so a retrain adds windows and never moves the earlier ones.

Spec: 2 folds of 10 test days, 20 train days at least, purge 1 day + embargo 1 day. Anchor A = 2025-01-01: grid
window k is [A + 22 + 10k, A + 32 + 10k) days, and its train window is [first_t, A + 20 + 10k).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from quantmm_assets.core.folds import FoldSpec, walk_forward_folds

A = datetime(2025, 1, 1, tzinfo=UTC)
D = timedelta(days=1)
SPEC = FoldSpec(n_folds=2, test_days=10, min_train_days=20, purge=D, embargo=D, inner_k=2)


def windows(first: datetime, last: datetime, anchor: datetime | None = A) -> dict[int, tuple[datetime, ...]]:
    """fold -> (train start, train end, test start, test end)."""
    wf = walk_forward_folds(first, last, SPEC, anchor).filter(pl.col("kind") == "walk_forward")
    out: dict[int, list[datetime]] = {}
    for r in wf.sort("fold", "role").iter_rows(named=True):  # role order: test, train
        out.setdefault(r["fold"], []).extend([r["start"], r["end"]])
    return {k: (v[2], v[3], v[0], v[1]) for k, v in out.items()}


def test_data_from_the_anchor_gives_the_grid_from_window_zero():
    # last A + 60: usable windows end by A + 59, so k = 0, 1, 2 fit and the newest two are the folds
    assert windows(A, A + 60 * D) == {
        1: (A, A + 30 * D, A + 32 * D, A + 42 * D),
        2: (A, A + 40 * D, A + 42 * D, A + 52 * D),
    }
    assert windows(A, A + 60 * D, anchor=None) == windows(A, A + 60 * D)  # no anchor: the data's start


def test_data_starting_later_skips_the_first_windows_instead_of_shifting_them():
    late = windows(A + 15 * D, A + 80 * D)
    # k = 0, 1 lack 20 train days from A + 15; k = 2 has [A + 15, A + 40): 25 days; folds are the newest two of 2..4
    assert late == {
        3: (A + 15 * D, A + 50 * D, A + 52 * D, A + 62 * D),
        4: (A + 15 * D, A + 60 * D, A + 62 * D, A + 72 * D),
    }
    full = windows(A, A + 80 * D)
    assert [w[2:] for w in late.values()] == [w[2:] for w in full.values()]  # the same test windows and numbers
    unanchored = windows(A + 15 * D, A + 80 * D, anchor=None)
    assert [w[2] for w in unanchored.values()] == [A + 57 * D, A + 67 * D]  # anchored at its own start: moved


def test_train_days_count_from_the_day_of_the_first_sample():
    exact = windows(A + 10 * D, A + 60 * D)  # k = 1 trains on [A + 10, A + 30): exactly 20 days
    assert sorted(exact) == [1, 2]
    # a partition day's first label is at 00:05 (its first bar closes then): still the day's window, not one less
    assert windows(A + 10 * D + 5 * timedelta(minutes=1), A + 60 * D).keys() == exact.keys()
    with pytest.raises(ValueError, match=r"first 2 window\(s\) lack train data"):
        windows(A + 11 * D, A + 60 * D)  # a day later k = 1 has 19 days: only k = 2 is left


def test_data_before_the_anchor_trains_but_opens_no_earlier_window():
    early = windows(A - 30 * D, A + 60 * D)
    assert sorted(early) == [1, 2] and [w[0] for w in early.values()] == [A - 30 * D] * 2
    assert [w[2:] for w in early.values()] == [w[2:] for w in windows(A, A + 60 * D).values()]


def test_a_late_start_that_leaves_too_few_windows_says_why():
    with pytest.raises(ValueError) as err:
        windows(A + 15 * D, A + 60 * D)
    assert "anchor 2025-01-01: its first 2 window(s) lack train data" in str(err.value)
    assert "(1 complete test window(s) fit" in str(err.value)
    with pytest.raises(ValueError) as on_time:  # data from the anchor itself: too short, and nothing skipped
        windows(A, A + 40 * D)
    assert str(on_time.value).endswith("(1 complete test window(s) fit)")
