from __future__ import annotations

import hashlib
import time
from dataclasses import fields, replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import polars as pl
import pytest

from quantmm_assets.core.folds import (
    FOLD_SCHEMA,
    REFIT_FOLD,
    FoldSpec,
    assign_samples,
    fold_violations,
    refit_intervals,
    walk_forward_folds,
)

FIRST = datetime(2024, 1, 1, tzinfo=UTC)
LAST = datetime(2025, 1, 1, tzinfo=UTC)
SPEC = FoldSpec()
D = timedelta(days=1)
# The default spec over FIRST..LAST (366 days): grid window k tests [FIRST + 98d + 30k d, ...); windows 0..7 end
# by LAST - purge, so the folds are the newest three, numbered by their grid index.
F = (5, 6, 7)


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


def fold_numbers(df: pl.DataFrame) -> list[int]:
    return sorted(df["fold"].unique().to_list())


def anchor(first: datetime, spec: FoldSpec) -> datetime:
    """The start of grid window 0: min_train_days of train data, then the purge and the embargo."""
    return first + spec.min_train_days * D + spec.purge + spec.embargo


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


@pytest.mark.parametrize(
    ("ok", "refused", "message"),
    [
        ({"n_folds": 1}, {"n_folds": 0}, "n_folds, test_days and min_train_days must be >= 1"),
        ({"test_days": 1}, {"test_days": 0}, "n_folds, test_days and min_train_days must be >= 1"),
        ({"min_train_days": 1}, {"min_train_days": 0}, "n_folds, test_days and min_train_days must be >= 1"),
        ({"inner_k": 2}, {"inner_k": 1}, "inner_k must be >= 2"),
        ({"embargo": 0 * D}, {"embargo": -timedelta(microseconds=1)}, "purge and embargo must be >= 0"),
        ({"purge": 0 * D}, {"purge": -timedelta(microseconds=1)}, "purge and embargo must be >= 0"),
        (
            {"expanding": False, "min_train_days": 120, "train_days": 120},
            {"expanding": False, "min_train_days": 120, "train_days": 119},
            r"train_days \(119\) < min_train_days \(120\)",
        ),
    ],
    ids=["n_folds", "test_days", "min_train_days", "inner_k", "embargo", "purge", "train_days"],
)
def test_fold_spec_accepts_the_boundary_and_refuses_the_first_value_past_it(ok: dict, refused: dict, message: str):
    spec = FoldSpec(**ok)  # every other field at its (valid) default
    assert all(getattr(spec, k) == v for k, v in ok.items())
    with pytest.raises(ValueError, match=message):
        FoldSpec(**refused)


def test_expanding_spec_ignores_train_days():
    """``train_days`` is the rolling length only: an expanding spec may have it below ``min_train_days``, and its
    train windows (walk-forward and refit) still start at the first sample, however much longer than it they are."""
    assert FoldSpec(expanding=True, min_train_days=120, train_days=1).train_days == 1
    spec = FoldSpec(expanding=True, min_train_days=30, train_days=30)
    df = walk_forward_folds(FIRST, LAST, spec)
    for f in fold_numbers(df):
        ((s, e),) = interval(df, f, "walk_forward", "train")
        assert s == FIRST and e - s > 30 * D
    assert interval(refit_intervals(FIRST, LAST, spec), REFIT_FOLD, "walk_forward", "train") == [(FIRST, LAST - 8 * D)]


# A spec with every field off its default; its plain form and sorted JSON written out by hand.
ODD = FoldSpec(
    n_folds=4, test_days=20, min_train_days=60, embargo=timedelta(hours=12), purge=3 * D, inner_k=5,
    expanding=False, train_days=200,
)  # fmt: skip
ODD_PLAIN = {
    "n_folds": 4, "test_days": 20, "min_train_days": 60, "inner_k": 5, "expanding": False, "train_days": 200,
    "embargo_days": 0.5, "purge_days": 3.0,
}  # fmt: skip
ODD_JSON = (
    '{"embargo_days": 0.5, "expanding": false, "inner_k": 5, "min_train_days": 60, "n_folds": 4, "purge_days": 3.0, '
    '"test_days": 20, "train_days": 200}'
)


def test_plain_form_round_trips_and_is_pinned_by_hand():
    assert ODD.plain() == ODD_PLAIN
    assert FoldSpec.from_plain(ODD_PLAIN) == ODD and FoldSpec.from_plain(ODD.plain()) == ODD
    assert FoldSpec.from_plain(SPEC.plain()) == SPEC
    assert SPEC.plain() == {
        "n_folds": 3, "test_days": 30, "min_train_days": 90, "inner_k": 3, "expanding": True, "train_days": 365,
        "embargo_days": 1.0, "purge_days": 7.0,
    }  # fmt: skip


def test_from_plain_refuses_a_malformed_plain_form():
    """A missing duration, an unknown field or an invalid value is refused, not defaulted."""
    missing = {k: v for k, v in ODD_PLAIN.items() if k != "purge_days"}
    with pytest.raises(KeyError, match="purge_days"):
        FoldSpec.from_plain(missing)
    with pytest.raises(TypeError, match="purge"):
        FoldSpec.from_plain(ODD_PLAIN | {"purge": 3 * D})  # the duration under its field name, not in days
    with pytest.raises(ValueError, match="inner_k must be >= 2"):
        FoldSpec.from_plain(ODD_PLAIN | {"inner_k": 1})  # validated like any other construction


def test_to_params_is_the_plain_form_under_a_prefix_with_the_hash():
    assert ODD.to_params() == {f"folds.{k}": v for k, v in ODD_PLAIN.items()} | {"folds.hash": ODD.spec_hash()}
    assert ODD.to_params("cv.") == {f"cv.{k}": v for k, v in ODD_PLAIN.items()} | {"cv.hash": ODD.spec_hash()}


def test_spec_hash_is_the_sorted_json_digest_and_moves_with_every_field():
    # The rule: the first 12 hex digits of sha256 over the plain form as JSON with sorted keys. The keys of
    # plain() come in field order (n_folds, test_days, ...), not sorted, so dropping sort_keys changes the hash.
    assert ODD.spec_hash() == hashlib.sha256(ODD_JSON.encode()).hexdigest()[:12]
    assert ODD.spec_hash() == replace(ODD).spec_hash() == FoldSpec.from_plain(ODD_PLAIN).spec_hash()
    changed = {
        "n_folds": 5, "test_days": 21, "min_train_days": 61, "embargo": 13 * timedelta(hours=1), "purge": 4 * D,
        "inner_k": 6, "expanding": True, "train_days": 201,
    }  # fmt: skip
    assert set(changed) == {f.name for f in fields(FoldSpec)}
    hashes = {ODD.spec_hash()} | {replace(ODD, **{k: v}).spec_hash() for k, v in changed.items()}
    assert len(hashes) == 1 + len(changed)


# --- Time zones, _split rounding, inner splits without train data ----------------------------------------------------


@pytest.fixture
def local_new_york(monkeypatch: pytest.MonkeyPatch):
    """Run with the process's local time zone set to New York (so a naive instant read as local time is off)."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_naive_instants_are_utc_and_aware_ones_are_converted(local_new_york: None):
    paris = ZoneInfo("Europe/Paris")
    base = walk_forward_folds(FIRST, LAST, SPEC)
    naive_first, naive_last = FIRST.replace(tzinfo=None), LAST.replace(tzinfo=None)
    assert walk_forward_folds(naive_first, naive_last, SPEC).equals(base)
    assert walk_forward_folds(naive_first, LAST, SPEC).equals(base)  # a naive and an aware bound mix
    assert walk_forward_folds(FIRST.astimezone(paris), LAST.astimezone(paris), SPEC).equals(base)
    assert refit_intervals(naive_first, LAST, SPEC).equals(refit_intervals(FIRST, LAST, SPEC))
    # 2024-01-01 01:00 in Paris is 00:00 UTC: the message speaks UTC, not Paris or the local zone.
    with pytest.raises(ValueError, match=r"data span 2024-01-01 00:00 \.\. 2024-01-11 00:00 \(10\.00 days\)"):
        walk_forward_folds(FIRST.astimezone(paris), naive_first + 10 * D, SPEC)
    with pytest.raises(ValueError, match="too short"):
        walk_forward_folds(naive_first, naive_first + 10 * D, FoldSpec(n_folds=1))  # not even window 0 fits


def test_inner_blocks_split_to_the_floored_microsecond():
    """No purge, no embargo, 3 days + 2 us cut in 3: edges at floor(i * span / 3) = +1d and +2d 1us.

    With nothing to purge, the train parts touch their validation block, and the empty part of the first and last
    blocks is left out.
    """
    # Equivalent mutants (docs/mutation.md): in _split, a float span (`/` for `//`) is the same integer for spans
    # below 2**53 us (285 years); `strict` of the zip is moot (k edges and k edges). In walk_forward_folds and
    # refit_intervals, `orient="row"` dropped or None: polars reads a list of dicts as rows anyway.
    spec = FoldSpec(min_train_days=1, purge=0 * D, embargo=0 * D, inner_k=3)
    us = timedelta(microseconds=1)
    e0, e1, e2, e3 = FIRST, FIRST + D, FIRST + 2 * D + us, FIRST + 3 * D + 2 * us
    df = refit_intervals(e0, e3, spec)
    f, wf, inn = REFIT_FOLD, "walk_forward", "inner"
    assert df.rows() == [
        (f, wf, None, "train", e0, e3),
        (f, inn, 0, "validation", e0, e1),
        (f, inn, 0, "train", e1, e3),
        (f, inn, 1, "train", e0, e1),
        (f, inn, 1, "validation", e1, e2),
        (f, inn, 1, "train", e2, e3),
        (f, inn, 2, "train", e0, e2),
        (f, inn, 2, "validation", e2, e3),
    ]
    assert fold_violations(df, spec.purge, spec.embargo) == ["fold -1 walk_forward: no test interval"]


def test_inner_split_without_train_data_is_refused():
    """Train window [0, 10d) in 2 blocks: a purge of 5 days leaves block 0 no train data; 4 days leave 1 day."""
    spec = FoldSpec(min_train_days=1, purge=4 * D, embargo=0 * D, inner_k=2)
    df = refit_intervals(FIRST, FIRST + 14 * D, spec)
    assert interval(df, REFIT_FOLD, "inner", "train", 0) == [(FIRST + 9 * D, FIRST + 10 * D)]
    assert interval(df, REFIT_FOLD, "inner", "train", 1) == [(FIRST, FIRST + D)]
    with pytest.raises(ValueError, match="fold -1 inner split 0: no train data left"):
        refit_intervals(FIRST, FIRST + 15 * D, replace(spec, purge=5 * D))


def test_assign_samples_leaves_a_null_time_out_and_names_the_mask():
    df = folds()
    ((ts0, _),) = interval(df, F[0], "walk_forward", "test")
    ts = pl.Series("t", [ts0, None, ts0 - D], dtype=pl.Datetime("us", "UTC"))
    mask = assign_samples(ts, df, F[0], "walk_forward", None, "test")
    assert mask.name == "in_fold" and mask.to_list() == [True, False, False]


# --- fold_violations on a hand-made frame: every message, in order ----------------------------------------------------

T = datetime(2024, 1, 1, 6, 30, 15, tzinfo=UTC)


def at(days: float | None) -> datetime | None:
    return None if days is None else T + timedelta(days=days)


def frame(rows: list[tuple]) -> pl.DataFrame:
    """Fold rows ``(fold, kind, inner, role, start_day, end_day)``, days after T (None = null)."""
    return pl.DataFrame([(*r[:4], at(r[4]), at(r[5])) for r in rows], schema=FOLD_SCHEMA, orient="row")


# Purge 1 day, embargo 1 day. Clean: every gap exactly at its bound (walk-forward 2 days before the test window,
# inner 1 day before and 2 days after the validation block), fold 1's test window starting where fold 0's ends.
CLEAN = [
    (1, "walk_forward", None, "train", 0, 13),
    (1, "walk_forward", None, "test", 15, 18),
    (0, "walk_forward", None, "train", 0, 10),
    (0, "walk_forward", None, "test", 12, 15),
    (0, "inner", 1, "validation", 5, 10),
    (0, "inner", 1, "train", 0, 4),
    (0, "inner", 0, "validation", 0, 5),
    (0, "inner", 0, "train", 7, 10),
]


def s(days: float) -> str:
    return f"{at(days):%Y-%m-%d %H:%M:%S}"


def test_fold_violations_clean_at_every_bound():
    assert fold_violations(frame(CLEAN), D, D) == []


def test_fold_violations_names_every_defect_in_order():
    # Groups are reported by (fold, kind, inner) with no inner first; any negative stand-in for "no inner" sorts
    # the same (inner indices are >= 0), so the mutant -1 -> -2 in the sort key is equivalent.
    rows = [
        (0, "outer", None, "train", 0, 1),  # unknown kind
        (0, "inner", 0, "test", 0, 1),  # unknown role for its kind
        (1, "walk_forward", None, "train", 0, 14),  # ends 1 day before its test: embargo missing
        (1, "walk_forward", None, "test", 15, 18),
        (2, "walk_forward", None, "train", 0, 18),  # swallows the start of its own test window
        (2, "walk_forward", None, "test", 17, 20),  # overlaps fold 1's test window
        (0, "walk_forward", None, "train", 0, 10),
        (0, "walk_forward", None, "test", 12, 15),
        (4, "walk_forward", None, "test", 12, 12),  # empty: overlaps nothing, not even fold 0's window at 12
        (0, "inner", 1, "validation", 5, 10),
        (0, "inner", 1, "train", 0, 4.5),  # half a day short of the purge
        (0, "inner", 1, "train", None, 4),  # null start
        (0, "inner", 0, "validation", 0, 5),
        (0, "inner", 0, "train", 5, 10),  # starts right at the end of its validation block
        (0, "inner", 0, "train", 3, 3),  # empty
        (0, "inner", None, "validation", 0, 5),  # no inner index
        (0, "walk_forward", 2, "train", 0, 10),  # walk-forward with an inner index
        (3, "inner", 0, "validation", 0, 1),  # fold 3 has no walk-forward train window
        (3, "inner", 0, "train", 3, 4),
    ]
    assert fold_violations(frame(rows), D, D) == [
        "fold 0: unknown kind/role 'outer'/'train'",
        "fold 0: unknown kind/role 'inner'/'test'",
        "fold 4 walk_forward inner=None test: empty interval",
        "fold 0 inner inner=1 train: empty interval",
        "fold 0 inner inner=0 train: empty interval",
        "fold 0: inner row without an inner index",
        "fold 0: walk_forward row with inner=2",
        "fold 0 inner: no train interval",
        f"fold 0 inner 0: train [{s(5)}, {s(10)}) vs validation [{s(0)}, {s(5)}): train starts 0.000 days after, "
        "purge + embargo needs more",
        f"fold 0 inner 1: train [{s(0)}, {s(4.5)}) vs validation [{s(5)}, {s(10)}): train ends 0.500 days before, "
        "purge needs more",
        "fold 0 walk_forward 2: no test interval",
        f"fold 1 walk_forward: train [{s(0)}, {s(14)}) vs test [{s(15)}, {s(18)}): train ends 1.000 days before, "
        "purge + embargo needs more",
        f"fold 2 walk_forward: train [{s(0)}, {s(18)}) vs test [{s(17)}, {s(20)}) overlap",
        "walk_forward test windows of folds 1 and 2 overlap",
        f"fold 3 inner 0 validation [{s(0)}, {s(1)}) is not inside the fold's walk_forward train window",
        f"fold 3 inner 0 train [{s(3)}, {s(4)}) is not inside the fold's walk_forward train window",
    ]
