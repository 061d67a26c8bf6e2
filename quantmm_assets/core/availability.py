"""When could the system first have known a row? ``ts_available`` rules, one place for every modality.

The two-timestamp rule (DESIGN.md section 1): every row has ``ts_event`` (what it is about) and
``ts_available`` (the earliest instant it could have been known); every join downstream is as-of on
``ts_available <= t``. Sources never supply ``ts_available``: it is computed here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import polars as pl

BAR_INTERVAL = timedelta(minutes=5)
# Social items reach us through a crawler, not at the instant they are published.
DEFAULT_SOCIAL_INGEST_DELAY = timedelta(minutes=2)

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
        # FRED downloads (the HTTP client's series); FRED posts the previous day's values.
        MacroSeriesSpec(
            "vix",
            "FRED:VIXCLS",
            "CBOE VIX close, as distributed by FRED; posted next morning",
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
        # Exchange closes shipped in offline bundles (no free HTTP API): known at the close.
        MacroSeriesSpec("dxy_ice", "ICE:DXY", "ICE US Dollar Index close, 17:00 ET", at_hour_utc=23.0),
        MacroSeriesSpec("vix_cboe", "CBOE:VIX", "CBOE VIX close, 16:15 ET", at_hour_utc=21.5),
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


def macro_available(ts_event: pl.Expr, series_id: pl.Expr) -> pl.Expr:
    """Publication instant of each macro observation (see ``MACRO_SERIES_SPECS``)."""
    day = ts_event.dt.truncate("1d")
    out = pl.lit(None, dtype=pl.Datetime("us", "UTC"))
    for spec in MACRO_SERIES_SPECS.values():
        if spec.weekday_release is not None:
            wd = day.dt.weekday() - 1  # polars: Monday = 1
            ahead = ((spec.weekday_release - wd - 1) % 7) + 1  # strictly after the observation
            release_day = day + pl.duration(days=ahead)
        else:
            release_day = (
                day.dt.add_business_days(spec.business_days_lag, roll="forward") if spec.business_days_lag else day
            )
        at = release_day + pl.duration(microseconds=int(spec.at_hour_utc * 3600 * 1e6))
        out = pl.when(series_id == spec.series_id).then(at).otherwise(out)
    return out
