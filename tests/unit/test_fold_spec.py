"""FoldSpec: its validation, plain form, params and hash, and the fold functions' edge cases, pinned by hand."""

from __future__ import annotations

import hashlib
from dataclasses import fields, replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import polars as pl
import pytest
from fold_sample import FIRST, LAST, SPEC, D, F, fold_numbers, folds, interval

from quantmm_assets.core.folds import (
    FOLD_SCHEMA,
    REFIT_FOLD,
    FoldSpec,
    assign_samples,
    fold_violations,
    refit_intervals,
    walk_forward_folds,
)


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


def test_naive_instants_are_utc_and_aware_ones_are_converted(new_york_clock: None):
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
