"""Macro features: the latest vix, us10y and dollar index as published, their change and 90-day z-score.

Pure polars (no Dagster, no I/O); the specification is ``docs/features.md`` ("Macro features").
``macro_features`` evaluates every series at a few instants (the range start, each day start, each release
instant) from the observations published by then; ``macro_asof`` attaches the row in force at each ``t`` of
a feature grid and adds staleness and missing flags.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

import polars as pl

from quantmm_assets.core.schemas import UTC_TS

# z-window (90 d) + search horizon (10 d) + the longest publication lag (weekly series, 8 d), rounded up
MACRO_LOOKBACK_DAYS = 110
MACRO_SERIES: tuple[str, ...] = ("vix", "us10y", "dollar_index")
MACRO_Z_WINDOW = timedelta(days=90)
MACRO_Z_MIN_N = 5
MACRO_STALE_LIMIT = timedelta(days=10)
# An observation released longer than this before t counts as absent (keeps results look-back invariant):
# the staleness limit, so the z-window of the latest usable observation stays inside the look-back. (It was 90
# days with a 100-day look-back: the as-of check caught a stale series' z-score reading 180 days back.)
MACRO_HORIZON = MACRO_STALE_LIMIT
HOUR_US = 3_600_000_000.0

MACRO_FEATURES: tuple[str, ...] = tuple(
    f"macro_{s}{suffix}" for s in MACRO_SERIES for suffix in ("", "_change", "_z90", "_staleness_h", "_missing")
)


def _value_columns(s: str) -> list[str]:
    """Return the columns ``macro_features`` produces for series ``s``."""
    return [f"macro_{s}", f"macro_{s}_change", f"macro_{s}_z90", f"macro_{s}_released_at"]


def macro_instants(releases: pl.Series, start: datetime, end: datetime) -> pl.DataFrame:
    """Return the sorted instants ``t``: start, every 00:00 UTC in (start, end), every release in [start, end)."""
    first = datetime.combine(start.date(), time(), tzinfo=start.tzinfo) + timedelta(days=1)
    midnights = pl.Series([first + timedelta(days=k) for k in range(max(0, (end - first).days + 1))], dtype=UTC_TS)
    midnights = midnights.filter(midnights < end)
    in_range = releases.filter((releases >= start) & (releases < end))
    ts = pl.concat([pl.Series([start], dtype=UTC_TS), midnights.cast(UTC_TS), in_range.cast(UTC_TS)])
    return pl.DataFrame({"t": ts}).unique().sort("t")


def series_at(instants: pl.DataFrame, obs: pl.DataFrame, s: str) -> pl.DataFrame:
    """Return ``t`` and the columns of series ``s`` at each instant, from observations with ts_available <= t."""
    schema = dict.fromkeys(_value_columns(s), pl.Float64) | {f"macro_{s}_released_at": UTC_TS}
    if obs.is_empty():
        return instants.with_columns(*[pl.lit(None, dtype).alias(c) for c, dtype in schema.items()])
    known = (
        instants.join(obs, how="cross")
        .filter(pl.col("ts_available") <= pl.col("t"))
        .sort("t", "ts_event", "ts_available")
    )
    latest = known.group_by("t", maintain_order=True).agg(
        e=pl.col("ts_event").last(), x=pl.col("value").last(), rel=pl.col("ts_available").last()
    )
    latest = latest.filter(pl.col("t") - pl.col("rel") <= MACRO_HORIZON)
    in_window = pl.col("ts_event") > pl.col("e") - MACRO_Z_WINDOW
    stats = (
        known.join(latest.select("t", "e"), on="t", how="inner", maintain_order="left")
        .group_by("t", maintain_order=True)
        .agg(
            prev=pl.col("value").filter(pl.col("ts_event") < pl.col("e")).last(),
            n=in_window.sum().cast(pl.Float64),
            sm=pl.col("value").filter(in_window).sum(),
            sq=(pl.col("value") * pl.col("value")).filter(in_window).sum(),
            constant=pl.col("value").filter(in_window).max() == pl.col("value").filter(in_window).min(),
        )
    )
    n, sm, sq = pl.col("n"), pl.col("sm"), pl.col("sq")
    sd = pl.when(n >= 2).then(((sq - sm * sm / n) / (n - 1)).clip(lower_bound=0.0).sqrt())
    z = pl.when((n >= MACRO_Z_MIN_N) & (sd > 0) & ~pl.col("constant")).then((pl.col("x") - sm / n) / sd)
    return (
        instants.join(latest.join(stats, on="t", how="left"), on="t", how="left", maintain_order="left")
        .select(
            "t",
            pl.col("x").alias(f"macro_{s}"),
            (pl.col("x") - pl.col("prev")).alias(f"macro_{s}_change"),
            z.alias(f"macro_{s}_z90"),
            pl.col("rel").alias(f"macro_{s}_released_at"),
        )
        .cast(schema)
    )


def macro_features(macro: pl.DataFrame, start: datetime, end: datetime) -> pl.DataFrame:
    """Return ``ts_event = ts_available = t`` and every series' value, change, z90 and release instant at t."""
    obs = macro.filter(
        pl.col("series_id").is_in(MACRO_SERIES)
        & pl.col("value").is_not_null()
        & pl.col("value").is_not_nan()
        & (pl.col("ts_available") < end)
    ).select("series_id", "ts_event", "ts_available", "value")
    instants = macro_instants(obs["ts_available"], start, end)
    out = instants
    for s in MACRO_SERIES:
        part = series_at(instants, obs.filter(pl.col("series_id") == s).drop("series_id"), s)
        out = out.join(part, on="t", how="left", maintain_order="left")
    return out.select(
        pl.col("t").alias("ts_event"),
        pl.col("t").alias("ts_available"),
        *[c for s in MACRO_SERIES for c in _value_columns(s)],
    )


def macro_asof(grid: pl.DataFrame, macro_feats: pl.DataFrame) -> pl.DataFrame:
    """Return ``grid`` with ``MACRO_FEATURES`` from the macro row in force at each ``ts_event`` (same row order)."""
    right = macro_feats.select(
        pl.col("ts_available").alias("_macro_t"), *[c for s in MACRO_SERIES for c in _value_columns(s)]
    ).sort("_macro_t")
    joined = (
        grid.with_row_index("_row")
        .sort("ts_event")
        .join_asof(right, left_on="ts_event", right_on="_macro_t", strategy="backward")
        .sort("_row")
    )
    cols = []
    for s in MACRO_SERIES:
        released = pl.col(f"macro_{s}_released_at")
        stale = (pl.col("ts_event") - released).dt.total_microseconds().cast(pl.Float64) / HOUR_US
        missing = released.is_null() | (stale > MACRO_STALE_LIMIT / timedelta(hours=1))
        cols += [
            *[pl.when(~missing).then(pl.col(c)).alias(c) for c in _value_columns(s)[:3]],
            # past the limit the release counts as absent, as the search horizon makes it at later instants:
            # stored rows and a rebuild at t agree
            pl.when(~missing).then(stale).alias(f"macro_{s}_staleness_h"),
            missing.cast(pl.Int8).alias(f"macro_{s}_missing"),
        ]
    return joined.select(*grid.columns, *cols).select(*grid.columns, *MACRO_FEATURES)
