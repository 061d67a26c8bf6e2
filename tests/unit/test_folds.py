from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from fold_sample import FIRST, LAST, SPEC, D, F, anchor, edit, fold_numbers, folds, interval, select

from quantmm_assets.core.folds import (
    FOLD_SCHEMA,
    REFIT_FOLD,
    FoldSpec,
    assign_samples,
    fold_violations,
    refit_intervals,
    walk_forward_folds,
)


def test_walk_forward_layout_is_as_specified():
    df = folds()
    assert df.schema == pl.Schema(FOLD_SCHEMA)
    assert fold_numbers(df) == list(F)
    end = LAST - SPEC.purge
    for f in F:
        ((ts, te),) = interval(df, f, "walk_forward", "test")
        assert ts == FIRST + 98 * D + f * 30 * D and te - ts == 30 * D  # on the grid anchored at the start
        assert te <= end  # labels complete
        ((tr_s, tr_e),) = interval(df, f, "walk_forward", "train")
        assert tr_s == FIRST and tr_e == ts - SPEC.purge - SPEC.embargo
        for i in range(3):
            ((vs, ve),) = interval(df, f, "inner", "validation", i)
            assert abs((ve - vs) - (tr_e - tr_s) / 3) <= timedelta(microseconds=1)
            trains = interval(df, f, "inner", "train", i)
            expected = [(a, b) for a, b in [(tr_s, vs - SPEC.purge), (ve + SPEC.purge + SPEC.embargo, tr_e)] if a < b]
            assert trains == expected
    assert df.filter(pl.col("kind") == "inner")["inner"].null_count() == 0
    assert df.filter(pl.col("kind") == "walk_forward")["inner"].null_count() == 6
    ((_, newest_end),) = interval(df, F[-1], "walk_forward", "test")
    assert newest_end + 30 * D > end  # the next grid window is not complete yet: the newest usable one is fold 7


def test_clean_specs_have_no_violations():
    assert fold_violations(folds(), SPEC.purge, SPEC.embargo) == []
    rolling = FoldSpec(expanding=False, train_days=120, n_folds=4, test_days=20, inner_k=5)
    df = folds(rolling)
    assert fold_violations(df, rolling.purge, rolling.embargo) == []
    assert len(fold_numbers(df)) == 4
    for f in fold_numbers(df):
        ((s, e),) = interval(df, f, "walk_forward", "train")
        assert e - s == 120 * D


def test_unpurged_walk_forward_fold_is_caught():
    df = folds()
    ((ts, _),) = interval(df, F[1], "walk_forward", "test")
    bad = edit(df, select(df, F[1], "walk_forward", "train"), end=ts)
    v = fold_violations(bad, SPEC.purge, SPEC.embargo)
    assert any(m.startswith(f"fold {F[1]} walk_forward") for m in v), v


def test_missing_embargo_is_caught():
    df = folds()
    ((ts, _),) = interval(df, F[2], "walk_forward", "test")
    bad = edit(df, select(df, F[2], "walk_forward", "train"), end=ts - SPEC.purge)  # purged but no embargo
    v = fold_violations(bad, SPEC.purge, SPEC.embargo)
    assert any(m.startswith(f"fold {F[2]} walk_forward") and "embargo" in m for m in v), v
    # One microsecond short of purge + embargo is still a leak.
    bad = edit(
        df, select(df, F[2], "walk_forward", "train"), end=ts - SPEC.purge - SPEC.embargo + timedelta(microseconds=1)
    )
    assert fold_violations(bad, SPEC.purge, SPEC.embargo)


def test_inner_train_right_after_validation_is_caught():
    df = folds()
    f = F[0]
    ((_, ve),) = interval(df, f, "inner", "validation", 1)
    after = select(df, f, "inner", "train", 1) & (pl.col("start") > ve)
    for start in (ve, ve + SPEC.purge):  # no purge; purge without embargo
        bad = edit(df, after, start=start)
        v = fold_violations(bad, SPEC.purge, SPEC.embargo)
        assert any(m.startswith(f"fold {f} inner 1") for m in v), v
    # And an inner train block before its validation block without the purge.
    ((vs, _),) = interval(df, f, "inner", "validation", 1)
    bad = edit(df, select(df, f, "inner", "train", 1) & (pl.col("end") < vs), end=vs)
    assert any(m.startswith(f"fold {f} inner 1") for m in fold_violations(bad, SPEC.purge, SPEC.embargo))


def test_overlapping_test_windows_are_caught():
    df = folds()
    ((ts0, _),) = interval(df, F[0], "walk_forward", "test")
    bad = edit(df, select(df, F[1], "walk_forward", "test"), start=ts0 + 10 * D, end=ts0 + 40 * D)
    v = fold_violations(bad, SPEC.purge, SPEC.embargo)
    assert any(f"test windows of folds {F[0]} and {F[1]} overlap" in m for m in v), v


def test_overlap_and_escaping_inner_intervals_are_caught():
    df = folds()
    ((ts, te),) = interval(df, F[0], "walk_forward", "test")
    bad = edit(df, select(df, F[0], "walk_forward", "train"), end=te)  # train swallows the test window
    assert any("overlap" in m for m in fold_violations(bad, SPEC.purge, SPEC.embargo))
    ((_, tr_e),) = interval(df, F[0], "walk_forward", "train")
    bad = edit(df, select(df, F[0], "inner", "validation", 2), end=tr_e + 3 * D)
    v = fold_violations(bad, SPEC.purge, SPEC.embargo)
    assert any("not inside the fold's walk_forward train window" in m for m in v), v
    relabelled = df.with_columns(role=pl.when(pl.col("role") == "test").then(pl.lit("train")).otherwise("role"))
    assert any("no test interval" in m for m in fold_violations(relabelled, SPEC.purge, SPEC.embargo))


def test_too_short_data_raises():
    needed = timedelta(days=90) + SPEC.purge + SPEC.embargo + 3 * 30 * D + SPEC.purge  # 195 days
    ok = walk_forward_folds(FIRST, FIRST + needed, SPEC)
    assert fold_numbers(ok) == [0, 1, 2]  # exactly three grid windows fit
    ((s, e),) = interval(ok, 0, "walk_forward", "train")
    assert e - s == 90 * D and fold_violations(ok, SPEC.purge, SPEC.embargo) == []
    ((_, te),) = interval(ok, 2, "walk_forward", "test")
    assert te == FIRST + needed - SPEC.purge
    with pytest.raises(ValueError, match=r"too short.*needs at least 195\.00 days.*2 complete test window"):
        walk_forward_folds(FIRST, FIRST + needed - timedelta(microseconds=1), SPEC)
    with pytest.raises(ValueError, match="too short"):
        walk_forward_folds(FIRST, FIRST + 100 * D, SPEC)


def test_assign_samples_masks_and_purged_gap():
    df = folds()
    ts = pl.datetime_range(FIRST, LAST, "1h", time_zone="UTC", eager=True)
    f = F[0]
    train = assign_samples(ts, df, f, "walk_forward", None, "train")
    test = assign_samples(ts, df, f, "walk_forward", None, "test")
    assert train.dtype == pl.Boolean and len(train) == len(ts) and not (train & test).any()
    ((ts0, te0),) = interval(df, f, "walk_forward", "test")
    assert test.sum() == 30 * 24 and ts.filter(test).min() == ts0 and ts.filter(test).max() < te0
    assert ts.filter(train).max() < ts0 - SPEC.purge - SPEC.embargo
    gap = (ts >= ts0 - SPEC.purge - SPEC.embargo) & (ts < ts0)
    assert not (train | test).filter(gap).any()  # purged + embargoed samples belong to neither
    inner_train = assign_samples(ts, df, f, "inner", 1, "train")
    inner_val = assign_samples(ts, df, f, "inner", 1, "validation")
    assert not (inner_train & inner_val).any() and not (inner_train & ~train).any()
    with pytest.raises(ValueError, match="no fold interval"):
        assign_samples(ts, df, f, "walk_forward", None, "validation")


def test_spec_params_and_hash():
    p = SPEC.to_params()
    assert p["folds.purge_days"] == 7.0 and p["folds.embargo_days"] == 1.0 and p["folds.n_folds"] == 3
    assert p["folds.hash"] == SPEC.spec_hash() == FoldSpec().spec_hash() != FoldSpec(embargo=2 * D).spec_hash()
    assert len(SPEC.spec_hash()) == 12
    with pytest.raises(ValueError):
        FoldSpec(inner_k=1)


def by_fold(df: pl.DataFrame) -> dict[int, list[tuple]]:
    """Every row of each fold (walk-forward and inner), in output order."""
    return {f: df.filter(pl.col("fold") == f).rows() for f in fold_numbers(df)}


def check_grid(df: pl.DataFrame, first: datetime, last: datetime, spec: FoldSpec) -> None:
    """Fold numbers are grid indices, the newest n_folds usable windows, and every test window's labels complete."""
    test_len = spec.test_days * D
    numbers = fold_numbers(df)
    assert len(numbers) == spec.n_folds and numbers == list(range(numbers[0], numbers[0] + spec.n_folds))
    assert numbers[0] >= 0 and REFIT_FOLD not in numbers
    for k in numbers:
        ((ts, te),) = interval(df, k, "walk_forward", "test")
        assert ts == anchor(first, spec) + k * test_len and te == ts + test_len
        assert te <= last - spec.purge  # no usable test window ends after last_t - purge
    assert anchor(first, spec) + (numbers[-1] + 2) * test_len > last - spec.purge  # the next window is incomplete
    assert fold_violations(df, spec.purge, spec.embargo) == []


@pytest.mark.parametrize(
    "spec",
    [SPEC, FoldSpec(expanding=False, train_days=120, n_folds=4, test_days=20, inner_k=5)],
    ids=["expanding", "rolling"],
)
@pytest.mark.parametrize("first", [FIRST, FIRST + timedelta(hours=7, minutes=35)], ids=["midnight", "intraday"])
def test_extending_the_data_keeps_the_earlier_folds(spec: FoldSpec, first: datetime):
    test_len = spec.test_days * D
    last = first + 366 * D
    base = walk_forward_folds(first, last, spec)
    check_grid(base, first, last, spec)
    old = by_fold(base)
    for extra, n_new in [(test_len, 1), (test_len * 3 // 2, None), (2 * D, None), (5 * test_len, 5)]:
        longer = walk_forward_folds(first, last + extra, spec)
        check_grid(longer, first, last + extra, spec)
        new = by_fold(longer)
        if n_new is not None:  # a whole number of windows added: the numbers shift by exactly that many
            assert list(new) == [k + n_new for k in old]
        common = set(old) & set(new)
        assert common or n_new == 5, (extra, list(old), list(new))
        assert min(new) >= min(old)  # folds never move back
        for k in common:
            assert new[k] == old[k], (extra, k)  # identical walk-forward and inner rows
    # One window more: the n_folds - 1 newest folds survive unchanged, the new one is numbered next.
    one_more = by_fold(walk_forward_folds(first, last + test_len, spec))
    assert sorted(set(old) & set(one_more)) == list(old)[1:] and max(one_more) == max(old) + 1


def test_each_fold_number_is_one_interval_set_whatever_the_data_end():
    """Sweeping last_t over 100 days: a fold number always maps to the same rows; folds appear once complete."""
    seen: dict[int, list[tuple]] = {}
    newest = []
    for step in range(0, 100 * 24, 13):
        last = LAST + timedelta(hours=step)
        df = walk_forward_folds(FIRST, last, SPEC)
        for k, rows in by_fold(df).items():
            assert seen.setdefault(k, rows) == rows, (last, k)
        newest.append(max(fold_numbers(df)))
        ((_, te),) = interval(df, newest[-1], "walk_forward", "test")
        assert te <= last - SPEC.purge < te + 30 * D
    # LAST - purge is 21 days past window 7's end: ~100 days more complete windows 8 (after 9 days) .. 11 (99 days)
    assert newest == sorted(newest) and (newest[0], newest[-1]) == (7, 11) and len(seen) == 12 - 5


def test_refit_trains_until_an_embargo_before_the_newest_complete_labels():
    """Final refit over 2025-01-01 .. 2025-04-01 with purge 7 days and embargo 2 days, all instants by hand.

    Labels are complete for samples up to 04-01 - 7d = 03-25; the embargo takes 2 days more: train ends 03-23.
    The inner split cuts [01-01, 03-23) (81 days) into three 27-day validation blocks: 01-01, 01-28, 02-24.
    """
    spec = FoldSpec(min_train_days=30, purge=7 * D, embargo=2 * D, inner_k=3)
    md = [(1, 1), (1, 21), (1, 28), (2, 6), (2, 17), (2, 24), (3, 5), (3, 23)]
    jan1, jan21, jan28, feb6, feb17, feb24, mar5, mar23 = (datetime(2025, m, d, tzinfo=UTC) for m, d in md)
    df = refit_intervals(jan1, datetime(2025, 4, 1, tzinfo=UTC), spec)
    assert df.schema == pl.Schema(FOLD_SCHEMA) and fold_numbers(df) == [REFIT_FOLD]
    assert interval(df, REFIT_FOLD, "walk_forward", "train") == [(jan1, mar23)]
    assert interval(df, REFIT_FOLD, "walk_forward", "test") == []
    assert fold_violations(df, spec.purge, spec.embargo) == ["fold -1 walk_forward: no test interval"]  # inner: clean
    assert [interval(df, REFIT_FOLD, "inner", "validation", i) for i in range(3)] == [
        [(jan1, jan28)],
        [(jan28, feb24)],
        [(feb24, mar23)],
    ]
    assert interval(df, REFIT_FOLD, "inner", "train", 0) == [(feb6, mar23)]  # 01-28 + purge + embargo
    assert interval(df, REFIT_FOLD, "inner", "train", 1) == [(jan1, jan21), (mar5, mar23)]  # 02-24 + 9d
    assert interval(df, REFIT_FOLD, "inner", "train", 2) == [(jan1, feb17)]  # 02-24 - purge
    # Rolling: the last 40 train days before the same end, 03-23 - 40d = 02-11.
    rolling = refit_intervals(jan1, datetime(2025, 4, 1, tzinfo=UTC), replace(spec, expanding=False, train_days=40))
    assert interval(rolling, REFIT_FOLD, "walk_forward", "train") == [(datetime(2025, 2, 11, tzinfo=UTC), mar23)]
    # Data to 02-09: train [01-01, 01-31), exactly min_train_days; one day less is too short.
    feb9 = datetime(2025, 2, 9, tzinfo=UTC)
    assert interval(refit_intervals(jan1, feb9, spec), REFIT_FOLD, "walk_forward", "train") == [(jan1, feb9 - 9 * D)]
    with pytest.raises(ValueError, match="shorter than min_train_days"):
        refit_intervals(jan1, feb9 - D, spec)


# --- FoldSpec: validation, plain form, params and hash -------------------------------------------------------------
