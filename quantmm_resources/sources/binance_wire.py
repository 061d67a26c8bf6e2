"""Binance wire formats (REST JSON, Binance Vision CSV/zip) parsed into source frames, in one place.

Used by the REST client, the Vision client and the offline-bundle reader. Conventions:

- Timestamps become tz-aware UTC datetimes (``ts_event``) through the one parser of
  ``quantmm_assets.core.timestamps``: epoch seconds / milliseconds / microseconds are told apart per value
  by magnitude (Vision spot files use microseconds from 2025-01-01), text stamps are ISO.
- Numeric values stay the venue's text (``Utf8``): ``core.ingest.normalize`` converts them once and
  quarantines what does not parse. Empty / absent values become null.
- No row is ever dropped: a row that does not parse is returned with nulls where its fields are unreadable.
- Binance "statistics" (``/futures/data/*`` ``timestamp`` and the Vision ``metrics`` ``create_time``): the
  documentation does not say whether the stamp is the start or the end of the period it covers. We take
  the conservative reading: ``ts_event`` = the stamp, read as the period START, so ``core.availability``
  makes each row available at stamp + period. Were the stamp the period end, this delays the row by one
  period (never a look-ahead); reading it as the end while it is the start would leak flow statistics
  (taker buy/sell ratio) one period early.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl

from quantmm_assets.core.timestamps import epoch_to_utc, to_utc

from .http_common import to_source_frame

KLINE_FIELDS = (
    "open_time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "close_time",
    "quote_volume",
    "count",
    "taker_buy_volume",
    "taker_buy_quote_volume",
    "ignore",
)
FUNDING_FIELDS = ("calc_time", "funding_interval_hours", "last_funding_rate")
METRICS_FIELDS = (
    "create_time",
    "symbol",
    "sum_open_interest",
    "sum_open_interest_value",
    "count_toptrader_long_short_ratio",
    "sum_toptrader_long_short_ratio",
    "count_long_short_ratio",
    "sum_taker_long_short_vol_ratio",
)
METRICS_TO_COLUMNS = {
    "count_toptrader_long_short_ratio": "top_long_short_account_ratio",
    "sum_toptrader_long_short_ratio": "top_long_short_position_ratio",
    "count_long_short_ratio": "long_short_account_ratio",
    "sum_taker_long_short_vol_ratio": "taker_buy_sell_ratio",
}
VISION_METRICS_PERIOD = "5m"
_HEADER_CELL = re.compile(r"^[A-Za-z_][A-Za-z0-9_ ]*$")


def _text(value: Any) -> str | None:
    """Wire value as stripped text; None / empty -> None."""
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _string_frame(rows: Sequence[Sequence[str | None]], fields: Sequence[str]) -> pl.DataFrame:
    """Rows of text (ragged rows padded with nulls, extra cells cut) as a Utf8 frame."""
    width = len(fields)
    padded = [list(r[:width]) + [None] * (width - len(r[:width])) for r in rows]
    return pl.DataFrame(padded, schema=dict.fromkeys(fields, pl.Utf8), orient="row")


def _csv_frame(data: bytes, fields: Sequence[str]) -> pl.DataFrame:
    """A Vision CSV (header optional) as a Utf8 frame with ``fields``; a header maps columns by name."""
    rows = [[_text(c) for c in row] for row in csv.reader(io.StringIO(data.decode("utf-8-sig"))) if row]
    if rows and all(c is not None and _HEADER_CELL.match(c) for c in rows[0]):
        header = [c.lower() for c in rows.pop(0)]  # type: ignore[union-attr]
        if set(fields) <= set(header):
            index = [header.index(f) for f in fields]
            rows = [[r[i] if i < len(r) else None for i in index] for r in rows]
    return _string_frame(rows, fields)


def read_zip_member(data: bytes) -> bytes:
    """The single CSV inside a Binance Vision zip."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = [n for n in archive.namelist() if not n.endswith("/")]
        csvs = [n for n in names if n.lower().endswith(".csv")]
        if len(csvs) != 1:
            raise ValueError(f"expected exactly one CSV in the Vision zip, found {names}")
        return archive.read(csvs[0])


def _bars(raw: pl.DataFrame, symbol: str, market: str, source: str) -> pl.DataFrame:
    return to_source_frame(
        raw.select(
            pl.lit(symbol).alias("symbol"),
            pl.lit(market).alias("market"),
            epoch_to_utc(pl.col("open_time")).alias("ts_event"),
            "open",
            "high",
            "low",
            "close",
            "volume",
            pl.col("quote_volume"),
            pl.col("count").alias("trades"),
            pl.lit(source).alias("source"),
        ),
        "market_bars_5m",
    )


def parse_rest_klines(payload: list, symbol: str, market: str, source: str) -> pl.DataFrame:
    """Kline arrays ``[openTime, open, high, low, close, volume, closeTime, quoteVolume, trades, ...]``."""
    rows = [[_text(v) for v in item] if isinstance(item, list) else [] for item in payload]
    return _bars(_string_frame(rows, KLINE_FIELDS), symbol, market, source)


def parse_vision_klines_csv(data: bytes, symbol: str, market: str, source: str) -> pl.DataFrame:
    """A Vision kline CSV (futures with a header row, spot without; ms or µs timestamps)."""
    return _bars(_csv_frame(data, KLINE_FIELDS), symbol, market, source)


def parse_vision_funding_csv(data: bytes, symbol: str, source: str) -> pl.DataFrame:
    """A Vision ``fundingRate`` CSV: ``calc_time,funding_interval_hours,last_funding_rate``."""
    raw = _csv_frame(data, FUNDING_FIELDS)
    return to_source_frame(
        raw.select(
            pl.lit(symbol).alias("symbol"),
            epoch_to_utc(pl.col("calc_time")).alias("ts_event"),
            pl.col("last_funding_rate").alias("funding_rate"),
            pl.lit(source).alias("source"),
        ),
        "funding_rates",
    )


def parse_vision_metrics_csv(data: bytes, symbol: str, source: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """A Vision ``metrics`` CSV as (``open_interest`` frame, ``derivatives_metrics`` frame), period 5m.

    ``ts_event`` = ``create_time``, read as the period START (conservative: see the module docstring)."""
    raw = _csv_frame(data, METRICS_FIELDS)
    keys = raw.select(
        pl.lit(symbol).alias("symbol"),
        pl.lit(VISION_METRICS_PERIOD).alias("period"),
        to_utc(pl.col("create_time"), pl.Utf8).alias("ts_event"),  # UTC text (or epoch); the period start
    )
    src = pl.lit(source).alias("source")
    open_interest = pl.concat(
        [
            keys,
            raw.select(
                pl.col("sum_open_interest").alias("open_interest"),
                pl.col("sum_open_interest_value").alias("open_interest_value"),
                src,
            ),
        ],
        how="horizontal",
    )
    metrics = pl.concat(
        [keys, raw.select(*[pl.col(k).alias(v) for k, v in METRICS_TO_COLUMNS.items()], src)],
        how="horizontal",
    )
    return to_source_frame(open_interest, "open_interest"), to_source_frame(metrics, "derivatives_metrics")


# ---- REST JSON objects ------------------------------------------------------------------------------


def _object_frame(payload: list, fields: Mapping[str, str]) -> pl.DataFrame:
    """JSON objects as a Utf8 frame: wire key -> column; a non-object item becomes an all-null row."""
    rows = [[_text(item.get(k)) if isinstance(item, dict) else None for k in fields] for item in payload]
    return _string_frame(rows, list(fields.values()))


def parse_rest_funding(payload: list, symbol: str, source: str) -> pl.DataFrame:
    """``/fapi/v1/fundingRate`` objects ``{symbol, fundingRate, fundingTime, markPrice}``."""
    raw = _object_frame(payload, {"fundingTime": "time", "fundingRate": "funding_rate", "markPrice": "mark_price"})
    return to_source_frame(
        raw.select(
            pl.lit(symbol).alias("symbol"),
            epoch_to_utc(pl.col("time")).alias("ts_event"),
            "funding_rate",
            "mark_price",
            pl.lit(source).alias("source"),
        ),
        "funding_rates",
    )


def parse_rest_period_stats(payload: list, fields: Mapping[str, str], symbol: str, period: str) -> pl.DataFrame:
    """``/futures/data/*`` objects stamped ``timestamp`` -> (symbol, period, ts_event = timestamp, ...).

    The stamp is read as the period START (conservative: see the module docstring)."""
    raw = _object_frame(payload, {"timestamp": "stamp", **fields})
    return raw.select(
        pl.lit(symbol).alias("symbol"),
        pl.lit(period).alias("period"),
        epoch_to_utc(pl.col("stamp")).alias("ts_event"),
        *fields.values(),
    )


def parse_rest_open_interest(payload: list, symbol: str, period: str, source: str) -> pl.DataFrame:
    """``/futures/data/openInterestHist`` objects as an ``open_interest`` source frame."""
    stats = parse_rest_period_stats(
        payload,
        {"sumOpenInterest": "open_interest", "sumOpenInterestValue": "open_interest_value"},
        symbol,
        period,
    )
    return to_source_frame(stats.with_columns(pl.lit(source).alias("source")), "open_interest")


def parse_rest_mark_price_klines(payload: list, symbol: str, period: str) -> pl.DataFrame:
    """``/fapi/v1/markPriceKlines`` arrays -> (symbol, period, ts_event = open time, mark_price = close)."""
    rows = [[_text(v) for v in item] if isinstance(item, list) else [] for item in payload]
    raw = _string_frame(rows, KLINE_FIELDS)
    return raw.select(
        pl.lit(symbol).alias("symbol"),
        pl.lit(period).alias("period"),
        epoch_to_utc(pl.col("open_time")).alias("ts_event"),
        pl.col("close").alias("mark_price"),
    )
