"""Truncation cuts lie on the 5m grid: events stamped a few milliseconds after a grid instant (funding settlements
at 00:00:00.001, as some exchanges' files have them) raise no false alarm, and a leak planted near such an
instant is still caught. The check runs as the matrix check does: each symbol cut at its own events, against
the stored rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from raw_sample import SYMBOLS, synthetic_raw
from test_leakage import DAY0, DAY2, LOOKBACK, build

from quantmm_assets.core.features.matrix import RawInputs
from quantmm_assets.core.leakage.asof import restamped
from quantmm_assets.core.leakage.truncation import (
    cut_instants,
    grid_ceil,
    on_grid,
    symbol_cuts,
    truncation_by_symbol,
    truncation_invariance,
)

MS = timedelta(milliseconds=1)
BAR = timedelta(minutes=5)
HOUR = timedelta(hours=1)


def off_grid_raw() -> RawInputs:
    """The synthetic raw data with funding settled 1 ms after the hour, open interest and ratios stamped 3 ms
    after their grid instant and macro observations 2 ms after midnight; availability recomputed."""
    raw = synthetic_raw()
    late = {"funding": MS, "open_interest": 3 * MS, "metrics": 3 * MS, "macro": 2 * MS}
    shifted = {k: getattr(raw, k).with_columns(pl.col("ts_event") + d) for k, d in late.items()}
    return restamped(RawInputs(**{**raw.__dict__, **shifted}))


def early_funding(raw: RawInputs, start: datetime, end: datetime) -> pl.DataFrame:
    """The planted leak: every funding settlement is used one bar before it is known."""
    early = raw.funding.with_columns(pl.col("ts_available") - BAR)
    return build(RawInputs(**{**raw.__dict__, "funding": early}), start, end)


@pytest.fixture(scope="module")
def raw() -> RawInputs:
    return off_grid_raw()


@pytest.fixture(scope="module")
def stored(raw: RawInputs) -> pl.DataFrame:
    return build(raw, DAY0, DAY2)


def test_cut_instants_lie_on_the_grid_at_the_first_row_after_an_off_grid_settlement(raw: RawInputs) -> None:
    settlements = [t for t in raw.funding["ts_event"].to_list() if DAY0 < t <= DAY2]
    assert settlements and all(t.microsecond == 1000 for t in settlements)
    funding_only = RawInputs(**{**raw.__dict__, "macro": raw.macro.clear()})
    cuts = cut_instants(DAY0, DAY2, funding_only, n=60, seed=3)
    assert all(c == on_grid(c) and c.second == 0 and c.microsecond == 0 for c in cuts)
    firsts = {grid_ceil(t) for t in settlements}
    assert len(firsts) <= 60 // 6  # so every settlement is picked: its first row and the row before it
    assert all(c in cuts and (c - BAR in cuts or c - BAR == DAY0) for c in firsts)  # cuts lie in (DAY0, DAY2]


def test_off_grid_settlements_pass_truncation_against_the_stored_rows(raw: RawInputs, stored: pl.DataFrame) -> None:
    cut_at = symbol_cuts(stored, raw, 24, seed=1)
    assert {s for s, _ in cut_at} == set(SYMBOLS)
    assert any(c.hour == 0 and c.minute == 0 for _, c in cut_at)
    out = truncation_by_symbol(raw, stored, cut_at, build, LOOKBACK, HOUR)
    assert out.passed, out.failures
    assert out.checked == len(cut_at) and not out.skipped


def test_a_cut_given_off_the_grid_is_floored_and_compares_only_rows_up_to_it(raw, stored) -> None:
    # the instants of the false alarm: a settlement's stamp and the bar before it, both 1 ms off the grid
    midnight = DAY0 + timedelta(days=1)
    cuts = [midnight + MS, midnight - BAR + MS]
    out = truncation_invariance(raw, build, cuts, LOOKBACK, "off-grid", HOUR, restamp=False, full=stored)
    assert out.passed, out.failures
    assert out.checked == 2


def test_funding_used_one_bar_early_near_an_off_grid_settlement_fails(raw: RawInputs, stored: pl.DataFrame) -> None:
    leaky = early_funding(raw, DAY0, DAY2)
    midnight = DAY0 + timedelta(days=1)
    # the stored row at 00:00 saw the settlement of 00:00:00.001; it could not have
    assert not leaky.filter(pl.col("ts_event") == midnight)["funding_rate"].equals(
        stored.filter(pl.col("ts_event") == midnight)["funding_rate"]
    )
    out = truncation_by_symbol(raw, leaky, symbol_cuts(leaky, raw, 24, seed=1), build, LOOKBACK, HOUR)
    assert not out.passed
    assert any("funding_rate" in f and "00:00" in f for f in out.failures), out.failures
    # the builder itself, cut at the grid instant of the settlement, fails as well
    own = truncation_invariance(raw, early_funding, [midnight + MS], LOOKBACK, "early", HOUR, restamp=False)
    assert not own.passed and any("funding_" in f for f in own.failures)


def test_a_cut_before_the_first_stored_row_compares_nothing_and_is_no_pass(raw, stored) -> None:
    before = DAY0 - timedelta(hours=3)
    out = truncation_invariance(raw, build, [before], LOOKBACK, "early", HOUR, restamp=False, full=stored)
    assert not out.passed and out.nothing_compared and out.checked == 0
    assert out.description.startswith("compared nothing") and "no row" in out.skipped[0]
    mixed = truncation_invariance(raw, build, [before, DAY0 + HOUR], LOOKBACK, "x", HOUR, restamp=False, full=stored)
    assert mixed.passed and mixed.checked == 1 and len(mixed.skipped) == 1
    assert "1 without a row to compare" in mixed.description


def test_every_symbol_is_cut_in_its_own_span_at_its_own_settlements(raw: RawInputs, stored: pl.DataFrame) -> None:
    # ETH is listed a day late and settles funding at 04:00:00.001, 12:00:00.001 and 20:00:00.001
    listing = DAY0 + timedelta(days=1)
    eth_funding = raw.funding.filter(pl.col("symbol") == "ETHUSDT").with_columns(
        pl.col("ts_event", "ts_available") + timedelta(hours=4)
    )
    timing = RawInputs(
        **{**raw.__dict__, "funding": pl.concat([raw.funding.filter(pl.col("symbol") == "BTCUSDT"), eth_funding])}
    )
    late = stored.filter((pl.col("symbol") == "BTCUSDT") | (pl.col("ts_event") >= listing))
    cut_at = symbol_cuts(late, timing, 60, seed=2)
    eth = [c for s, c in cut_at if s == "ETHUSDT"]
    assert eth and min(eth) >= listing
    for t in eth_funding.filter(pl.col("ts_event").is_between(listing, DAY2 - BAR))["ts_event"].to_list():
        assert grid_ceil(t) in eth, t  # ETH's own settlement, though BTC (first in the run) settles elsewhere
    btc = {c for s, c in cut_at if s == "BTCUSDT"}
    assert datetime(2025, 3, 11, 8, 5, tzinfo=UTC) in btc or datetime(2025, 3, 12, 8, 5, tzinfo=UTC) in btc
    out = truncation_by_symbol(raw, late, cut_at, build, LOOKBACK, HOUR)
    assert out.passed and out.checked == len(cut_at), (out.failures, out.skipped)


def test_no_rows_and_no_cuts_compare_nothing(raw: RawInputs) -> None:
    empty = build(raw, DAY0, DAY0)
    assert not len(empty) and symbol_cuts(empty, raw, 50) == []
    out = truncation_by_symbol(raw, empty, [], build, LOOKBACK, HOUR)
    assert out.nothing_compared and not out.passed and out.description.startswith("compared nothing")
