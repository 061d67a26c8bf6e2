"""funding_h by hand (core/funding.py, the labels' ``funding``): the rates a long pays at the settlements in
(t, t + h], unknown (null) where the funding rows do not cover the window. Every expected value is written out
from the rule, not from the code."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from quantmm_assets.core.funding import window_funding
from quantmm_assets.core.schemas import UTC_TS

D0 = datetime(2025, 3, 3, tzinfo=UTC)  # a Monday
HOUR = timedelta(hours=1)
H_US = {"1h": 3_600_000_000, "4h": 4 * 3_600_000_000, "1d": 24 * 3_600_000_000}
# settlements every 8 hours, each rate its own power of ten so that any sum names the settlements it took
RATES = {D0 + k * 8 * HOUR: 10.0**-k for k in range(7)}  # D0 00:00 .. D0+2d 00:00


def funding(rates: dict[datetime, float | None], symbol: str = "BTCUSDT") -> pl.DataFrame:
    return pl.DataFrame(
        {"symbol": [symbol] * len(rates), "ts_event": list(rates), "funding_rate": list(rates.values())},
        schema={"symbol": pl.Utf8, "ts_event": UTC_TS, "funding_rate": pl.Float64},
    )


def one(rows: pl.DataFrame | None, t: datetime, horizon: str, symbol: str = "BTCUSDT") -> float | None:
    query = pl.DataFrame(
        {"symbol": [symbol], "ts_event": [t], "horizon_us": [H_US[horizon]]},
        schema={"symbol": pl.Utf8, "ts_event": UTC_TS, "horizon_us": pl.Int64},
    )
    return window_funding(rows, query)[0]


def test_a_window_holds_the_settlements_after_its_start_up_to_and_including_its_end():
    rows = funding(RATES)
    assert one(rows, D0 + 7 * HOUR, "1h") == pytest.approx(0.1)  # (07:00, 08:00] holds the 08:00 settlement
    assert one(rows, D0 + 8 * HOUR, "1h") == 0.0  # (08:00, 09:00]: a position opened at 08:00 does not pay it
    assert one(rows, D0 + 10 * HOUR, "1h") == 0.0  # no settlement in (10:00, 11:00]: zero, and known
    assert one(rows, D0 + 5 * HOUR, "4h") == pytest.approx(0.1)
    assert one(rows, D0, "1d") == pytest.approx(0.1 + 0.01 + 0.001)  # 08:00, 16:00, next day 00:00; not D0 itself
    # (D0+30h, D0+54h] holds D0+32h, D0+40h and D0+48h, the last row; 54h is 6 hours after it: nothing else was due
    assert one(rows, D0 + 30 * HOUR, "1d") == pytest.approx(1e-4 + 1e-5 + 1e-6)


def test_negative_rates_are_received_by_a_long():
    rows = funding({D0: 0.0001, D0 + 8 * HOUR: -0.0003, D0 + 16 * HOUR: 0.0002, D0 + 24 * HOUR: -0.0001})
    assert one(rows, D0 + 7 * HOUR, "1h") == pytest.approx(-0.0003)
    assert one(rows, D0 + 4 * HOUR, "1d") == pytest.approx(-0.0003 + 0.0002 - 0.0001)  # 08:00, 16:00, next 00:00


def test_a_window_before_the_first_settlement_is_unknown():
    rows = funding({D0 + 8 * HOUR: 0.1, D0 + 16 * HOUR: 0.01})
    assert one(rows, D0 + 7 * HOUR, "1h") is None  # no settlement at or before 07:00: the interval is not known
    assert one(rows, D0 + 8 * HOUR, "1h") == 0.0  # from the first settlement on it is


def test_a_missing_settlement_inside_or_at_the_end_of_a_window_makes_it_unknown():
    rates = dict(RATES)
    del rates[D0 + 16 * HOUR]  # the 16:00 settlement is missing: 08:00 -> next 00:00 is a 16-hour gap
    rows = funding(rates)
    assert one(rows, D0 + 4 * HOUR, "1d") is None  # spans the gap
    assert one(rows, D0 + 15 * HOUR, "1h") is None  # (15:00, 16:00]: the missing settlement was due at its end
    assert one(rows, D0 + 14 * HOUR, "1h") == 0.0  # (14:00, 15:00]: nothing was due
    assert one(rows, D0 + 24 * HOUR, "1h") == 0.0  # after the gap, known again


def test_null_and_nan_rates_count_as_missing_settlements():
    for bad in (None, float("nan")):
        rows = funding({**RATES, D0 + 16 * HOUR: bad})
        assert one(rows, D0 + 15 * HOUR, "1h") is None
        assert one(rows, D0 + 7 * HOUR, "1h") == pytest.approx(0.1)


def test_the_end_of_the_funding_rows_is_not_read_as_free_carry():
    rows = funding({D0: 0.1, D0 + 8 * HOUR: 0.01})  # the data ends at 08:00; 16:00 would be due
    assert one(rows, D0 + 14 * HOUR, "1h") == 0.0  # (14:00, 15:00]: still inside the 8-hour interval
    assert one(rows, D0 + 15 * HOUR, "1h") is None  # (15:00, 16:00]: the 16:00 settlement is not in the data
    assert one(rows, D0 + 20 * HOUR, "1d") is None


def test_stamps_a_few_milliseconds_late_keep_their_settlement_in_the_window_they_fall_in():
    late = timedelta(milliseconds=3)
    rows = funding({D0 + late: 0.1, D0 + 8 * HOUR + late: 0.01, D0 + 16 * HOUR + late: 0.001})
    assert one(rows, D0 + 7 * HOUR, "1h") == 0.0  # (07:00, 08:00] ends before 08:00:00.003
    assert one(rows, D0 + 8 * HOUR, "1h") == pytest.approx(0.01)  # a position opened at the 08:00 close holds it
    assert one(rows, D0 + 15 * HOUR, "1h") == 0.0  # the 16:00 settlement is not missing, it is 3 ms later


def test_four_hour_settlements_are_summed_and_a_gap_longer_than_nine_hours_is_missing_data():
    four = funding({D0 + k * 4 * HOUR: 0.001 for k in range(7)})  # 00:00 .. next 00:00, every 4 hours
    assert one(four, D0, "1d") == pytest.approx(6 * 0.001)  # 04:00 .. 24:00
    assert one(four, D0 + 3 * HOUR, "1d") == pytest.approx(6 * 0.001)  # ends 3 hours after the last: none due yet
    assert one(four, D0 + 4 * HOUR, "1d") is None  # ends at D0+28h, when the next 4-hour settlement was due
    ten = {D0: 0.1, D0 + 10 * HOUR: 0.01, D0 + 18 * HOUR: 0.001}  # a 10-hour gap exceeds the 9-hour limit
    assert one(funding(ten), D0 + 9 * HOUR, "1h") is None
    assert one(funding(ten), D0 + 10 * HOUR, "4h") == 0.0


def test_each_symbol_reads_its_own_settlements_and_a_symbol_without_any_is_unknown():
    rows = pl.concat([funding(RATES, "BTCUSDT"), funding({D0: 1.0, D0 + 8 * HOUR: 2.0}, "ETHUSDT")])
    assert one(rows, D0 + 7 * HOUR, "1h", "ETHUSDT") == 2.0
    assert one(rows, D0 + 7 * HOUR, "1h", "BTCUSDT") == pytest.approx(0.1)
    assert one(rows, D0 + 7 * HOUR, "1h", "SOLUSDT") is None
    assert one(None, D0 + 7 * HOUR, "1h") is None  # no funding rows given at all


def test_duplicate_settlements_are_refused():
    rows = pl.concat([funding(RATES), funding({D0: 0.5})])
    with pytest.raises(ValueError, match="duplicate settlements"):
        one(rows, D0, "1h")


def test_a_gap_of_exactly_nine_hours_is_still_a_settlement_interval():
    rows = funding({D0: 0.1, D0 + 9 * HOUR: 0.01, D0 + 17 * HOUR: 0.001})
    assert one(rows, D0 + 8 * HOUR, "1h") == pytest.approx(0.01)
    assert one(rows, D0 + 9 * HOUR, "4h") == 0.0  # 4 hours after a 9-hour interval began: nothing due yet


def test_a_single_settlement_covers_the_windows_after_it_only():
    rows = funding({D0 + 8 * HOUR: 0.1})
    assert one(rows, D0 + 7 * HOUR, "1h") is None
    assert one(rows, D0 + 8 * HOUR, "4h") == 0.0


def test_one_call_answers_every_row_of_every_symbol_from_rows_in_any_order():
    eth = {D0: 1.0, D0 + 8 * HOUR: 2.0, D0 + 16 * HOUR: 4.0}
    rows = pl.concat([funding(RATES, "BTCUSDT"), funding(eth, "ETHUSDT")]).sample(fraction=1.0, shuffle=True, seed=3)
    query = pl.DataFrame(
        {
            "symbol": ["ETHUSDT", "BTCUSDT", "SOLUSDT", "ETHUSDT", "BTCUSDT"],
            "ts_event": [D0 + 7 * HOUR, D0 + 7 * HOUR, D0 + 7 * HOUR, D0 + 4 * HOUR, D0 + 15 * HOUR],
            "horizon_us": [H_US["1h"], H_US["1h"], H_US["1h"], H_US["1d"], H_US["4h"]],
        },
        schema={"symbol": pl.Utf8, "ts_event": UTC_TS, "horizon_us": pl.Int64},
    )
    got = window_funding(rows, query)
    assert got.dtype == pl.Float64 and got.to_list() == pytest.approx([2.0, 0.1, None, None, 0.01])
    # ETH (04:00, next 04:00]: the next-day 00:00 settlement is due and missing; BTC (15:00, 19:00] holds 16:00
    none = window_funding(None, query)
    assert none.dtype == pl.Float64 and none.null_count() == 5
