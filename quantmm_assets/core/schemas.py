"""Canonical schemas of the raw assets: one place that names every column, dtype and key.

Sources (HTTP clients, bundle readers, the synthetic sample) return *source frames*: the columns of
``SOURCE_COLUMNS[asset]`` with any dtype (strings are fine: the wire is converted once, in
``core.ingest.normalize``). ``ts_available`` is never supplied by a source: it is derived in core from
``ts_event`` and the availability rules of ``core.availability``.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

UTC_TS = pl.Datetime("us", "UTC")
DERIVED_COLUMNS = ("ts_available", "symbols")  # computed in core, never taken from a source


@dataclass(frozen=True)
class RawSchema:
    """Columns, dtypes and key of one raw asset; ``required`` columns may not be null."""

    name: str
    columns: dict[str, pl.DataType]
    key: tuple[str, ...]
    required: tuple[str, ...]
    partitioned_by_symbol: bool

    @property
    def source_columns(self) -> list[str]:
        """Columns a source provides (all but the derived ``ts_available`` and ``symbols``)."""
        return [c for c in self.columns if c not in DERIVED_COLUMNS]

    @property
    def value_columns(self) -> list[str]:
        """The measured values: every column but the key, the timestamps and the source."""
        meta = {*self.key, "ts_event", "source", *DERIVED_COLUMNS}
        return [c for c in self.columns if c not in meta]

    def empty(self) -> pl.DataFrame:
        """An empty frame with this schema."""
        return pl.DataFrame(schema=self.columns)


MARKET_BARS_5M = RawSchema(
    name="market_bars_5m",
    columns={
        "symbol": pl.Utf8,
        "market": pl.Utf8,  # "spot" | "perp"
        "ts_event": UTC_TS,  # bar open
        "ts_available": UTC_TS,  # bar close
        "open": pl.Float64,
        "high": pl.Float64,
        "low": pl.Float64,
        "close": pl.Float64,
        "volume": pl.Float64,  # base asset
        "quote_volume": pl.Float64,  # nullable: freqtrade files have none
        "trades": pl.Int64,  # nullable
        "source": pl.Utf8,
    },
    key=("symbol", "market", "ts_event"),
    required=("symbol", "market", "ts_event", "open", "high", "low", "close", "volume", "source"),
    partitioned_by_symbol=True,
)

FUNDING_RATES = RawSchema(
    name="funding_rates",
    columns={
        "symbol": pl.Utf8,
        "ts_event": UTC_TS,  # funding settlement time
        "ts_available": UTC_TS,
        "funding_rate": pl.Float64,  # fraction per funding interval
        "mark_price": pl.Float64,  # nullable
        "source": pl.Utf8,
    },
    key=("symbol", "ts_event"),
    required=("symbol", "ts_event", "funding_rate", "source"),
    partitioned_by_symbol=True,
)

OPEN_INTEREST = RawSchema(
    name="open_interest",
    columns={
        "symbol": pl.Utf8,
        "period": pl.Utf8,  # "5m" | "1h" | "1d" ...
        "ts_event": UTC_TS,  # start of the period the snapshot closes
        "ts_available": UTC_TS,
        "open_interest": pl.Float64,  # contracts (base asset); nullable
        "open_interest_value": pl.Float64,  # USD notional; nullable
        "source": pl.Utf8,
    },
    key=("symbol", "period", "ts_event"),
    required=("symbol", "period", "ts_event", "source"),
    partitioned_by_symbol=True,
)

DERIVATIVES_METRICS = RawSchema(
    name="derivatives_metrics",
    columns={
        "symbol": pl.Utf8,
        "period": pl.Utf8,
        "ts_event": UTC_TS,
        "ts_available": UTC_TS,
        "long_short_account_ratio": pl.Float64,  # all accounts
        "top_long_short_account_ratio": pl.Float64,  # top traders, by accounts
        "top_long_short_position_ratio": pl.Float64,  # top traders, by positions
        "taker_buy_sell_ratio": pl.Float64,
        "basis": pl.Float64,  # futures price - index price, as reported by the exchange
        "basis_rate": pl.Float64,
        "annualized_basis_rate": pl.Float64,
        "mark_price": pl.Float64,  # close of the mark-price bar of this period
        "source": pl.Utf8,
    },
    key=("symbol", "period", "ts_event"),
    required=("symbol", "period", "ts_event", "source"),
    partitioned_by_symbol=True,
)

MACRO_SERIES = RawSchema(
    name="macro_series",
    columns={
        "series_id": pl.Utf8,  # canonical id: dollar_index | vix | us10y
        "ts_event": UTC_TS,  # observation date, 00:00 UTC
        "ts_available": UTC_TS,  # publication (see core.availability.MACRO_SERIES_SPECS)
        "value": pl.Float64,
        "source_series": pl.Utf8,  # e.g. FRED DGS10, ICE DXY
        "source": pl.Utf8,
    },
    key=("series_id", "ts_event"),
    required=("series_id", "ts_event", "value", "source"),
    partitioned_by_symbol=False,
)

SOCIAL_POSTS_RAW = RawSchema(
    name="social_posts_raw",
    columns={
        "platform": pl.Utf8,  # reddit | rss | synthetic ...
        "id": pl.Utf8,
        "ts_event": UTC_TS,  # published
        "ts_available": UTC_TS,  # published + ingest delay
        "author": pl.Utf8,  # nullable
        "community": pl.Utf8,  # subreddit / feed; nullable
        "title": pl.Utf8,  # nullable
        "text": pl.Utf8,
        "url": pl.Utf8,  # nullable
        "engagement_score": pl.Int64,  # nullable: never invented
        "num_comments": pl.Int64,  # nullable
        # When the counts above were observed (a crawl, a scrape): they are known from then on, not at
        # publication. Null: observation time unknown, so features must not use the counts as of any t.
        "engagement_observed_at": UTC_TS,
        "symbols": pl.List(pl.Utf8),  # from core.symbols.link_symbols
        "source": pl.Utf8,
    },
    key=("platform", "id"),
    required=("platform", "id", "ts_event", "text", "source"),
    partitioned_by_symbol=False,
)

SOCIAL_COMMENTS_RAW = RawSchema(
    name="social_comments_raw",
    columns={
        "platform": pl.Utf8,
        "id": pl.Utf8,
        "post_id": pl.Utf8,  # nullable
        "parent_id": pl.Utf8,  # nullable
        "ts_event": UTC_TS,
        "ts_available": UTC_TS,
        "author": pl.Utf8,
        "community": pl.Utf8,
        "text": pl.Utf8,
        "engagement_score": pl.Int64,  # nullable
        "engagement_observed_at": UTC_TS,  # see social_posts_raw
        "symbols": pl.List(pl.Utf8),
        "source": pl.Utf8,
    },
    key=("platform", "id"),
    required=("platform", "id", "ts_event", "text", "source"),
    partitioned_by_symbol=False,
)

RAW_SCHEMAS: dict[str, RawSchema] = {
    s.name: s
    for s in (
        MARKET_BARS_5M,
        FUNDING_RATES,
        OPEN_INTEREST,
        DERIVATIVES_METRICS,
        MACRO_SERIES,
        SOCIAL_POSTS_RAW,
        SOCIAL_COMMENTS_RAW,
    )
}

REJECT_COLUMNS: dict[str, pl.DataType] = {
    "asset": pl.Utf8,
    "partition": pl.Utf8,
    "reason": pl.Utf8,
    "raw": pl.Utf8,  # the offending source row as JSON
}


# The serving app's prediction log (one row per symbol, horizon, bar, model version and role active / shadow): the
# operational store's table (``quantmm_resources.prediction_log``) and the monitoring that reads it share this schema.
PREDICTION_LOG_SCHEMA: dict[str, pl.DataType] = {
    "symbol": pl.Utf8,
    "horizon": pl.Utf8,
    "bar_ts": UTC_TS,
    "model_version": pl.Utf8,
    "role": pl.Utf8,
    "expected_return": pl.Float64,
    "signal_confidence": pl.Float64,
    "vol_forecast": pl.Float64,
    "position": pl.Float64,
    "cost": pl.Float64,
    "gate": pl.Float64,
    "text_contribution": pl.Float64,
    "text_missing": pl.Boolean,
    "logged_at": UTC_TS,
}
