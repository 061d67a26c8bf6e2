"""The ``ts_available`` rules of ``core.availability``, each pinned by instants computed by hand.

The as-of leakage checks re-derive availability with these same functions, so a wrong rule here would be a
look-ahead shared by the builder and its check: every expected instant below is written out by hand from the
rule (calendar dates checked against the 2025 US federal / NYSE holiday calendar), never taken from the code.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import polars as pl
import pytest

from quantmm_assets.core.availability import (
    bar_available,
    funding_available,
    macro_available,
    period_available,
    settle_lag,
    social_available,
    us_market_holidays,
)
from quantmm_assets.core.ingest import IngestParams, normalize
from quantmm_resources.settings import get_settings

TS = pl.Datetime("us", "UTC")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def period_avail(rows: list[tuple[datetime, str]]) -> list[datetime | None]:
    frame = pl.DataFrame(rows, schema={"ts_event": TS, "period": pl.Utf8}, orient="row")
    return frame.select(period_available(pl.col("ts_event"), pl.col("period"))).to_series().to_list()


def macro_avail(series_id: str, *days: date) -> list[datetime]:
    """Publication instants of observations of ``series_id`` on ``days`` (ts_event = the day 00:00 UTC)."""
    frame = pl.DataFrame({"ts_event": [utc(d.year, d.month, d.day) for d in days]}, schema={"ts_event": TS})
    return frame.select(macro_available(pl.col("ts_event"), pl.lit(series_id))).to_series().to_list()


def test_the_holiday_calendar_used_below():
    hol = set(us_market_holidays())
    assert date(2025, 1, 9) in hol  # the NYSE closure for President Carter's funeral
    # Independence Day (Fri), Christmas (Thu), Labor Day (Mon), MLK Day (Mon): federal and NYSE.
    # Good Friday: NYSE only. Columbus / Veterans Day: federal only (NYSE open). Dec 24 / 26: neither.
    assert {date(2025, 7, 4), date(2025, 12, 25), date(2025, 9, 1), date(2025, 1, 20)} <= hol
    assert {date(2025, 4, 18), date(2025, 10, 13), date(2025, 11, 11)} <= hol
    assert not {date(2025, 12, 24), date(2025, 12, 26), date(2025, 7, 3), date(2025, 7, 7)} & hol


def test_a_period_snapshot_is_available_at_the_period_end_not_its_start():
    # Equivalent mutant: ``return_dtype=pl.Int64`` dropped from the period lookup: polars infers Int64 from the
    # integer microsecond counts, the same durations.
    got = period_avail(
        [
            (utc(2025, 3, 10, 12, 0), "5m"),
            (utc(2025, 3, 10, 12, 0), "1h"),
            (utc(2025, 3, 10, 20, 0), "4h"),
            (utc(2025, 3, 10, 0, 0), "1d"),
            (utc(2025, 3, 10, 0, 0), "7d"),  # not a known period: no availability at all
        ]
    )
    assert got == [
        utc(2025, 3, 10, 12, 5),
        utc(2025, 3, 10, 13, 0),
        utc(2025, 3, 11, 0, 0),
        utc(2025, 3, 11, 0, 0),
        None,
    ]


@pytest.mark.parametrize("asset", ["open_interest", "derivatives_metrics"])
def test_ingest_stamps_period_snapshots_at_the_period_end(asset: str):
    ms = int(utc(2025, 3, 10, 12).timestamp() * 1000)
    values = (
        {"open_interest": ["1", "2"], "open_interest_value": ["10", "20"]}
        if asset == "open_interest"
        else {"long_short_account_ratio": ["1.1", "1.2"], "mark_price": ["100", "101"]}
    )
    src = pl.DataFrame(
        {"symbol": ["BTCUSDT"] * 2, "period": ["1h", "5m"], "ts_event": [ms, ms], **values, "source": ["t"] * 2}
    )
    p = IngestParams(
        start=utc(2025, 3, 10),
        end=utc(2025, 3, 11),
        symbols=("BTCUSDT",),
        universe=get_settings().universe(),
        now=utc(2025, 4, 1),
    )
    out = normalize(asset, src, p)
    assert out.rejects.is_empty()
    got = dict(zip(out.clean["period"], out.clean["ts_available"], strict=True))
    assert got == {"1h": utc(2025, 3, 10, 13), "5m": utc(2025, 3, 10, 12, 5)}


def test_weekly_release_is_strictly_after_the_observation():
    # dollar_index (H.10): the first Monday strictly after the observation, 22:00 UTC.
    # Mon 2025-01-06 is itself a Monday: released the next Monday, never the same day.
    mon, tue, fri, sat, sun = (date(2025, 1, d) for d in (6, 7, 10, 11, 12))
    assert macro_avail("dollar_index", mon, tue, fri, sat, sun) == [utc(2025, 1, 13, 22)] * 5
    assert macro_avail("dollar_index", date(2025, 1, 13)) == [utc(2025, 1, 21, 22)]  # next Monday is MLK Day


def test_weekly_release_on_a_holiday_rolls_to_the_next_business_day():
    # Mon 2025-09-01 is Labor Day: the H.10 release for the week before moves to Tue 2025-09-02.
    assert macro_avail("dollar_index", date(2025, 8, 25), date(2025, 8, 29)) == [utc(2025, 9, 2, 22)] * 2
    # Mon 2025-01-20 is MLK Day: Wed 2025-01-15's observation is released Tue 2025-01-21.
    assert macro_avail("dollar_index", date(2025, 1, 15)) == [utc(2025, 1, 21, 22)]
    # A week without a holiday, for contrast: Wed 2025-03-12 -> Mon 2025-03-17.
    assert macro_avail("dollar_index", date(2025, 3, 12)) == [utc(2025, 3, 17, 22)]


def test_lagged_releases_skip_weekends_and_us_holidays():
    # us10y (H.15): next business day 22:00 UTC. vix (FRED VIXCLS): next business day 14:00 UTC.
    assert macro_avail("us10y", date(2025, 1, 15)) == [utc(2025, 1, 16, 22)]  # Wed -> Thu, no holiday
    # Thu 2025-01-09 (national day of mourning for President Carter): NYSE closed, in the calendar too.
    assert macro_avail("us10y", date(2025, 1, 8)) == [utc(2025, 1, 10, 22)]
    assert macro_avail("us10y", date(2025, 1, 10)) == [utc(2025, 1, 13, 22)]  # Fri -> Mon, the weekend
    assert macro_avail("us10y", date(2025, 7, 3)) == [utc(2025, 7, 7, 22)]  # Thu -> Fri Jul 4 holiday -> Mon
    assert macro_avail("us10y", date(2025, 1, 17)) == [utc(2025, 1, 21, 22)]  # Fri -> Mon MLK Day -> Tue
    assert macro_avail("vix", date(2025, 12, 24)) == [utc(2025, 12, 26, 14)]  # Wed -> Thu Christmas -> Fri
    assert macro_avail("vix", date(2025, 4, 17)) == [utc(2025, 4, 21, 14)]  # Thu -> Good Friday (NYSE) -> Mon
    # Columbus Day (federal, NYSE open) is a holiday too: Fri 2025-10-10 -> Mon 10-13 holiday -> Tue 10-14.
    assert macro_avail("vix", date(2025, 10, 10)) == [utc(2025, 10, 14, 14)]


def test_same_day_supplementary_closes():
    assert macro_avail("dxy_ice", date(2025, 7, 4)) == [utc(2025, 7, 4, 23)]  # no lag, no holiday rule
    assert macro_avail("tnx_cboe", date(2025, 1, 6)) == [utc(2025, 1, 6, 20, 30)]


def test_macro_settle_lag_covers_the_latest_release_of_a_day():
    """A macro partition is complete ``settle_lag`` after its day ends: every observation of the day is out by then.

    Worst case by hand: dollar_index observed Mon 2025-08-25 (day end Tue 08-26 00:00) is released on the next
    Monday, Labor Day 09-01, rolled to Tue 2025-09-02 22:00 UTC: 7 days 22 hours after the day's end. A lag of
    1 day (or 7) would call the partition complete while that observation is still unpublished.
    """
    day_end = utc(2025, 8, 26)
    release = utc(2025, 9, 2, 22)
    assert release - day_end == timedelta(days=7, hours=22)
    assert day_end + settle_lag("macro_series") >= release
    # vix of Wed 2025-12-24 is out Fri 12-26 14:00: 1 day 14 hours after its day's end.
    assert utc(2025, 12, 25) + settle_lag("macro_series") >= utc(2025, 12, 26, 14)


def test_macro_settle_lag_bounds_every_day_and_series_1990_2040():
    """The same rule over every observation day from 1990 to 2040, for every series (users bring history from
    before the default partition start). The worst case is a weekly release rolled over two closed days: Mon
    2012-10-22 -> Mon 10-29 and Tue 10-30 closed for Hurricane Sandy -> Wed 2012-10-31 22:00 UTC, 8 days 22 hours
    after its day; an 8-day lag called that partition complete a day early.
    """
    assert utc(2012, 10, 31, 22) - utc(2012, 10, 23) == timedelta(days=8, hours=22)
    sandy = pl.DataFrame({"ts_event": [utc(2012, 10, 22)], "series_id": ["dollar_index"]})
    assert sandy.select(macro_available(pl.col("ts_event"), pl.col("series_id"))).item() == utc(2012, 10, 31, 22)
    days = pl.date_range(date(1990, 1, 1), date(2040, 12, 20), "1d", eager=True)
    series = ["vix", "us10y", "dollar_index", "dxy_ice", "tnx_cboe"]
    frame = pl.DataFrame({"day": days}).join(pl.DataFrame({"series_id": series}), how="cross")
    frame = frame.with_columns(ts_event=pl.col("day").cast(TS))
    lag = frame.select(
        (macro_available(pl.col("ts_event"), pl.col("series_id")) - pl.col("ts_event") - pl.duration(days=1)).max()
    ).item()
    assert lag <= settle_lag("macro_series")


def test_bars_funding_and_social_items_are_known_at_their_own_instants():
    """A 5m bar opened at 12:00 is known at its close 12:05; a funding rate at its settlement 08:00 itself (an
    exchange stamping it 08:00:00.001 is known 1 ms later, never earlier); a post published 12:00 is seen by the
    10-minute crawler at 12:10."""
    t = pl.DataFrame({"ts_event": [utc(2025, 3, 10, 12), utc(2025, 3, 10, 8) + timedelta(milliseconds=1)]})
    known = t.select(
        bar=bar_available(pl.col("ts_event")),
        funding=funding_available(pl.col("ts_event")),
        social=social_available(pl.col("ts_event")),
    )
    assert known["bar"].to_list() == [utc(2025, 3, 10, 12, 5), utc(2025, 3, 10, 8, 5) + timedelta(milliseconds=1)]
    assert known["funding"].to_list() == t["ts_event"].to_list()
    assert known["social"][0] == utc(2025, 3, 10, 12, 10)


def test_a_monday_weekly_release_lands_on_the_next_monday_from_every_weekday():
    """dollar_index (weekly, Monday 22:00 UTC): an observation on any day of the week 2025-03-10 (Mon) .. 03-16 (Sun)
    is released Mon 03-17 22:00. (A mutant that counts two days short lands on the Saturday before and is rolled
    forward to that same Monday: equivalent for a Monday release, so it is not caught here by design.)"""
    days = [date(2025, 3, 10) + timedelta(days=k) for k in range(7)]
    assert macro_avail("dollar_index", *days) == [utc(2025, 3, 17, 22)] * 7
