"""``differences`` (``core.leakage.asof``): what counts as equal, what is reported, in which order, how much.

Numbers are equal when ``|a - b| <= 1e-9 * max(1, |a|, |b|)``; NaN equals NaN and a null (a null number is a NaN
here), nothing else. Vectors (list or array columns) are compared element-wise within ``1e-6 * max(1, |x|, |y|)``,
a null vector equals only a null one. Anything else is compared exactly (null equals null). A row in one frame only
is a difference whatever its values. Each case below says how its verdict follows from the bound.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from quantmm_assets.core.leakage.asof import differences
from quantmm_assets.core.schemas import UTC_TS

A, B = "AAAUSDT", "BBBUSDT"
NOON = datetime(2025, 3, 11, 12, 0, tzinfo=UTC)
BAR = timedelta(minutes=5)
NAN = float("nan")


def column(dtype: pl.DataType, values: list) -> pl.DataFrame:
    """One row per value, at noon + k bars, its value in column ``v``."""
    times = [NOON + k * BAR for k in range(len(values))]
    return pl.DataFrame(
        {"symbol": [A] * len(values), "ts_event": times, "ts_available": times, "v": values},
        schema={"symbol": pl.Utf8, "ts_event": UTC_TS, "ts_available": UTC_TS, "v": dtype},
    )


def unequal_rows(dtype: pl.DataType, cases: list[tuple[object, object, bool]]) -> tuple[list[int], list[int]]:
    """The rows reported, and the rows the cases call unequal."""
    out = differences(column(dtype, [c[0] for c in cases]), column(dtype, [c[1] for c in cases]), "x")
    reported = [k for k in range(len(cases)) if any(f"{NOON + k * BAR} v:" in m for m in out)]
    return reported, [k for k, c in enumerate(cases) if not c[2]]


def test_numbers_within_one_billionth_relative_are_equal_nan_and_null_equal_each_other_only() -> None:
    # equivalent mutant: ``np.errstate(invalid=None)`` (only a RuntimeWarning on inf - inf, whose result is replaced)
    cases = [
        (0.0, 1e-9, True),  # |d| = 1e-9 = the bound itself (1e-9 * max(1, ...) = 1e-9 below 1)
        (0.0, 1.5e-9, False),  # over the bound: values below 1 are held to 1e-9 absolute
        (1e6, 1e6 + 5e-4, True),  # 5e-4 <= 1e-9 * 1e6 = 1e-3
        (-1e6, -1e6 - 5e-4, True),  # the same by magnitude: the bound uses |a|, |b|
        (1e6, 1e6 + 2e-3, False),  # 2e-3 > 1e-3
        (1e6 + 2e-3, 1e6, False),
        (NAN, NAN, True),
        (NAN, 1.0, False),
        (1.0, NAN, False),
        (None, None, True),
        (None, 1.0, False),
        (1.0, None, False),
        (None, NAN, True),
    ]
    reported, expected = unequal_rows(pl.Float64, cases)
    assert reported == expected


def test_an_infinity_equals_only_the_same_infinity() -> None:
    """|inf - 1| <= 1e-9 * inf holds: a relative bound alone would call a stored infinity equal to any finite
    rebuild (a planted leak producing inf would pass), and inf - inf is NaN (two equal infinities unequal)."""
    inf = float("inf")
    cases = [(inf, inf, True), (-inf, -inf, True), (inf, 1.0, False), (1.0, -inf, False), (inf, -inf, False)]
    cases += [(inf, NAN, False), (NAN, -inf, False), (inf, None, False)]
    reported, expected = unequal_rows(pl.Float64, cases)
    assert reported == expected


def test_integers_are_numbers_too() -> None:
    reported, expected = unequal_rows(pl.Int64, [(5, 5, True), (5, 6, False), (None, 5, False), (None, None, True)])
    assert reported == expected


@pytest.mark.parametrize("dtype", [pl.List(pl.Float64), pl.Array(pl.Float64, 2)], ids=["list", "array"])
def test_vectors_are_equal_element_wise_within_one_millionth_relative(dtype: pl.DataType) -> None:
    # equivalent mutants: ``.astype(None)`` for x or y (numpy's default dtype is float64)
    cases = [
        (None, [0.0, 0.0], False),  # a null vector equals only a null vector
        ([1.0, 2.0], [1.0, 2.0 + 1e-6], True),  # 1e-6 <= 1e-6 * max(1, 2) = 2e-6
        ([0.0, 0.0], [0.0, 1e-6], True),  # the bound itself (1e-6 * 1 below 1)
        ([0.0, 0.0], [0.0, 1.5e-6], False),  # one element over the bound is enough
        ([-1000.0, 0.0], [-1000.001, 0.0], True),  # 1e-3 <= 1e-6 * 1000.001, by magnitude
        ([1.0, 2.0], [1.0, 2.1], False),
        ([1.0, float("inf")], [1.0, 5.0], False),  # an infinite element equals only the same infinity
        ([1.0, float("inf")], [1.0, float("inf")], True),
        ([0.0, 0.0], None, False),
        (None, None, True),
    ]
    reported, expected = unequal_rows(dtype, cases)
    assert reported == expected


def test_integer_vectors_are_compared_as_numbers() -> None:
    # 2**62 and -2**62 are 2**63 apart: in int64 arithmetic that difference would wrap around to a negative number
    cases = [([2**62, 0], [-(2**62), 0], False), ([1, 2], [1, 2], True)]
    reported, expected = unequal_rows(pl.List(pl.Int64), cases)
    assert reported == expected


def test_anything_else_is_compared_exactly() -> None:
    # equivalent mutant: ``eq_missing(b).fill_null(True)`` (eq_missing never gives a null)
    cases = [("a", "a", True), ("a", "b", False), (None, "a", False), ("a", None, False), (None, None, True)]
    reported, expected = unequal_rows(pl.Utf8, cases)
    assert reported == expected


def test_a_number_recomputed_as_text_is_not_taken_for_equal() -> None:
    with pytest.raises(pl.exceptions.ComputeError):
        differences(column(pl.Float64, [18.0]), column(pl.Utf8, ["18.0"]), "x")


def test_values_are_shown_with_twelve_significant_digits_and_vectors_by_length() -> None:
    assert differences(column(pl.Float64, [1 / 3]), column(pl.Float64, [2 / 3]), "x") == [
        f"x: {A} {NOON} v: stored 0.333333333333 vs recomputed 0.666666666667"
    ]
    assert differences(column(pl.Int64, [5]), column(pl.Int64, [None]), "x") == [
        f"x: {A} {NOON} v: stored 5 vs recomputed None"
    ]
    vectors = differences(column(pl.List(pl.Float64), [[0.0, 1.0]]), column(pl.List(pl.Float64), [[0.0, 2.0]]), "x")
    assert vectors == [f"x: {A} {NOON} v: stored vector[2] vs recomputed vector[2]"]


def keyed(rows: list[tuple[str, datetime, float, float]], extra: dict[str, float] | None = None) -> pl.DataFrame:
    frame = pl.DataFrame(
        [(s, t, t, v, w) for s, t, v, w in rows],
        schema={"symbol": pl.Utf8, "ts_event": UTC_TS, "ts_available": UTC_TS, "v": pl.Float64, "w": pl.Float64},
        orient="row",
    )
    return frame.with_columns(pl.lit(x).alias(name) for name, x in (extra or {}).items())


GHOSTS = {f"g{k}": 0.0 for k in range(1, 7)}  # columns the recomputation lacks


def test_rows_on_one_side_come_first_then_cells_column_by_column_each_in_key_order() -> None:
    stored = keyed([(B, NOON, 1, 1), (A, NOON + BAR, 1, 1), (A, NOON, 1, 1)], GHOSTS)
    # (B, noon) is not recomputed, (B, noon + 5m) not stored; A's noon row differs in v and w, its 12:05 row in w;
    # the stamps differ everywhere (not compared) and the recomputation's extra column z is ignored
    got = keyed([(B, NOON + BAR, 1, 1), (A, NOON, 2, 3), (A, NOON + BAR, 1, 5)], {"z": 9.0})
    got = got.with_columns(pl.col("ts_available") + BAR)
    lacks = "x: recomputation lacks columns ['g1', 'g2', 'g3', 'g4', 'g5']"  # the first five of six
    found = [
        f"x: {B} {NOON}: row missing from recomputation",
        f"x: {B} {NOON + BAR}: row not in stored",
        f"x: {A} {NOON} v: stored 1 vs recomputed 2",
        f"x: {A} {NOON} w: stored 1 vs recomputed 3",
        f"x: {A} {NOON + BAR} w: stored 1 vs recomputed 5",
    ]
    assert differences(stored, got, "x") == [*found, lacks]
    assert differences(stored, got, "x", limit=4) == [*found[:4], lacks]
    assert differences(stored, got, "x", limit=3) == [*found[:3], lacks]  # ``len(out) > limit``: equivalent (no room)
    assert differences(stored, got, "x", limit=1) == [found[0], lacks]
    assert differences(stored.drop(*GHOSTS), got, "x", limit=0) == []


def test_at_most_twenty_messages_by_default() -> None:
    times = [NOON + k * BAR for k in range(25)]
    none = keyed([])
    assert len(differences(keyed([(A, t, 1, 1) for t in times]), none, "x")) == 20
    assert len(differences(none, keyed([(A, t, 1, 1) for t in times]), "x")) == 20
    assert len(differences(keyed([(A, t, 1, 1) for t in times]), keyed([(A, t, 2, 2) for t in times]), "x")) == 20
