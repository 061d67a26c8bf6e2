from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from quantmm_assets.core.folds import (
    FOLD_SCHEMA,
    FoldSpec,
    assign_samples,
    fold_violations,
    walk_forward_folds,
)

FIRST = datetime(2024, 1, 1, tzinfo=UTC)
LAST = datetime(2025, 1, 1, tzinfo=UTC)
SPEC = FoldSpec()
D = timedelta(days=1)


def folds(spec: FoldSpec = SPEC) -> pl.DataFrame:
    return walk_forward_folds(FIRST, LAST, spec)


def select(df: pl.DataFrame, fold: int, kind: str, role: str, inner: int | None = None) -> pl.Expr:
    inner_sel = pl.col("inner").is_null() if inner is None else pl.col("inner") == inner
    return (pl.col("fold") == fold) & (pl.col("kind") == kind) & (pl.col("role") == role) & inner_sel


def interval(df: pl.DataFrame, fold: int, kind: str, role: str, inner: int | None = None) -> list[tuple]:
    return df.filter(select(df, fold, kind, role, inner)).select("start", "end").rows()


def edit(df: pl.DataFrame, cond: pl.Expr, **cols: datetime) -> pl.DataFrame:
    """Overwrite columns of the rows matching ``cond`` (a planted leak)."""
    out = df.with_columns(
        **{c: pl.when(cond).then(pl.lit(v, dtype=FOLD_SCHEMA[c])).otherwise(c) for c, v in cols.items()}
    )
    assert not out.equals(df)
    return out


def test_walk_forward_layout_is_as_specified():
    df = folds()
    assert df.schema == pl.Schema(FOLD_SCHEMA)
    end = LAST - SPEC.purge
    for f in range(3):
        ((ts, te),) = interval(df, f, "walk_forward", "test")
        assert te == end - (2 - f) * 30 * D and te - ts == 30 * D  # consecutive, oldest first, ending at E
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


def test_clean_specs_have_no_violations():
    assert fold_violations(folds(), SPEC.purge, SPEC.embargo) == []
    rolling = FoldSpec(expanding=False, train_days=120, n_folds=4, test_days=20, inner_k=5)
    df = folds(rolling)
    assert fold_violations(df, rolling.purge, rolling.embargo) == []
    for f in range(4):
        ((s, e),) = interval(df, f, "walk_forward", "train")
        assert e - s == 120 * D


def test_unpurged_walk_forward_fold_is_caught():
    df = folds()
    ((ts, _),) = interval(df, 1, "walk_forward", "test")
    bad = edit(df, select(df, 1, "walk_forward", "train"), end=ts)
    v = fold_violations(bad, SPEC.purge, SPEC.embargo)
    assert any(m.startswith("fold 1 walk_forward") for m in v), v


def test_missing_embargo_is_caught():
    df = folds()
    ((ts, _),) = interval(df, 2, "walk_forward", "test")
    bad = edit(df, select(df, 2, "walk_forward", "train"), end=ts - SPEC.purge)  # purged but no embargo
    v = fold_violations(bad, SPEC.purge, SPEC.embargo)
    assert any(m.startswith("fold 2 walk_forward") and "embargo" in m for m in v), v
    # One microsecond short of purge + embargo is still a leak.
    bad = edit(
        df, select(df, 2, "walk_forward", "train"), end=ts - SPEC.purge - SPEC.embargo + timedelta(microseconds=1)
    )
    assert fold_violations(bad, SPEC.purge, SPEC.embargo)


def test_inner_train_right_after_validation_is_caught():
    df = folds()
    ((_, ve),) = interval(df, 0, "inner", "validation", 1)
    after = select(df, 0, "inner", "train", 1) & (pl.col("start") > ve)
    for start in (ve, ve + SPEC.purge):  # no purge; purge without embargo
        bad = edit(df, after, start=start)
        v = fold_violations(bad, SPEC.purge, SPEC.embargo)
        assert any(m.startswith("fold 0 inner 1") for m in v), v
    # And an inner train block before its validation block without the purge.
    ((vs, _),) = interval(df, 0, "inner", "validation", 1)
    bad = edit(df, select(df, 0, "inner", "train", 1) & (pl.col("end") < vs), end=vs)
    assert any(m.startswith("fold 0 inner 1") for m in fold_violations(bad, SPEC.purge, SPEC.embargo))


def test_overlapping_test_windows_are_caught():
    df = folds()
    ((ts0, _),) = interval(df, 0, "walk_forward", "test")
    bad = edit(df, select(df, 1, "walk_forward", "test"), start=ts0 + 10 * D, end=ts0 + 40 * D)
    v = fold_violations(bad, SPEC.purge, SPEC.embargo)
    assert any("test windows of folds 0 and 1 overlap" in m for m in v), v


def test_overlap_and_escaping_inner_intervals_are_caught():
    df = folds()
    ((ts, te),) = interval(df, 0, "walk_forward", "test")
    bad = edit(df, select(df, 0, "walk_forward", "train"), end=te)  # train swallows the test window
    assert any("overlap" in m for m in fold_violations(bad, SPEC.purge, SPEC.embargo))
    ((_, tr_e),) = interval(df, 0, "walk_forward", "train")
    bad = edit(df, select(df, 0, "inner", "validation", 2), end=tr_e + 3 * D)
    v = fold_violations(bad, SPEC.purge, SPEC.embargo)
    assert any("not inside the fold's walk_forward train window" in m for m in v), v
    relabelled = df.with_columns(role=pl.when(pl.col("role") == "test").then(pl.lit("train")).otherwise("role"))
    assert any("no test interval" in m for m in fold_violations(relabelled, SPEC.purge, SPEC.embargo))


def test_too_short_data_raises():
    needed = timedelta(days=90) + SPEC.purge + SPEC.embargo + 3 * 30 * D + SPEC.purge  # 195 days
    ok = walk_forward_folds(FIRST, FIRST + needed, SPEC)
    ((s, e),) = interval(ok, 0, "walk_forward", "train")
    assert e - s == 90 * D and fold_violations(ok, SPEC.purge, SPEC.embargo) == []
    with pytest.raises(ValueError, match="too short"):
        walk_forward_folds(FIRST, FIRST + needed - timedelta(microseconds=1), SPEC)
    with pytest.raises(ValueError, match="too short"):
        walk_forward_folds(FIRST, FIRST + 100 * D, SPEC)


def test_assign_samples_masks_and_purged_gap():
    df = folds()
    ts = pl.datetime_range(FIRST, LAST, "1h", time_zone="UTC", eager=True)
    train = assign_samples(ts, df, 0, "walk_forward", None, "train")
    test = assign_samples(ts, df, 0, "walk_forward", None, "test")
    assert train.dtype == pl.Boolean and len(train) == len(ts) and not (train & test).any()
    ((ts0, te0),) = interval(df, 0, "walk_forward", "test")
    assert test.sum() == 30 * 24 and ts.filter(test).min() == ts0 and ts.filter(test).max() < te0
    assert ts.filter(train).max() < ts0 - SPEC.purge - SPEC.embargo
    gap = (ts >= ts0 - SPEC.purge - SPEC.embargo) & (ts < ts0)
    assert not (train | test).filter(gap).any()  # purged + embargoed samples belong to neither
    inner_train = assign_samples(ts, df, 0, "inner", 1, "train")
    inner_val = assign_samples(ts, df, 0, "inner", 1, "validation")
    assert not (inner_train & inner_val).any() and not (inner_train & ~train).any()
    with pytest.raises(ValueError, match="no fold interval"):
        assign_samples(ts, df, 0, "walk_forward", None, "validation")


def test_spec_params_and_hash():
    p = SPEC.to_params()
    assert p["folds.purge_days"] == 7.0 and p["folds.embargo_days"] == 1.0 and p["folds.n_folds"] == 3
    assert p["folds.hash"] == SPEC.spec_hash() == FoldSpec().spec_hash() != FoldSpec(embargo=2 * D).spec_hash()
    assert len(SPEC.spec_hash()) == 12
    with pytest.raises(ValueError):
        FoldSpec(inner_k=1)
