"""When could the system first have known a row? ``ts_available`` rules, one place for every modality.

The two-timestamp rule (DESIGN.md section 1): every row has ``ts_event`` (what it is about) and
``ts_available`` (the earliest instant it could have been known); every join downstream is as-of on
``ts_available <= t``. Sources never supply ``ts_available``: it is computed here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

import holidays
import polars as pl

BAR_INTERVAL = timedelta(minutes=5)
# Social items reach us through a crawler, not at the instant they are published: the social refresh runs
# every 10 minutes, so an item can be seen up to 10 minutes after it appeared. Training must not assume less.
DEFAULT_SOCIAL_INGEST_DELAY = timedelta(minutes=10)

PERIODS: dict[str, timedelta] = {
    "5m": timedelta(minutes=5),
    "15m": timedelta(minutes=15),
    "30m": timedelta(minutes=30),
    "1h": timedelta(hours=1),
    "2h": timedelta(hours=2),
    "4h": timedelta(hours=4),
    "6h": timedelta(hours=6),
    "12h": timedelta(hours=12),
    "1d": timedelta(days=1),
}


@dataclass(frozen=True)
class MacroSeriesSpec:
    """One canonical macro series: its single source and its publication lag.

    ``ts_available = observation date 00:00 UTC + business_days_lag business days + at_hour_utc``
    (weekly series use ``weekday_release``: the first given weekday strictly after the observation,
    at ``at_hour_utc``). US closes are taken at their winter (later) UTC hour: conservative all year.
    """

    series_id: str
    source_series: str
    description: str
    at_hour_utc: float
    business_days_lag: int = 0
    weekday_release: int | None = None  # 0 = Monday


MACRO_SERIES_SPECS: dict[str, MacroSeriesSpec] = {
    s.series_id: s
    for s in (
        # The three canonical series, each from one source, served live by the FRED client.
        # vix: the CBOE VIX close; FRED VIXCLS redistributes it and CBOE files in bundles carry the same
        # numbers (source_series tells which); availability uses FRED's posting, the later of the two.
        MacroSeriesSpec(
            "vix",
            "FRED:VIXCLS",
            "CBOE VIX close (FRED VIXCLS or CBOE files); FRED posts it the next business morning",
            at_hour_utc=14.0,
            business_days_lag=1,
        ),
        MacroSeriesSpec(
            "us10y",
            "FRED:DGS10",
            "10y Treasury constant maturity (H.15), next business day 16:15 ET",
            at_hour_utc=22.0,
            business_days_lag=1,
        ),
        MacroSeriesSpec(
            "dollar_index",
            "FRED:DTWEXBGS",
            "Nominal broad USD index (H.10), released weekly on Monday for the prior week",
            at_hour_utc=22.0,
            weekday_release=0,
        ),
        # Supplementary series found in offline bundles (no free HTTP API); never substituted for the
        # canonical ones: ICE DXY is not the Fed's broad index, CBOE TNX is not the Treasury CMT yield.
        MacroSeriesSpec("dxy_ice", "ICE:DXY", "ICE US Dollar Index close, 17:00 ET", at_hour_utc=23.0),
        MacroSeriesSpec("tnx_cboe", "CBOE:TNX", "CBOE 10y yield index close (percent), 15:00 ET", at_hour_utc=20.5),
    )
}


def bar_available(ts_event: pl.Expr) -> pl.Expr:
    """A 5m bar is known at its close."""
    return ts_event + BAR_INTERVAL


def period_available(ts_event: pl.Expr, period: pl.Expr) -> pl.Expr:
    """A snapshot/statistic over ``period`` starting at ``ts_event`` is known at the period's end."""
    micros = period.replace_strict(
        {k: int(v.total_seconds() * 1e6) for k, v in PERIODS.items()}, default=None, return_dtype=pl.Int64
    )
    return ts_event + pl.duration(microseconds=micros)


def funding_available(ts_event: pl.Expr) -> pl.Expr:
    """A funding rate is final at its settlement instant."""
    return ts_event


def social_available(ts_event: pl.Expr, delay: timedelta = DEFAULT_SOCIAL_INGEST_DELAY) -> pl.Expr:
    """A post or comment is known once published plus the crawler's ingest delay."""
    return ts_event + delay


@lru_cache(maxsize=1)
def us_market_holidays() -> tuple[date, ...]:
    """US federal and NYSE holidays (no publication on these days), 1990-2040."""
    years = range(1990, 2041)
    days = set(holidays.US(years=years)) | set(holidays.financial_holidays("NYSE", years=years))
    return tuple(sorted(days))


def macro_available(ts_event: pl.Expr, series_id: pl.Expr) -> pl.Expr:
    """Publication instant of each macro observation (see ``MACRO_SERIES_SPECS``)."""
    day = ts_event.dt.truncate("1d")
    hol = list(us_market_holidays())
    out = pl.lit(None, dtype=pl.Datetime("us", "UTC"))
    for spec in MACRO_SERIES_SPECS.values():
        if spec.weekday_release is not None:
            wd = day.dt.weekday() - 1  # polars: Monday = 1
            ahead = ((spec.weekday_release - wd - 1) % 7) + 1  # strictly after the observation
            # a release day that is a holiday moves to the next business day
            release_day = (day + pl.duration(days=ahead)).dt.add_business_days(0, roll="forward", holidays=hol)
        elif spec.business_days_lag:
            release_day = day.dt.add_business_days(spec.business_days_lag, roll="forward", holidays=hol)
        else:
            release_day = day
        at = release_day + pl.duration(microseconds=int(spec.at_hour_utc * 3600 * 1e6))
        out = pl.when(series_id == spec.series_id).then(at).otherwise(out)
    return out


# How long after a day ends its last rows can still become available (the latest ts_available of a day's rows
# minus the day's end): a partition is complete once that has passed. Macro: a weekly series is released up to a
# week after the observation, and a release day that falls on closed days rolls forward: two closed days in a row
# (Hurricane Sandy, 2012-10-29/30; Christmas + New Year) put the latest release 8 days 22 hours after its day.
SETTLE_LAGS: dict[str, timedelta] = {
    "market_bars_5m": timedelta(0),
    "funding_rates": timedelta(0),
    "open_interest": timedelta(0),
    "derivatives_metrics": timedelta(0),
    "macro_series": timedelta(days=9),
    "social_posts_raw": DEFAULT_SOCIAL_INGEST_DELAY,
    "social_comments_raw": DEFAULT_SOCIAL_INGEST_DELAY,
}


def settle_lag(asset: str) -> timedelta:
    """Time after a day's end until every row of that day is available (see ``SETTLE_LAGS``)."""
    return SETTLE_LAGS[asset]
