"""The one timestamp parser: every wire value (epoch s / ms / µs, ISO text, dates, datetimes) to UTC µs."""

from __future__ import annotations

import polars as pl

from quantmm_assets.core.schemas import UTC_TS

SECONDS_BELOW = 10**11  # epoch seconds until year 5138; epoch ms from 1973-03-03 on
MILLIS_BELOW = 10**14  # epoch µs from 1973 on (Binance Vision spot files since 2025)
_ISO = r"^\d{4}-\d{2}-\d{2}"


def epoch_to_utc(value: pl.Expr) -> pl.Expr:
    """Epoch seconds, milliseconds or microseconds, told apart per value by magnitude; others -> null."""
    n = value.cast(pl.Int64, strict=False)
    micros = (
        pl.when(n.abs() < SECONDS_BELOW).then(n * 1_000_000).when(n.abs() < MILLIS_BELOW).then(n * 1_000).otherwise(n)
    )
    return pl.from_epoch(micros, time_unit="us").dt.replace_time_zone("UTC")


def to_utc(col: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """``col`` (of ``dtype``) as UTC µs datetimes: naive datetimes and zone-less text are taken as UTC."""
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is None:
            return col.dt.replace_time_zone("UTC").dt.cast_time_unit("us")
        return col.dt.convert_time_zone("UTC").dt.cast_time_unit("us")
    if dtype == pl.Date:
        return col.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    if dtype.is_integer():
        return epoch_to_utc(col)
    if dtype.is_float():
        return epoch_to_utc(col.round(0))
    if dtype == pl.Null:
        return col.cast(UTC_TS)
    text = col.cast(pl.Utf8).str.strip_chars()
    iso = text.str.replace(r"^(\d{4}-\d{2}-\d{2})[T ]", "$1 ").str.replace(r"Z$", "+00:00")
    with_zone = iso.str.to_datetime("%Y-%m-%d %H:%M:%S%.f%:z", time_unit="us", time_zone="UTC", strict=False)
    naive = pl.coalesce(
        iso.str.to_datetime("%Y-%m-%d %H:%M:%S%.f", time_unit="us", strict=False),
        iso.str.to_datetime("%Y-%m-%d %H:%M", time_unit="us", strict=False),
        iso.str.to_date("%Y-%m-%d", strict=False).cast(pl.Datetime("us")),
    ).dt.replace_time_zone("UTC")
    return (
        pl.when(text.str.contains(r"^-?\d{9,17}(\.0+)?$"))
        .then(epoch_to_utc(text.str.replace(r"\.0+$", "").cast(pl.Int64, strict=False)))
        .when(text.str.contains(_ISO))
        .then(pl.coalesce(with_zone, naive))
        .otherwise(None)
    )
