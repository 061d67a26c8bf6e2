"""The evaluation's statistics (core.evaluation.metrics), from their definitions, with hand-computed values.

- ``ic``: Pearson over the pairs where both are finite, NaN with under 2 pairs or a constant side, always in [-1, 1].
- ``rank_ic``: Pearson of the average ranks (ties share the mean of the ranks they span, 1-based).
- ``sharpe_ratio``: mean / std (ddof 1) x sqrt(365 d / h); None under 2 steps or for a constant non-zero series;
  0 when every step is exactly 0 (never in a position).
- ``max_drawdown``: the largest drop of the cumulative PnL from its running peak, the peak starting at 0.
- The calibration table: equal-width buckets of the confidence on [0, 1] (1 in the top bucket), hit rate over the
  rows with ret != 0; ECE = sum of n_b / N x |mean confidence_b - hit rate_b|.

Values are dyadic where the arithmetic must be exact.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from quantmm_assets.core.evaluation.metrics import (
    PREDICTION_SCHEMA,
    average_ranks,
    calibration_table,
    expected_calibration_error,
    fold_metrics,
    horizon_order,
    horizon_seconds,
    ic,
    max_drawdown,
    rank_ic,
    sharpe_ratio,
    trading_steps,
    validate_predictions,
)
from quantmm_assets.core.signal import SignalConfig

T0 = datetime(2025, 1, 6, tzinfo=UTC)
HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)


def frame(
    er: list[float],
    ret: list[float],
    conf: list[float | None] | None = None,
    cost: float = 0.25,
    minutes: list[int] | None = None,
    funding: float = 0.0,
    **key: object,
) -> pl.DataFrame:
    """Predictions of one (backbone, variant, fold, symbol, horizon) group, vol 0.5; row i at T0 + minutes[i]
    minutes (default: one row an hour)."""
    n = len(er)
    g = {"backbone": "ridge", "variant": "full", "fold": 0, "symbol": "BTCUSDT", "horizon": "1h", **key}
    return pl.DataFrame(
        {
            **{k: [v] * n for k, v in g.items()},
            "ts_event": [T0 + m * MINUTE for m in (range(0, 60 * n, 60) if minutes is None else minutes)],
            "expected_return": er,
            "vol_forecast": [0.5] * n,
            "signal_confidence": [0.75] * n if conf is None else conf,
            "y_base": [0.0] * n,
            "gate": [0.0] * n,
            "text_contribution": [0.0] * n,
            "degraded": [False] * n,
            "ret": ret,
            "rv": [0.5] * n,
            "cost": [cost] * n,
            "funding": [funding] * n,
        },
        schema=PREDICTION_SCHEMA,
    )


# --- Pearson and Spearman -----------------------------------------------------------------------------------------


def test_ic_is_pearson_by_hand():
    # x - mean = (-1.5, -0.5, 0.5, 1.5), y - mean = (-1.5, 0.5, -0.5, 1.5): 4 / sqrt(5 x 5) = 0.8
    assert ic([1.0, 2.0, 3.0, 4.0], [1.0, 3.0, 2.0, 4.0]) == 0.8
    assert ic([1.0, 2.0, 3.0, 4.0], [4.0, 2.0, 3.0, 1.0]) == -0.8
    assert ic([[1.0, 2.0], [3.0, 4.0]], [[1.0, 3.0], [2.0, 4.0]]) == 0.8  # any shape, read flat
    assert ic([1.0, 2.0], [5.0, 3.0]) == -1.0  # two pairs are enough
    assert ic([1.0, 2.0, None, 3.0, 4.0], [1.0, 3.0, 5.0, 2.0, 4.0]) == 0.8  # a null is not finite either
    assert ic([1.0, 2.0, 3.0, 4.0, 5.0], [1.0, 3.0, 2.0, 4.0, None]) == 0.8
    # the pairs with a non-finite side are dropped: (3, 7) has a NaN on the left, (5, inf) an inf on the right
    assert ic([1.0, 2.0, math.nan, 3.0, 4.0, 5.0], [1.0, 3.0, 7.0, 2.0, 4.0, math.inf]) == 0.8
    assert rank_ic([1.0, 2.0, math.nan, 3.0, 4.0, 5.0], [10.0, 30.0, 7.0, 20.0, 40.0, -math.inf]) == 0.8
    # Mutant note: einsum "i,i->" -> "I,I->" is EQUIVALENT (the same contraction under another letter).


def test_ic_is_nan_when_undefined():
    assert math.isnan(ic([1.0], [2.0])) and math.isnan(ic([], []))
    assert math.isnan(ic([1.0, math.nan, 2.0], [1.0, 2.0, math.nan]))  # one finite pair left
    # a constant side: 0.1 x 7 has a mean that is not exactly 0.1, so it must be caught before the arithmetic
    assert math.isnan(ic([0.1] * 7, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0]))
    assert math.isnan(ic([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0], [0.1] * 7))
    assert math.isnan(ic([2.0, 2.0, 2.0], [1.0, 2.0, 4.0])) and math.isnan(ic([1.0, 2.0, 4.0], [2.0, 2.0, 2.0]))
    assert math.isnan(rank_ic([1.0], [2.0])) and math.isnan(rank_ic([], []))
    # Mutant note: rank_ic's own ``x.size >= 2`` -> ``... or True`` is EQUIVALENT: _pearson gives NaN under 2 pairs.
    assert math.isnan(rank_ic([3.0, 3.0, 3.0], [1.0, 2.0, 4.0])) and math.isnan(rank_ic([1.0, 2.0], [5.0, 5.0]))
    with pytest.raises(ValueError, match="differ in length"):
        ic([1.0, 2.0, 3.0], [1.0, 2.0])


def test_ic_never_leaves_minus_one_to_one_by_rounding():
    # y = 7x exactly correlated; unclipped, the rounding of (0.1, 0.1, 0.2) gives 1.0000000000000002
    x = np.array([0.1, 0.1, 0.2])
    assert ic(x, 7.0 * x) == 1.0 and ic(x, -7.0 * x) == -1.0


def test_rank_ic_is_spearman_with_average_ranks():
    # two pairs: ranks (1, 2) and (2, 1): -1
    assert rank_ic([1.0, 2.0], [5.0, 3.0]) == -1.0
    assert rank_ic([1.0, 10.0, 100.0], [3.0, 4.0, 9.0]) == 1.0  # monotone, not linear
    # x ranks (1, 2.5, 2.5, 4), y ranks (1, 2, 3, 4): 4.5 / sqrt(4.5 x 5) = sqrt(0.9)
    assert rank_ic([10.0, 20.0, 20.0, 30.0], [1.0, 2.0, 3.0, 4.0]) == pytest.approx(math.sqrt(0.9), rel=1e-15)


def test_average_ranks_share_ties():
    # sorted: 1 1 | 2 | 3 3 | 4 | 5 5 5 | 6 | 9 9 -> ranks 1.5, 3, 4.5, 6, 8, 10, 11.5 (ties first, inside, last)
    x = np.array([3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 9], dtype=float)
    assert average_ranks(x).tolist() == [4.5, 1.5, 6, 1.5, 8, 11.5, 3, 10, 8, 4.5, 8, 11.5]
    assert average_ranks(np.array([7.0, 7.0, 7.0])).tolist() == [2.0, 2.0, 2.0]
    assert average_ranks(np.array([0.5, -1.0])).tolist() == [2.0, 1.0]
    assert average_ranks(np.array([5.0])).tolist() == [1.0] and average_ranks(np.array([])).tolist() == []
    # Mutant notes, EQUIVALENT: ``new[:1] = True`` -> ``new[:2]`` (new[1:] is overwritten by the comparison right
    # after); the dtype of ``new`` or ``ranks`` dropped (numpy's default float64 holds the same 0/1 flags and ranks).


# --- Sharpe and drawdown ------------------------------------------------------------------------------------------


def test_sharpe_is_annualised_mean_over_std():
    # mean 0.25; deviations 0.25, -0.5, 0, 0.25: sum of squares 0.375, / 3 = 0.125: std sqrt(1/8), mean/std = 1/sqrt2
    pnl = [0.5, -0.25, 0.25, 0.5]
    for horizon, steps_per_year in (("1h", 8760), ("4h", 2190), ("1d", 365), ("7d", 365 / 7)):
        assert sharpe_ratio(pnl, horizon) == pytest.approx(math.sqrt(steps_per_year / 2), rel=1e-12)
    # two steps: mean 0.375, std 0.125 x sqrt2: 3 / sqrt2
    assert sharpe_ratio([0.5, 0.25], "1d") == pytest.approx(3 * math.sqrt(365 / 2), rel=1e-12)
    assert sharpe_ratio(np.array([-0.5, -0.25]), "1d") == pytest.approx(-3 * math.sqrt(365 / 2), rel=1e-12)


def test_sharpe_is_none_or_zero_where_the_rule_says():
    assert sharpe_ratio([0.5], "1h") is None and sharpe_ratio([], "1h") is None
    assert sharpe_ratio([0.0, 0.0], "1h") == 0.0  # never in a position
    assert sharpe_ratio([0.1] * 7, "1h") is None  # numpy's std of this constant is 1.5e-17: rounding, not risk
    assert sharpe_ratio([0.5, 0.5], "1h") is None  # an exact zero std
    # a tiny mean with a spread far above 1e-9 x |mean|: defined. mean 2**-20, std 2**-12 x sqrt2
    m, d = 2.0**-20, 2.0**-12
    assert sharpe_ratio([m - d, m + d], "1h") == pytest.approx(2.0**-8 / math.sqrt(2) * math.sqrt(8760), rel=1e-9)
    with pytest.raises(ValueError, match="unknown horizon"):
        sharpe_ratio([0.5, 0.25], "2h")
    # Mutant notes (here and in fold_metrics), EQUIVALENT: ``std > 0`` -> ``std >= 0`` (a zero std means a constant
    # series: all 0 is caught before as flat, any other constant fails ``std > 1e-9 |mean|``); the float64 dtype of
    # the input dropped (numeric input gives the same mean and std).


def test_a_std_exactly_at_the_rounding_tolerance_has_no_sharpe():
    """The std must exceed 1e-9 x |mean| (strict, as every threshold here): at it, the series counts as constant."""
    # (m - d, m, m + d): mean m and std d exactly (squares 2 d^2, / 2, sqrt); m chosen with 1e-9 x m == d to the bit
    d = 3 * 2.0**-40
    m = d / 1e-9
    assert 1e-9 * m == d and np.mean([m - d, m, m + d]) == m and np.std([m - d, m, m + d], ddof=1) == d
    assert sharpe_ratio([m - d, m, m + d], "1h") is None
    assert fold_metrics(frame([0.5] * 3, [m - d, m, m + d], cost=0.0))["sharpe"].item() is None  # pnl = ret
    wide = 2 * d  # twice the spread clears it: sqrt(8760) x m / 2d = sqrt(8760) / 2e-9
    assert sharpe_ratio([m - wide, m, m + wide], "1h") == pytest.approx(math.sqrt(8760) / 2e-9, rel=1e-9)


def test_max_drawdown_from_the_running_peak_started_at_zero():
    assert max_drawdown([0.5, -0.25]) == 0.25
    assert max_drawdown([-0.25, 0.125]) == 0.25  # a loss from the start counts (the peak starts at 0)
    assert max_drawdown([0.5, -0.75, 0.5, -0.5, 1.0]) == 0.75  # cum 0.5, -0.25, 0.25, -0.25, 0.75
    assert max_drawdown([0.25, 0.25]) == 0.0 and max_drawdown([]) == 0.0
    assert max_drawdown([-0.25]) == 0.25
    # Mutant note: the float64 dtype of the input dropped is EQUIVALENT for numeric input.


def test_horizon_lengths_and_order():
    assert [horizon_seconds(h) for h in ("1h", "4h", "1d", "7d")] == [3600, 14400, 86400, 604800]
    with pytest.raises(ValueError, match="unknown horizon"):
        horizon_seconds("2h")
    df = pl.DataFrame({"horizon": ["7d", "1h", "2h", "4h", "1d"]})
    assert df.select(horizon_order()).to_series().to_list() == [3, 0, 4, 1, 2]  # an unknown one after all four


# --- validation ---------------------------------------------------------------------------------------------------


def test_validation_accepts_the_compatible_dtypes_and_casts():
    df = frame([0.5, 0.5], [0.5, 0.5])
    loose = df.with_columns(
        pl.col("symbol").cast(pl.Categorical),
        pl.col("variant").cast(pl.Enum(["full", "no_text"])),
        pl.col("fold").cast(pl.Int32),
        pl.col("ret").cast(pl.Int64),
        pl.lit(None).alias("gate"),  # an all-null column (dtype Null) for a float
        pl.lit(None).alias("degraded"),
        extra=pl.lit(1),
    )
    out = validate_predictions(loose)
    assert {c: out.schema[c] for c in PREDICTION_SCHEMA} == PREDICTION_SCHEMA
    assert out["extra"].to_list() == [1, 1]
    assert validate_predictions(df.clear()).height == 0


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("symbol", pl.lit(3)),
        ("fold", pl.lit(0.0)),
        ("ret", pl.lit("0.5")),
        ("degraded", pl.lit(0)),
        ("ts_event", pl.col("ts_event").dt.convert_time_zone("Europe/Paris")),
        ("ts_event", pl.col("ts_event").dt.date()),
    ],
)
def test_validation_rejects_incompatible_dtypes(column: str, value: pl.Expr):
    bad = frame([0.5, 0.5], [0.5, 0.5]).with_columns(value.alias(column))
    with pytest.raises(ValueError, match=f"wrong dtypes.*{column}"):
        validate_predictions(bad)


def test_validation_of_values():
    df = frame([0.5, 0.5], [0.5, 0.5], conf=[0.0, 1.0])  # the ends of [0, 1] are allowed, NaN and null too
    assert validate_predictions(df).height == 2
    assert validate_predictions(frame([0.5, 0.5], [0.5, 0.5], conf=[math.nan, None])).height == 2
    for conf in ([-0.25, 0.5], [0.5, 1.25]):
        with pytest.raises(ValueError, match=r"outside \[0, 1\]"):
            validate_predictions(frame([0.5, 0.5], [0.5, 0.5], conf=conf))
    for horizons in ([None, "1h"], ["2h", "1h"]):
        with pytest.raises(ValueError, match="unknown or null horizons"):
            validate_predictions(df.with_columns(horizon=pl.Series(horizons, dtype=pl.Utf8)))
    with pytest.raises(ValueError, match="missing columns"):
        validate_predictions(df.drop("rv"))
    with pytest.raises(ValueError, match="duplicate rows"):
        validate_predictions(pl.concat([df, df.tail(1)]))
    # the same instant in another group is no duplicate
    assert validate_predictions(pl.concat([df, df.with_columns(fold=pl.lit(1, dtype=pl.Int64))])).height == 4


# --- calibration --------------------------------------------------------------------------------------------------


def test_calibration_table_by_hand():
    # 4 buckets of width 0.25. ret 0 (row 6) and a NaN confidence (row 7) are left out; confidence 1 is in bucket 3.
    er = [0.5, -0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]
    ret = [0.25, 0.25, -0.25, 0.25, 0.25, 0.25, 0.0, 0.25]
    conf = [0.0, 0.125, 0.5, 0.625, 1.0, 0.75, 0.5, math.nan]
    table = calibration_table(frame(er, ret, conf), n_buckets=4)
    assert table["bucket"].to_list() == [0, 2, 3]
    assert table["bucket_low"].to_list() == [0.0, 0.5, 0.75] and table["bucket_high"].to_list() == [0.25, 0.75, 1.0]
    assert table["n"].to_list() == [2, 2, 2]
    assert table["mean_confidence"].to_list() == [0.0625, 0.5625, 0.875]
    assert table["hit_rate"].to_list() == [0.5, 0.5, 1.0]  # bucket 0: row 0 hits, row 1 misses; bucket 2: row 3 only
    # ECE: (2 |0.0625 - 0.5| + 2 |0.5625 - 0.5| + 2 |0.875 - 1|) / 6 = (0.875 + 0.125 + 0.25) / 6
    ece = expected_calibration_error(table).row(0, named=True)
    assert ece["n"] == 6 and ece["ece"] == pytest.approx(1.25 / 6, rel=1e-15)


def test_one_bucket_and_the_order_of_the_table():
    df = pl.concat(
        [frame([0.5] * 2, [0.25] * 2, [0.25, 1.0], horizon=h, backbone=b) for b in "BA" for h in ["4h", "1h"]]
    )
    table = calibration_table(df, n_buckets=1)
    assert table.select("backbone", "horizon").rows() == [("A", "1h"), ("A", "4h"), ("B", "1h"), ("B", "4h")]
    assert table["n"].to_list() == [2] * 4 and table["mean_confidence"].to_list() == [0.625] * 4
    assert table["bucket_low"].to_list() == [0.0] * 4 and table["bucket_high"].to_list() == [1.0] * 4
    by_tenths = calibration_table(frame([0.5] * 2, [0.25] * 2, [0.125, 0.95]))  # the default: 10 buckets
    assert by_tenths["bucket"].to_list() == [1, 9] and by_tenths["bucket_low"].to_list() == [0.1, 0.9]
    # Mutant note: the bucket's lower clip at 0 dropped is EQUIVALENT: validation keeps the confidence >= 0.
    with pytest.raises(ValueError, match="n_buckets"):
        calibration_table(df, n_buckets=0)
    ece = expected_calibration_error(table)
    assert ece.select("backbone", "horizon").rows() == [("A", "1h"), ("A", "4h"), ("B", "1h"), ("B", "4h")]
    assert ece["ece"].to_list() == [0.375] * 4  # |0.625 - 1|
    with pytest.raises(ValueError, match="missing columns"):
        expected_calibration_error(table.drop("hit_rate"))


# --- fold metrics and steps ---------------------------------------------------------------------------------------


def test_fold_metric_correlations_by_hand():
    # er and ret are (1, 2, 3, 4) / 8 and (1, 3, 2, 4) / 8: Pearson 0.8 (as above), ranks the same: Spearman 0.8
    m = fold_metrics(frame([0.125, 0.25, 0.375, 0.5], [0.125, 0.375, 0.25, 0.5])).row(0, named=True)
    assert m["ic"] == pytest.approx(0.8, rel=1e-12) and m["rank_ic"] == pytest.approx(0.8, rel=1e-12)
    two = fold_metrics(frame([0.5, -0.5], [0.25, 0.75])).row(0, named=True)  # two rows are enough: -1
    assert two["ic"] == pytest.approx(-1.0, rel=1e-12) and two["rank_ic"] == pytest.approx(-1.0, rel=1e-12)
    # a constant side (0.1 x 7, whose float mean is not exactly 0.1) has no correlation
    varying = [0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 1.0]
    for er, ret in (([0.1] * 7, varying), (varying, [0.1] * 7)):
        m = fold_metrics(frame(er, ret)).row(0, named=True)
        assert m["ic"] is None and m["rank_ic"] is None and m["n_rows"] == 7


def test_fold_metric_sharpe_by_hand():
    # always long (er 0.5, no cost): pnl = ret. Two steps 0.5, 0.25: 3 / sqrt2 x sqrt(8760) (as sharpe_ratio)
    m = fold_metrics(frame([0.5, 0.5], [0.5, 0.25], cost=0.0)).row(0, named=True)
    assert m["n_steps"] == 2 and m["sharpe"] == pytest.approx(3 * math.sqrt(4380), rel=1e-12)
    assert fold_metrics(frame([0.5, 0.5], [0.5, 0.5], cost=0.0))["sharpe"].item() is None  # constant, not 0
    assert fold_metrics(frame([0.0], [0.5]))["sharpe"].item() is None  # one flat step: too few for a Sharpe
    assert fold_metrics(frame([0.0, 0.0], [0.5, -0.5]))["sharpe"].item() == 0.0  # never in a position
    m, d = 2.0**-20, 2.0**-12  # a tiny mean with a spread far above 1e-9 x |mean|: defined
    tiny = fold_metrics(frame([0.5, 0.5], [m - d, m + d], cost=0.0))["sharpe"].item()
    assert tiny == pytest.approx(2.0**-8 / math.sqrt(2) * math.sqrt(8760), rel=1e-9)
    # Mutant notes, EQUIVALENT: the per-year lookup's default and the join's ``how="left"`` dropped (validated
    # horizons are all known; every scorable group has a step).


def test_trading_steps_keep_to_the_asked_horizon():
    hourly = frame([0.5, 0.5], [0.5, 0.25])
    df = pl.concat([frame([0.5, -0.5], [0.5, 0.25], minutes=[0, 240], horizon="4h"), hourly])
    assert trading_steps(df, "1h")["horizon"].to_list() == ["1h", "1h"]
    assert trading_steps(df)["horizon"].to_list() == ["1h", "1h", "4h", "4h"]
    assert trading_steps(hourly, "4h").height == 0
    with pytest.raises(ValueError, match="unknown horizon"):
        trading_steps(df, "2h")
    empty = trading_steps(df.clear())
    assert empty.height == 0 and {"position", "prev_position", "pnl"} <= set(empty.columns)
    assert fold_metrics(df.clear()).height == 0
    # Mutant notes, EQUIVALENT: the empty frame's steps built under horizon None or config None (no row to sign);
    # in _trading_steps (rows of one horizon) the group keys taking "horizon" in too, ``signal_expr(config, None)``
    # (each row's horizon column is the horizon), ``shift(fill_value=0.0)`` (n defaults to 1) and the first-row
    # flag's ``fill_null(False)`` (``ne_missing`` against the shifted null is already True, never null).


def test_a_group_within_one_step_leaves_the_next_group_its_first_step():
    # group A has one row at 0h (slot 0); group B's first row is also in its slot 0 and must still be a step
    a = frame([0.5], [0.5], symbol="AAA")
    b = frame([0.5, -0.5], [0.5, -0.25], symbol="BBB")
    steps = trading_steps(pl.concat([b, a]), "1h")
    assert steps.select("symbol", "ts_event").rows() == [("AAA", T0), ("BBB", T0), ("BBB", T0 + HOUR)]
    # B: long from flat 0.5 - 0.125, then short: 0.25 - 2 x 0.125
    assert steps["pnl"].to_list() == [0.375, 0.375, 0.0]


def step_minutes(steps: pl.DataFrame, symbol: str) -> list[int]:
    return [int((t - T0) / MINUTE) for t in steps.filter(pl.col("symbol") == symbol)["ts_event"]]


def test_steps_follow_each_group_s_own_grid():
    """The grid is t0 + k h from the group's first row; grid point g takes the first row at or after g unless that
    row is under h after the step kept before it (then g is skipped)."""
    groups = {
        "A": [0, 20, 40, 60, 80, 100, 120],  # rows every 20 min: the grid rows 0, 60, 120
        # from 15: grid 15, 75, 135; 65 is still in the first hour of B (under the grid from 0 it would be in the 2nd)
        "B": [15, 35, 65, 75, 95, 135],
        # grid 60 -> 110; grid 120 -> 165 is 55 min after 110: skipped; grid 180 -> 215 (105 after 110): kept
        "C": [0, 110, 165, 215],
        # 70 kept; 125 is 55 after 70: skipped; 185 kept; 245 exactly h after 185: kept; 300 is 55 after: skipped
        "D": [0, 70, 125, 185, 245, 300],
    }
    frames = [frame([0.5] * len(m), [0.25] * len(m), minutes=m, symbol=s) for s, m in groups.items()]
    steps = trading_steps(pl.concat(frames[::-1]), "1h")
    want = {"A": [0, 60, 120], "B": [15, 75, 135], "C": [0, 110, 215], "D": [0, 70, 185, 245]}
    assert {s: step_minutes(steps, s) for s in groups} == want
    # every group's first step is charged from flat, then held: 0.25 - 0.125, then 0.25
    assert steps.group_by("symbol").agg(pl.col("pnl").first())["pnl"].to_list() == [0.125] * 4
    assert steps["pnl"].sum() == 4 * 0.125 + (steps.height - 4) * 0.25
    # Mutant notes (_step_rows), all EQUIVALENT: the first candidate is a group's first row, never a conflict, and
    # the second is either another group's first row or at least h after the first, so ``conflict[:1] = False``
    # -> ``conflict[:2]`` / ``None`` changes nothing, and the -1 put on conflicts in ``last_clear`` may be any value
    # <= 1 (the running max is >= 1 from the second candidate on); ``(i - last_clear) % 2`` has the parity of
    # ``(i + last_clear) % 2``.


def test_hit_rate_mae_drawdown_by_hand():
    # hit rate over ret != 0: row 0 hits, row 2 misses (short, ret up), row 3 misses (er 0 has no side); row 1 has
    # ret 0 and is not counted: 1 / 3. mae = (0.25 + 0.5 + 0.75 + 0.25) / 4
    m = fold_metrics(frame([0.5, 0.5, -0.5, 0.0], [0.25, 0.0, 0.25, 0.25])).row(0, named=True)
    assert m["hit_rate"] == 1 / 3 and m["mae"] == 1.75 / 4
    # always long, no cost: pnl = ret; cum 0.5, -0.25, 0.25, -0.25, 0.75: the largest drop 0.75
    assert fold_metrics(frame([0.5] * 5, [0.5, -0.75, 0.5, -0.5, 1.0], cost=0.0))["max_drawdown"].item() == 0.75
    assert fold_metrics(frame([0.5] * 2, [-0.25, 0.125], cost=0.0))["max_drawdown"].item() == 0.25  # from 0
    assert fold_metrics(frame([0.5] * 2, [0.25, 0.25], cost=0.0))["max_drawdown"].item() == 0.0


def test_fold_metrics_trade_under_the_given_signal_config():
    df = frame([0.5, -0.5], [0.5, -0.25])  # score 0.5 each
    assert fold_metrics(df)["exposure"].item() == 1.0
    assert fold_metrics(df, SignalConfig(score_threshold={"1h": 0.5}))["exposure"].item() == 0.0  # not past 0.5
