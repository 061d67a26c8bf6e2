"""Truncation invariance (``core.leakage.truncation``) from its rules, on raw rows written by hand.

Dates: D is Wed 2025-03-12 00:00 UTC. The VIX of Mon 03-10 is posted Tue 03-11 14:00 (next business day 14:00),
the 10y yield of Tue 03-11 at Wed 03-12 22:00 (next business day 22:00). Bars: one per 5 minutes, D-3 00:00 to D+2
00:00, close = base + k for the k-th bar (BTCUSDT base 1000, ETHUSDT base 5000), known at its close (open + 5m).
Funding: every 8 hours from D-15, final at settlement.

The builder below stands in for the feature builder: one row per symbol and 5m grid instant t in [start, end):
``last_close`` (close of the last bar known at t: the bar opened at t - 5m, so base + k(t) - 1), ``bars_back``
(bars known at t opened in the last ``bars_window``) and ``funding_back`` (settlements known at t since t's day
minus ``funding_days``). Rows compared for a cut C with ``compare`` 1h: C-55m .. C (12 rows).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest

from quantmm_assets.core.features.matrix import RawInputs, raw_inputs
from quantmm_assets.core.leakage.truncation import (
    cut_instants,
    event_instants,
    grid_ceil,
    on_grid,
    symbol_cuts,
    truncation_by_symbol,
    truncation_invariance,
)
from quantmm_assets.core.schemas import RAW_SCHEMAS, UTC_TS

A, B, C_SYM = "BTCUSDT", "ETHUSDT", "SOLUSDT"
BAR, HOUR, DAY, MS = timedelta(minutes=5), timedelta(hours=1), timedelta(days=1), timedelta(milliseconds=1)
D = datetime(2025, 3, 12, tzinfo=UTC)
C = D + 12 * HOUR  # the usual cut: rows 11:05 .. 12:00 compared
B0 = D - 3 * DAY  # first bar
BASE = {A: 1000.0, B: 5000.0}
BARS_ONLY = {"market_bars_5m": DAY}  # declared look-back of the bars; funding not named: not cut at the start
ROW_SCHEMA = {"symbol": pl.Utf8, "ts_event": UTC_TS, "ts_available": UTC_TS, "last_close": pl.Float64}
ROW_SCHEMA |= {"bars_back": pl.Int64, "funding_back": pl.Int64}


def close_at(sym: str, t: datetime) -> float:
    """The close of the bar opened at ``t``."""
    return BASE[sym] + (t - B0) / BAR


def bars(symbols: tuple[str, ...] = (A,), early: bool = False) -> pl.DataFrame:
    """5m bars D-3 .. D+2, stamped at their close (``early``: at their open, too early by the rule)."""
    opens = [B0 + k * BAR for k in range(5 * 288)]
    rows = [
        (s, "perp", t, t if early else t + BAR, 1.0, 1.0, 1.0, close_at(s, t), 1.0, None, None, "hand")
        for s in symbols
        for t in opens
    ]
    return pl.DataFrame(rows, schema=RAW_SCHEMAS["market_bars_5m"].columns, orient="row")


def funding(events: list[tuple[str, datetime]], lag: timedelta = timedelta(0)) -> pl.DataFrame:
    """Funding settlements, stored ``ts_available`` = settlement + ``lag`` (the rule: lag 0)."""
    rows = [(s, t, t + lag, 1e-4, None, "hand") for s, t in events]
    return pl.DataFrame(rows, schema=RAW_SCHEMAS["funding_rates"].columns, orient="row")


def macro(obs: list[tuple[str, datetime]]) -> pl.DataFrame:
    """Macro observations stamped at their observation day (wrong: the check must recompute the release)."""
    rows = [(s, t, t, 20.0, "hand", "hand") for s, t in obs]
    return pl.DataFrame(rows, schema=RAW_SCHEMAS["macro_series"].columns, orient="row")


def lake(symbols: tuple[str, ...] = (A,), early: bool = False) -> RawInputs:
    """Bars of ``symbols`` and their funding every 8 hours, D-15 00:00 .. D+1 16:00."""
    settle = [(s, D - 15 * DAY + k * 8 * HOUR) for s in symbols for k in range(17 * 3)]
    return raw_inputs(bars=bars(symbols, early), funding=funding(settle))


def micros(values: pl.Series | datetime) -> np.ndarray | int:
    if isinstance(values, datetime):
        return (values - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    return values.dt.epoch("us").to_numpy()


def builder(bars_window: timedelta = DAY, funding_days: int = 3, peek_symbol: str | None = None):
    """The stand-in builder; ``peek_symbol`` reads one bar ahead for that symbol (the planted look-ahead)."""

    def build(raw: RawInputs, start: datetime, end: datetime) -> pl.DataFrame:
        times, t = [], grid_ceil(start)
        while t < end:
            times, t = [*times, t], t + BAR
        rows = []
        for sym in sorted(set(raw.bars["symbol"].to_list())):
            b = raw.bars.filter(pl.col("symbol") == sym).sort("ts_event")
            ev, av, close = micros(b["ts_event"]), micros(b["ts_available"]), b["close"].to_numpy()
            f = raw.funding.filter(pl.col("symbol") == sym)
            fev, fav = micros(f["ts_event"]), micros(f["ts_available"])
            for t in times:
                seen = av <= micros(t + (BAR if sym == peek_symbol else timedelta(0)))
                back = int(((av <= micros(t)) & (ev >= micros(t - bars_window))).sum())
                since = micros(datetime(t.year, t.month, t.day, tzinfo=UTC) - funding_days * DAY)
                fund = int(((fav <= micros(t)) & (fev >= since)).sum())
                rows.append((sym, t, t, float(close[seen][-1]) if seen.any() else None, back, fund))
        return pl.DataFrame(rows, schema=ROW_SCHEMA, orient="row")

    return build


honest = builder()


# --- the grid -------------------------------------------------------------------------------------------------------


def test_on_grid_floors_to_the_last_5m_instant_in_utc_and_grid_ceil_rounds_up(monkeypatch: pytest.MonkeyPatch) -> None:
    assert on_grid(C) == C  # exactly on the grid
    assert on_grid(C + 4 * BAR / 5 + 59 * timedelta(seconds=1)) == C  # 12:04:59 -> 12:00
    assert on_grid(C - MS) == C - BAR and on_grid(C + MS) == C  # a millisecond either side
    monkeypatch.setenv("TZ", "Asia/Tokyo")  # the floor is in UTC whatever the machine's zone
    time.tzset()
    try:  # 13:07 at +01:00 is 12:07 UTC -> 12:05 UTC
        assert on_grid(at := datetime(2025, 3, 12, 13, 7, tzinfo=timezone(HOUR))) == C + BAR
        assert on_grid(at).utcoffset() == timedelta(0)
    finally:
        monkeypatch.undo()
        time.tzset()
    # grid_ceil: the first grid instant at or after
    assert grid_ceil(C) == C
    assert grid_ceil(C + MS) == C + BAR  # a settlement at 12:00:00.001 is first seen by the 12:05 row
    assert grid_ceil(C - MS) == C


def test_event_instants_are_recomputed_from_ts_event() -> None:
    # equivalent mutants: the funding branch taken on an empty frame (its list is [] too); the macro frame handed to
    # recomputed_availability as None (the rule reads only the ts_event and series_id columns of the expression)
    # funding stored an hour early, macro stored at its observation: neither stored stamp is used
    settle = [(A, D - DAY + 8 * HOUR + MS), (B, D - DAY + 16 * HOUR)]
    raw = raw_inputs(funding=funding(settle, lag=-HOUR), macro=macro([("vix", D - 2 * DAY), ("us10y", D - DAY)]))
    assert event_instants(raw) == [settle[0][1], settle[1][1], D - DAY + 14 * HOUR, D + 22 * HOUR]
    assert event_instants(raw_inputs(macro=macro([("vix", D - 2 * DAY)]))) == [D - DAY + 14 * HOUR]
    assert event_instants(raw_inputs(funding=funding(settle))) == [s[1] for s in settle]
    assert event_instants(raw_inputs()) == []


# --- cut instants ---------------------------------------------------------------------------------------------------


def test_a_span_with_fewer_steps_than_asked_gives_every_step() -> None:
    # equivalent mutants: the fill guard ``steps > 0`` as ``>= 0`` or always true (numpy permutes 0 or a negative
    # count into nothing)
    every = [C + k * BAR for k in range(1, 13)]  # (12:00, 13:00]: 12 grid instants
    assert cut_instants(C, C + HOUR, raw_inputs(), n=50) == every
    assert cut_instants(C + 3 * BAR / 5, C + HOUR + 4 * BAR / 5, raw_inputs(), n=50) == every  # both floored
    assert cut_instants(C, C + BAR, raw_inputs(), n=50) == [C + BAR]  # one step
    assert cut_instants(C + BAR / 5, C + 4 * BAR / 5, raw_inputs(), n=50) == []  # both floor to 12:00: no step
    assert cut_instants(C, C - HOUR, raw_inputs(), n=50) == []  # end before start


def test_n_seeded_cuts_on_the_grid_inside_the_span() -> None:
    start, end = D - 10 * DAY, D
    cuts = cut_instants(start, end, raw_inputs())  # n defaults to 60, seed to 0
    assert len(cuts) == 60 == len(set(cuts)) and cuts == sorted(cuts)
    assert all(start < c <= end and on_grid(c) == c for c in cuts)
    assert cuts == cut_instants(start, end, raw_inputs(), 60, 0)  # seeded: the same draw again
    assert cuts != cut_instants(start, end, raw_inputs(), 60, 1)


def test_partition_boundaries_in_start_end() -> None:
    # equivalent mutants: the first midnight a day early, ``max(1, ...)``, ``days + 2`` (the extra midnights lie
    # outside (start, end] and are filtered out); ``start <= d`` (the first midnight is always after start)
    # midnights in (D-3 00:00, D 00:00]: D-2, D-1, D (n // 3 = 3 of them); the end 00:04 is floored to 00:00
    cuts = cut_instants(D - 3 * DAY, D + 4 * BAR / 5, raw_inputs(), n=9)
    assert {D - 2 * DAY, D - DAY, D} <= set(cuts) and D - 3 * DAY not in cuts
    assert len(cuts) == 9


def test_event_instants_and_the_grid_instant_before_them_are_cut() -> None:
    start, end = D - 2 * DAY, D  # Mon 00:00 .. Wed 00:00; n = 36: n // 6 = 6 events, all five of them
    settle = [start, start + 3 * timedelta(minutes=1), D - DAY + 8 * HOUR + MS, D - DAY + 16 * HOUR, end]
    raw = raw_inputs(funding=funding([(A, t) for t in settle]), macro=macro([("vix", start)]))
    cuts = cut_instants(start, end, raw, n=36)
    must = {D - DAY, D, start + BAR}  # midnights; 00:03 -> 00:05 (the instant before it is the start: not cut)
    must |= {D - DAY + 8 * HOUR + BAR, D - DAY + 8 * HOUR}  # 08:00:00.001 -> 08:05 and 08:00
    must |= {D - DAY + 16 * HOUR, D - DAY + 16 * HOUR - BAR}  # on the grid: 16:00 and 15:55
    must |= {D - DAY + 14 * HOUR, D - DAY + 14 * HOUR - BAR}  # the VIX release (recomputed): 14:00 and 13:55
    must |= {end - BAR}  # a settlement at the end: the end (a midnight too) and 23:55
    assert must <= set(cuts) and start not in cuts  # a settlement at the start is outside (start, end]
    assert len(cuts) == 36 and all(start < c <= end for c in cuts)


def test_a_third_of_the_cuts_at_midnights_and_a_sixth_at_events() -> None:
    # equivalent mutants in _spread: ``len(items) < k`` (exactly k items: all k drawn, the same set), and
    # ``replace=None`` (numpy reads it as False)
    # 5 midnights (D-4 .. D) and 5 settlements at 08:00:00.001; n = 12: 4 midnights, 2 events (08:00 and 08:05 each)
    start, end = D - 5 * DAY, D
    raw = raw_inputs(funding=funding([(A, D - k * DAY + 8 * HOUR + MS) for k in range(1, 6)]))
    midnights, paired = [], []
    for seed in range(5):
        cuts = set(cut_instants(start, end, raw, n=12, seed=seed))
        midnights.append(len({D - k * DAY for k in range(5)} & cuts))
        paired.append(sum({D - k * DAY + 8 * HOUR, D - k * DAY + 8 * HOUR + BAR} <= cuts for k in range(1, 6)))
    # the random fill may land on a midnight as well (rarely): at least 4 each time, exactly 4 for some seed
    assert min(midnights) == 4 and paired == [2] * 5


# --- symbol cuts ----------------------------------------------------------------------------------------------------


def stored_spans() -> pl.DataFrame:
    """BTC rows D-1 00:00 .. D 00:00; ETH listed at D-1 12:00 (to D 00:00); SOL rows D-1 12:00 .. 12:30 only."""
    spans = [(A, D - DAY, D), (B, D - DAY + 12 * HOUR, D), (C_SYM, D - DAY + 12 * HOUR, D - DAY + 12.5 * HOUR)]
    rows = [(s, first + k * BAR) for s, first, last in spans for k in range(int((last - first) / BAR) + 1)]
    return pl.DataFrame(rows, schema={"symbol": pl.Utf8, "ts_event": UTC_TS}, orient="row")


def test_each_symbol_is_cut_in_its_own_span_at_its_own_events() -> None:
    # equivalent mutants: the names of the first/last columns (the spans are read by position)
    day = D - DAY
    settle = [(A, day + 8 * HOUR + MS), (A, day + 16 * HOUR + MS), (B, day + 20 * HOUR + MS)]
    timing = raw_inputs(funding=funding(settle), macro=macro([("vix", D - 2 * DAY)]))  # VIX out at day 14:00
    pairs = symbol_cuts(stored_spans(), timing, 52)  # ceil(52 / 3) = 18 a symbol (or all its steps)
    assert [s for s, _ in pairs] == [A] * 18 + [B] * 18 + [C_SYM] * 7  # in the stored order
    cuts = {s: {c for x, c in pairs if x == s} for s in (A, B, C_SYM)}
    # SOL has 7 rows: its cuts are exactly its rows (cut_instants over (first - 5m, last])
    assert sorted(cuts[C_SYM]) == [day + 12 * HOUR + k * BAR for k in range(7)]
    assert all(day <= c <= D for c in cuts[A]) and all(day + 12 * HOUR <= c <= D for c in cuts[B])
    vix = {day + 14 * HOUR, day + 14 * HOUR - BAR}  # the macro release everyone shares
    assert {day, D, day + 8 * HOUR, day + 8 * HOUR + BAR, day + 16 * HOUR, day + 16 * HOUR + BAR} | vix <= cuts[A]
    assert {D, day + 20 * HOUR, day + 20 * HOUR + BAR} | vix <= cuts[B]
    # BTC's settlement at 16:00:00.001 lies in ETH's span but is not ETH's: its two instants are not both cut
    assert not {day + 16 * HOUR, day + 16 * HOUR + BAR} <= cuts[B]
    assert symbol_cuts(stored_spans(), timing, 52) == pairs  # seeded: the same pairs again
    assert symbol_cuts(stored_spans(), timing, 52, seed=1) != pairs  # the seed reaches the random fill
    assert symbol_cuts(stored_spans().clear(), timing, 52) == []


def test_symbols_are_cut_in_the_stored_order() -> None:
    # the order decides whose failures are kept under the cap of 20; one row each: per = 1, the cut is that row
    names = ["XRPUSDT", "ADAUSDT", C_SYM, A, B, "DOGEUSDT", "BNBUSDT", "LTCUSDT"]
    stored = pl.DataFrame({"symbol": names, "ts_event": [C + k * BAR for k in range(8)]})
    assert symbol_cuts(stored, raw_inputs(), 8) == [(s, C + k * BAR) for k, s in enumerate(names)]


# --- truncation_invariance ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def raw_a() -> RawInputs:
    return lake()


@pytest.fixture(scope="module")
def stored_a(raw_a: RawInputs) -> pl.DataFrame:
    return honest(raw_a, D - DAY, D + DAY)


def where(label: str, cut: datetime, sym: str, t: datetime, column: str, stored: object, got: object) -> str:
    return f"{label} data cut at {cut:%Y-%m-%d %H:%M} and at the look-back: {sym} {t} {column}: stored {stored} vs " + (
        f"recomputed {got}"
    )


def test_rows_in_the_window_up_to_the_cut_are_compared(raw_a: RawInputs, stored_a: pl.DataFrame) -> None:
    # equivalent mutant: ``closed="left"`` dropped from the stored rows' window (the row at cut + 5m it lets in is
    # removed by the ``t <= cut`` filter)
    # rows 11:00, 11:05, 12:00 and 12:05 stored 0.5 too high: only 11:05 and 12:00 lie in (11:00, 12:00]
    wrong = [C - HOUR, C - 11 * BAR, C, C + BAR]
    bent = stored_a.with_columns(
        pl.when(pl.col("ts_event").is_in(wrong)).then(pl.col("last_close") + 0.5).otherwise(pl.col("last_close"))
    )
    # last_close at t = base + k(t) - 1: 11:05 is bar 997 -> 1996, 12:00 is bar 1008 -> 2007
    want = [where("t", C, A, C - 11 * BAR, "last_close", 1996.5, 1996), where("t", C, A, C, "last_close", 2007.5, 2007)]
    for cut in (C, C + 4 * BAR / 5 + 59 * timedelta(seconds=1)):  # a cut at 12:04:59 is floored to 12:00
        out = truncation_invariance(raw_a, honest, [cut], BARS_ONLY, "t", HOUR, full=bent)
        assert sorted(out.failures) == want and out.checked == 1
        assert out.description == (
            "1 of 1 cut instants compared: 2+ values change when later data is removed (look-ahead) or earlier "
            "data is removed"
        )


def test_cuts_without_a_row_are_listed_and_not_counted(raw_a: RawInputs, stored_a: pl.DataFrame) -> None:
    late = D + 2 * DAY  # after the last stored row: skipped, and the cuts after it still compared
    out = truncation_invariance(raw_a, honest, [late, C, C - 3 * HOUR], BARS_ONLY, "t", HOUR, full=stored_a)
    assert out.passed and out.checked == 2
    assert out.skipped == ["t data cut at 2025-03-14 00:00: no row in (2025-03-13 23:00, 00:00] to compare"]
    assert out.description == (
        "2 of 3 cut instants compared (1 without a row to compare): rows before each cut unchanged by cutting the "
        "data there or at the look-back"
    )
    none = truncation_invariance(raw_a, honest, [late, late + DAY], BARS_ONLY, "t", HOUR, full=stored_a)
    assert not none.passed and none.checked == 0 and none.failures == []
    assert none.description == "compared nothing: none of the 2 t cut instants has a row to compare"
    assert none.skipped == [
        out.skipped[0],
        "t data cut at 2025-03-15 00:00: no row in (2025-03-14 23:00, 00:00] to compare",
    ]
    # the stored rows start at D-1 00:00: a cut at 00:10 compares 00:00, 00:05, 00:10, not the rebuilt rows before
    out = truncation_invariance(raw_a, honest, [D - DAY + 2 * BAR], BARS_ONLY, "t", HOUR, full=stored_a)
    assert out.passed and out.checked == 1, out.failures


def test_look_ahead_on_the_uncut_data_is_caught_at_the_cut_row(raw_a: RawInputs) -> None:
    # reading one bar ahead, the 12:00 row sees the bar opened at 12:00 (2008); cut at 12:00 it sees 2007
    out = truncation_invariance(raw_a, builder(peek_symbol=A), [C], BARS_ONLY, "peek", HOUR)
    assert out.failures == [where("peek", C, A, C, "last_close", 2008, 2007)] and out.checked == 1
    assert out.description.startswith("1 of 1 cut instants compared: 1+ values change")
    assert truncation_invariance(raw_a, honest, [C], BARS_ONLY, "t", HOUR).description == (
        "1 of 1 cut instants compared: rows before each cut unchanged by cutting the data there or at the look-back"
    )


def test_the_look_back_is_one_per_raw_asset_from_the_compared_rows_day(raw_a: RawInputs) -> None:
    # funding_back counts settlements since D-3 00:00: 11 by 11:05 (D-3 .. D-1 x3, D 00:00, D 08:00), 8 from D-2
    fine = {"market_bars_5m": DAY, "funding_rates": 3 * DAY}
    assert truncation_invariance(raw_a, honest, [C], fine, "t", HOUR).passed
    assert truncation_invariance(raw_a, honest, [C], 3 * DAY, "t", HOUR).passed
    short = truncation_invariance(raw_a, honest, [C], {**fine, "funding_rates": 2 * DAY}, "t", HOUR)
    assert len(short.failures) == 12 and where("t", C, A, C, "funding_back", 11, 8) in short.failures
    assert all("funding_back" in f for f in short.failures)
    one = truncation_invariance(raw_a, honest, [C], DAY, "t", HOUR)  # one look-back for every asset
    assert len(one.failures) == 12 and all("funding_back" in f for f in one.failures)
    # a bar count over two days with one day declared: every row differs
    assert len(truncation_invariance(raw_a, builder(bars_window=2 * DAY), [C], fine, "t", HOUR).failures) == 12
    # the look-back runs from the day of the first compared row: a cut at 00:30 compares from 23:35 the day before
    assert truncation_invariance(raw_a, honest, [D + 6 * BAR], fine, "t", HOUR).passed


def test_failures_stop_at_twenty(raw_a: RawInputs) -> None:
    expanding = builder(bars_window=100 * DAY)  # counts every bar it is given: each row differs when cut
    cuts = [C - 6 * HOUR, C - 3 * HOUR, C]
    out = truncation_invariance(raw_a, expanding, cuts, BARS_ONLY, "t", HOUR)  # 12 rows, then 24: stop
    assert out.checked == 2 and len(out.failures) == 20
    assert out.description.startswith("2 of 3 cut instants compared: 24+ values change")
    ten = truncation_invariance(raw_a, expanding, cuts, BARS_ONLY, "t", 10 * BAR)  # 10 rows, then 20: stop
    assert ten.checked == 2 and len(ten.failures) == 20


def test_restamp_false_trusts_the_stamps_it_is_handed() -> None:
    early = lake(early=True)  # bars stamped at their open: the honest builder reads each bar 5 minutes early
    assert not truncation_invariance(early, honest, [C], BARS_ONLY, "t", HOUR).passed  # re-derived: caught
    assert truncation_invariance(early, honest, [C], BARS_ONLY, "t", HOUR, restamp=False).passed
    stored = honest(early, D + 10 * HOUR, D + 13 * HOUR)  # and truncation_by_symbol passes it on
    assert not truncation_by_symbol(early, stored, [(A, C)], honest, BARS_ONLY, HOUR).passed
    assert truncation_by_symbol(early, stored, [(A, C)], honest, BARS_ONLY, HOUR, restamp=False).passed


# --- truncation_by_symbol -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def raw_ab() -> RawInputs:
    return lake((A, B))


@pytest.fixture(scope="module")
def stored_ab(raw_ab: RawInputs) -> pl.DataFrame:
    return honest(raw_ab, D - DAY, D + DAY)


def by_symbol_description(compared: int, pairs: int, days: int, tail: str) -> str:
    return (
        f"{compared} of {pairs} (symbol, cut) pairs compared ({days} days; partition boundaries, funding settlements "
        f"and macro releases among the cuts){tail}"
    )


def test_each_pair_against_its_symbols_stored_rows(raw_ab: RawInputs, stored_ab: pl.DataFrame) -> None:
    cut_at = [(A, C), (B, D - DAY + 6 * HOUR), (A, D + DAY + 2 * HOUR)]  # the last: no stored row
    out = truncation_by_symbol(raw_ab, stored_ab, cut_at, honest, BARS_ONLY, HOUR)
    assert out.passed and out.checked == 2, out.failures
    assert out.skipped == [f"{A} data cut at 2025-03-13 02:00: no row in (2025-03-13 01:00, 02:00] to compare"]
    tail = ", 1 without a stored row to compare: rows up to each cut unchanged"
    assert out.description == by_symbol_description(2, 3, 3, tail)
    # another symbol's stored rows are not compared: ETH's rows bent, BTC's pair still passes, ETH's fails
    bent = stored_ab.with_columns(
        pl.when(pl.col("symbol") == B).then(pl.col("last_close") + 0.5).otherwise(pl.col("last_close"))
    )
    assert truncation_by_symbol(raw_ab, bent, [(A, C)], honest, BARS_ONLY, HOUR).passed
    out = truncation_by_symbol(raw_ab, bent, [(A, C), (B, C)], honest, BARS_ONLY, HOUR)
    assert out.checked == 2 and len(out.failures) == 12 and all(f.startswith(f"{B} data cut") for f in out.failures)
    assert where(B, C, B, C, "last_close", 6007.5, 6007) in out.failures
    assert out.description == by_symbol_description(2, 2, 1, ": 12+ values changed")


def test_compared_nothing_without_pairs_or_stored_rows(raw_ab: RawInputs, stored_ab: pl.DataFrame) -> None:
    out = truncation_by_symbol(raw_ab, stored_ab, [], honest, BARS_ONLY, HOUR)
    assert out.description == "compared nothing: no cut instants (no stored rows)" and out.checked == 0
    assert out.skipped == ["no cut instants (no stored rows)"]
    out = truncation_by_symbol(raw_ab, stored_ab, [(A, D + 2 * DAY), (C_SYM, C)], honest, BARS_ONLY, HOUR)
    assert not out.passed and out.checked == 0
    assert out.description == "compared nothing: none of the 2 (symbol, cut) pairs has a stored row to compare"
    assert out.skipped == [
        f"{A} data cut at 2025-03-14 00:00: no row in (2025-03-13 23:00, 00:00] to compare",
        f"{C_SYM} data cut at 2025-03-12 12:00: no row in (2025-03-12 11:00, 12:00] to compare",
    ]


def test_a_planted_look_ahead_is_caught_for_its_symbol(raw_ab: RawInputs) -> None:
    peek = builder(peek_symbol=A)  # BTC reads one bar ahead, ETH does not
    stored = peek(raw_ab, D + 10 * HOUR, D + 13 * HOUR)
    out = truncation_by_symbol(raw_ab, stored, [(A, C), (B, C)], peek, BARS_ONLY, HOUR)
    assert out.failures == [where(A, C, A, C, "last_close", 2008, 2007)] and out.checked == 2
    assert out.description == by_symbol_description(2, 2, 1, ": 1+ values changed")


def test_a_look_back_longer_than_declared_is_caught_and_failures_stop_at_twenty(raw_ab: RawInputs) -> None:
    expanding = builder(bars_window=100 * DAY)
    stored = expanding(raw_ab, D + 10 * HOUR, D + 13 * HOUR)
    out = truncation_by_symbol(raw_ab, stored, [(A, C), (B, C)], expanding, BARS_ONLY, HOUR)  # 12 + 12
    assert out.checked == 2 and len(out.failures) == 20 and all("bars_back" in f for f in out.failures)
    assert out.description == by_symbol_description(2, 2, 1, ": 20+ values changed")


@pytest.mark.parametrize(("funding_days", "passes"), [(11, True), (12, False)])
def test_raw_rows_are_windowed_to_the_raw_look_back_plus_two_days(raw_ab: RawInputs, funding_days, passes) -> None:
    # funding is not in the declared look-back: the window alone bounds it, from the day of cut - compare (D-1 for a
    # cut at 00:30) minus 9 + 2 days: D-12. Rows of D-1 counting since D-12 pass; since D-13 they are cut short
    build = builder(funding_days=funding_days)
    stored = build(raw_ab, D - 2 * HOUR, D + 2 * HOUR)
    out = truncation_by_symbol(raw_ab, stored, [(A, D + 6 * BAR)], build, BARS_ONLY, HOUR)
    assert out.passed is passes and out.checked == 1
