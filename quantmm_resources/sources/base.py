"""Abstract sources of raw data. Each is a Dagster ConfigurableResource with several implementations:
real HTTP clients (``binance_rest``, ``binance_vision``, ``reddit``, ``rss``, ``fred``), the offline bundle
(``bundle``) and the seeded synthetic sample (``synthetic``). The environment picks one in
``quantmm_resources.environment``.

Contract shared by every implementation (tests/resources check it):
- ``start`` and ``end`` are tz-aware UTC datetimes; return rows with ``start <= ts_event < end``.
- Return a *source frame*: the columns of ``RawSchema.source_columns`` for that asset, in any dtype
  (strings are fine; ``core.ingest.normalize`` converts them once and quarantines what does not parse).
  Timestamps as tz-aware UTC datetimes or as epoch milliseconds (Int64).
- Missing fields are nulls, never invented values. Never drop a bad row: return it, core rejects it.
- An empty window returns an empty frame with the source columns.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import datetime

import dagster as dg
import polars as pl

from quantmm_assets.core.schemas import RAW_SCHEMAS


def source_schema(asset: str) -> dict[str, pl.DataType]:
    """Columns and canonical dtypes of a source frame of ``asset``, in order."""
    schema = RAW_SCHEMAS[asset]
    return {c: schema.columns[c] for c in schema.source_columns}


def empty_source_frame(asset: str) -> pl.DataFrame:
    """An empty source frame for ``asset`` with canonical dtypes."""
    return pl.DataFrame(schema=source_schema(asset))


class ExchangeSource(dg.ConfigurableResource, ABC):
    """Market bars and perpetual-futures derivatives for a list of symbols (e.g. ``BTCUSDT``)."""

    @abstractmethod
    def fetch_bars(self, symbol: str, market: str, start: datetime, end: datetime) -> pl.DataFrame:
        """5m bars of ``market`` ("spot" | "perp"): source frame of ``market_bars_5m``."""

    @abstractmethod
    def fetch_funding(self, symbol: str, start: datetime, end: datetime) -> pl.DataFrame:
        """Funding settlements: source frame of ``funding_rates``."""

    @abstractmethod
    def fetch_open_interest(self, symbol: str, start: datetime, end: datetime) -> pl.DataFrame:
        """Open interest snapshots: source frame of ``open_interest``."""

    @abstractmethod
    def fetch_derivatives_metrics(self, symbol: str, start: datetime, end: datetime) -> pl.DataFrame:
        """Ratios, basis and mark price: source frame of ``derivatives_metrics``."""

    def available_kinds(self) -> set[str]:
        """Raw assets this source can fill (a bundle may lack some)."""
        return {"market_bars_5m", "funding_rates", "open_interest", "derivatives_metrics"}


class MacroSource(dg.ConfigurableResource, ABC):
    """Daily macro series under their canonical ids (``dollar_index``, ``vix``, ``us10y``)."""

    @abstractmethod
    def fetch_macro(self, start: datetime, end: datetime) -> pl.DataFrame:
        """Observations with ``start <= ts_event < end``: source frame of ``macro_series``."""

    def available_kinds(self) -> set[str]:
        return {"macro_series"}


class SocialSource(dg.ConfigurableResource, ABC):
    """Social posts and comments (Reddit, news feeds, ...)."""

    @abstractmethod
    def fetch_posts(self, start: datetime, end: datetime) -> pl.DataFrame:
        """Posts: source frame of ``social_posts_raw``."""

    @abstractmethod
    def fetch_comments(self, start: datetime, end: datetime) -> pl.DataFrame:
        """Comments: source frame of ``social_comments_raw``."""

    def available_kinds(self) -> set[str]:
        return {"social_posts_raw", "social_comments_raw"}
