"""Label rules pinned by hand (issue 11): instants taken as UTC, horizon bounds, row order, exact error text.

Equivalent mutants of ``core/labels.py`` (no observable change; listed in docs/mutation.md):
- ``_perp_closes`` filter ``t < hi`` -> ``t <= hi``: ``hi = end + longest``; the latest bar any row reads closes
  at ``t + h <= end - 5m + longest < hi``, so a bar closing exactly at ``hi`` is never read.
- ``r2.fill_null(0.0)`` -> ``fill_null(1.0)``: a window holding a null ``r2`` has ``n < k`` and its ``rv`` is
  null whatever the filled sum is.
- ``rolling_sum_by(..., closed="right")`` -> the default: polars' default for ``rolling_*_by`` is ``"right"``.
- ``maintain_order="left"`` dropped on the left joins, ``validate="m:1"`` dropped on the forward join (its keys
  come from frames that passed the same validation), ``pl.lit(name, pl.Utf8)`` -> ``pl.lit(name)``: the same
  frame with today's polars (the options make the order and the uniqueness a contract, not an accident).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone

import polars as pl
import pytest
from test_costs_labels import BAR, CLOSES, SMALL, T0, bars, no_spread

from quantmm_assets.core.costs import CostConfig
from quantmm_assets.core.labels import as_utc, labels_multi_horizon

PLUS_TWO = timezone(timedelta(hours=2))


def test_a_naive_instant_is_taken_as_utc_whatever_the_machine_zone(new_york_clock) -> None:
    got = as_utc(datetime(2025, 1, 1, 12, 0))
    assert got == datetime(2025, 1, 1, 12, 0, tzinfo=UTC) and got.tzinfo is UTC


def test_an_aware_instant_is_converted_to_utc_not_relabelled(new_york_clock) -> None:
    got = as_utc(datetime(2025, 1, 1, 12, 0, tzinfo=PLUS_TWO))  # 12:00 at +02:00 is 10:00 UTC
    assert got.hour == 10 and got.tzinfo is UTC


def test_the_window_bounds_may_be_naive_or_in_another_zone() -> None:
    """[T0, T0 + 3 bars) written three ways selects the same three rows per horizon."""
    aware = labels_multi_horizon(bars(CLOSES), no_spread(), T0, T0 + 3 * BAR, CostConfig(), SMALL)
    assert aware["ts_event"].unique().sort().to_list() == [T0, T0 + BAR, T0 + 2 * BAR]
    naive_start, naive_end = T0.replace(tzinfo=None), (T0 + 3 * BAR).replace(tzinfo=None)
    naive = labels_multi_horizon(bars(CLOSES), no_spread(), naive_start, naive_end, CostConfig(), SMALL)
    shifted = labels_multi_horizon(
        bars(CLOSES), no_spread(), T0.astimezone(PLUS_TWO), (T0 + 3 * BAR).astimezone(PLUS_TWO), CostConfig(), SMALL
    )
    assert naive.equals(aware) and shifted.equals(aware)


@pytest.mark.parametrize("bad", [0, -1])
def test_a_horizon_of_no_bar_is_refused(bad: int) -> None:
    with pytest.raises(ValueError, match="horizons must be positive bar counts"):
        labels_multi_horizon(bars(CLOSES), no_spread(), T0, T0 + 3 * BAR, CostConfig(), {"x": bad})


def test_a_one_bar_horizon_is_the_next_bar() -> None:
    out = labels_multi_horizon(bars(CLOSES), no_spread(), T0, T0 + 2 * BAR, CostConfig(), {"5m": 1})
    assert out["ret"].to_list() == pytest.approx([math.log(101 / 100), math.log(99 / 101)], abs=1e-15)
    assert out["rv"].to_list() == pytest.approx([abs(math.log(101 / 100)), abs(math.log(99 / 101))], abs=1e-15)


def test_rows_come_sorted_by_symbol_time_and_horizon_whatever_the_input_order() -> None:
    """Y's bars listed before X's and in reverse time: the output is X's rows then Y's, by time, horizons in the
    order given; each value is that row's own (Y's closes are X's doubled: the same log returns)."""
    x = bars(CLOSES, symbol="X")
    y = bars([2 * c for c in CLOSES], symbol="Y")
    shuffled = pl.concat([y.reverse(), x.reverse()])
    out = labels_multi_horizon(shuffled, no_spread(), T0, T0 + 3 * BAR, CostConfig(), SMALL)
    keys = [(s, t, h) for s in ("X", "Y") for t in (T0, T0 + BAR, T0 + 2 * BAR) for h in ("10m", "15m")]
    assert list(zip(out["symbol"], out["ts_event"], out["horizon"], strict=True)) == keys
    ret_10m_at_t0 = math.log(CLOSES[2] / CLOSES[0])
    for sym in ("X", "Y"):
        row = out.filter((pl.col("symbol") == sym) & (pl.col("ts_event") == T0) & (pl.col("horizon") == "10m"))
        assert row["ret"].item() == pytest.approx(ret_10m_at_t0, abs=1e-15)


def test_duplicate_rows_are_refused_with_the_exact_reason() -> None:
    dup = pl.concat([bars(CLOSES), bars(CLOSES)])
    with pytest.raises(ValueError, match=r"^bars: duplicate perp bars \(symbol, ts_event\)$"):
        labels_multi_horizon(dup, no_spread(), T0, T0 + 6 * BAR, CostConfig(), SMALL)
    spread = pl.DataFrame(
        {"symbol": ["X", "X"], "ts_event": [T0, T0], "cs_spread_1d": [0.1, 0.2]},
        schema={"symbol": pl.Utf8, "ts_event": pl.Datetime("us", "UTC"), "cs_spread_1d": pl.Float64},
    )
    with pytest.raises(ValueError, match=r"^spread: duplicate \(symbol, ts_event\) rows$"):
        labels_multi_horizon(bars(CLOSES), spread, T0, T0 + 6 * BAR, CostConfig(), SMALL)


def test_each_horizon_charges_the_settlements_of_its_own_window() -> None:
    """Settlements at T0 - 1h (0.1), T0 + 10m (0.01) and T0 + 20m (0.001), symbol X: per row t and horizon h the
    labels' ``funding`` is the sum over (t, t + h], null where no settlement precedes t; other symbols are unknown."""
    settle = pl.DataFrame(
        {
            "symbol": ["X", "X", "X", "Y"],
            "ts_event": [T0 - 12 * BAR, T0 + 2 * BAR, T0 + 4 * BAR, T0],
            "funding_rate": [0.1, 0.01, 0.001, 5.0],
        },
        schema_overrides={"ts_event": pl.Datetime("us", "UTC")},
    )
    out = labels_multi_horizon(bars(CLOSES), no_spread(), T0, T0 + 3 * BAR, CostConfig(), SMALL, funding=settle)
    got = {(r["ts_event"], r["horizon"]): r["funding"] for r in out.iter_rows(named=True)}
    assert got == pytest.approx(
        {
            (T0, "10m"): 0.01,  # (T0, T0 + 10m]
            (T0, "15m"): 0.01,  # (T0, T0 + 15m]
            (T0 + BAR, "10m"): 0.01,  # (T0 + 5m, T0 + 15m]
            (T0 + BAR, "15m"): 0.011,  # (T0 + 5m, T0 + 20m]: both
            (T0 + 2 * BAR, "10m"): 0.001,  # (T0 + 10m, T0 + 20m]: the 10m settlement is at its start, not in it
            (T0 + 2 * BAR, "15m"): 0.001,
        }
    )
    before = settle.filter(pl.col("ts_event") > T0 - BAR)  # no settlement at or before T0: unknown from T0
    early = labels_multi_horizon(bars(CLOSES), no_spread(), T0, T0 + BAR, CostConfig(), SMALL, funding=before)
    assert early["funding"].to_list() == [None, None]
    assert (
        labels_multi_horizon(bars(CLOSES), no_spread(), T0, T0 + BAR, CostConfig(), SMALL)["funding"].null_count() == 2
    )
