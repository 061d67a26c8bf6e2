"""Binance Vision client: the public daily / monthly zip archives of https://data.binance.vision.

File layout (https://github.com/binance/binance-public-data):

- ``data/spot/{daily|monthly}/klines/{SYM}/5m/{SYM}-5m-{YYYY-MM-DD|YYYY-MM}.zip`` (spot bars)
- ``data/futures/um/{daily|monthly}/klines/{SYM}/5m/...`` (USDT-M perpetual bars)
- ``data/futures/um/monthly/fundingRate/{SYM}/{SYM}-fundingRate-{YYYY-MM}.zip`` (monthly only)
- ``data/futures/um/daily/metrics/{SYM}/{SYM}-metrics-{YYYY-MM-DD}.zip`` (daily only; 5m open interest
  and ratios; ``create_time`` is read as the period start, conservatively: see :mod:`binance_wire`, so a
  day's file holds exactly that day's rows)

Klines use the monthly file for a whole month that is over and inside the window, daily files for the rest
(and for a month whose monthly file is not published yet). Files for days / months that have not ended are
not requested. A 404 means "no file": that file contributes nothing, is logged as a warning and listed in
:attr:`BinanceVisionExchange.missing_files`; it never fails the fetch.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from datetime import UTC, date, datetime, timedelta

import polars as pl
from pydantic import Field, PrivateAttr

from .base import ExchangeSource
from .binance_wire import (
    parse_vision_funding_csv,
    parse_vision_klines_csv,
    parse_vision_metrics_csv,
    read_zip_member,
)
from .http_common import (
    HttpSourceResource,
    SourceHTTPError,
    finish_pages,
)

logger = logging.getLogger(__name__)

SOURCE = "binance_vision"
MARKET_PREFIX = {"spot": "data/spot", "perp": "data/futures/um"}


def _month_start(day: date) -> date:
    return day.replace(day=1)


def _next_month(month: date) -> date:
    return (month.replace(day=28) + timedelta(days=4)).replace(day=1)


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _days(start: datetime, end: datetime) -> list[date]:
    """UTC days that overlap ``[start, end)``."""
    first, last = start.astimezone(UTC).date(), (end.astimezone(UTC) - timedelta(microseconds=1)).date()
    return [first + timedelta(days=i) for i in range((last - first).days + 1)] if end > start else []


class BinanceVisionExchange(ExchangeSource, HttpSourceResource):
    """Bars, funding, open interest and metrics from the Binance Vision archives."""

    base_url: str = Field(default="https://data.binance.vision", description="Binance Vision base URL.")
    cache_files: int = Field(default=16, description="Downloaded files kept in memory (metrics feed two assets).")

    _cache: OrderedDict[str, bytes | None] = PrivateAttr(default_factory=OrderedDict)
    _missing: list[str] = PrivateAttr(default_factory=list)

    @property
    def missing_files(self) -> list[str]:
        """URLs that answered 404 so far (no file for that day / month)."""
        return list(self._missing)

    # ---- ExchangeSource ------------------------------------------------------------------------------

    def fetch_bars(self, symbol: str, market: str, start: datetime, end: datetime) -> pl.DataFrame:
        if market not in MARKET_PREFIX:
            raise ValueError(f"market must be 'spot' or 'perp', got {market!r}")
        root = f"{self.base_url}/{MARKET_PREFIX[market]}"
        frames: list[pl.DataFrame] = []
        for month, days in self._plan_klines(start, end):
            if month is not None:
                data = self._download(f"{root}/monthly/klines/{symbol}/5m/{symbol}-5m-{month:%Y-%m}.zip")
                if data is not None:
                    frames.append(parse_vision_klines_csv(data, symbol, market, SOURCE))
                    continue
                days = _days(_midnight(month), _midnight(_next_month(month)))
            for day in days:
                data = self._download(f"{root}/daily/klines/{symbol}/5m/{symbol}-5m-{day:%Y-%m-%d}.zip")
                if data is not None:
                    frames.append(parse_vision_klines_csv(data, symbol, market, SOURCE))
        return finish_pages(frames, "market_bars_5m", start, end)

    def fetch_funding(self, symbol: str, start: datetime, end: datetime) -> pl.DataFrame:
        frames: list[pl.DataFrame] = []
        this_month = _month_start(self._today())
        month = _month_start(start.astimezone(UTC).date())
        while _midnight(month) < end:
            if month >= this_month:
                logger.warning(
                    "Binance Vision publishes funding monthly: %s %s is not out yet", symbol, f"{month:%Y-%m}"
                )
            else:
                url = (
                    f"{self.base_url}/data/futures/um/monthly/fundingRate/{symbol}/"
                    f"{symbol}-fundingRate-{month:%Y-%m}.zip"
                )
                data = self._download(url)
                if data is not None:
                    frames.append(parse_vision_funding_csv(data, symbol, SOURCE))
            month = _next_month(month)
        return finish_pages(frames, "funding_rates", start, end)

    def fetch_open_interest(self, symbol: str, start: datetime, end: datetime) -> pl.DataFrame:
        frames = [oi for oi, _ in self._metrics(symbol, start, end)]
        return finish_pages(frames, "open_interest", start, end)

    def fetch_derivatives_metrics(self, symbol: str, start: datetime, end: datetime) -> pl.DataFrame:
        frames = [dm for _, dm in self._metrics(symbol, start, end)]
        return finish_pages(frames, "derivatives_metrics", start, end)

    # ---- files ---------------------------------------------------------------------------------------

    def _today(self) -> date:
        return self.now().astimezone(UTC).date()

    def _plan_klines(self, start: datetime, end: datetime) -> list[tuple[date | None, list[date]]]:
        """(month, []) for a whole finished month inside the window, else (None, finished days)."""
        today = self._today()
        plan: list[tuple[date | None, list[date]]] = []
        days = [d for d in _days(start, end) if d < today]
        month_days: dict[date, list[date]] = {}
        for day in days:
            month_days.setdefault(_month_start(day), []).append(day)
        for month, in_window in month_days.items():
            whole = start <= _midnight(month) and _midnight(_next_month(month)) <= end
            plan.append((month, []) if whole and _next_month(month) <= today else (None, in_window))
        skipped = [d for d in _days(start, end) if d >= today]
        if skipped:
            logger.info("Binance Vision: days %s .. %s not finished, no daily file yet", skipped[0], skipped[-1])
        return plan

    def _metrics(self, symbol: str, start: datetime, end: datetime) -> list[tuple[pl.DataFrame, pl.DataFrame]]:
        """Parsed daily metrics files of the days ``[start, end)`` overlaps (ts_event = create_time)."""
        out = []
        for day in _days(start, end):
            if day >= self._today():
                logger.info("Binance Vision: metrics for %s %s not published yet", symbol, day)
                continue
            url = f"{self.base_url}/data/futures/um/daily/metrics/{symbol}/{symbol}-metrics-{day:%Y-%m-%d}.zip"
            data = self._download(url)
            if data is not None:
                out.append(parse_vision_metrics_csv(data, symbol, SOURCE))
        return out

    def _download(self, url: str) -> bytes | None:
        """The CSV inside the zip at ``url``, or None on 404 (recorded in :attr:`missing_files`)."""
        if url in self._cache:
            self._cache.move_to_end(url)
            return self._cache[url]
        try:
            data: bytes | None = read_zip_member(self.http_get(url).content)
        except SourceHTTPError as exc:
            if exc.status != 404:
                raise
            logger.warning("Binance Vision has no file %s (404): nothing for that period", url)
            self._missing.append(url)
            data = None
        self._cache[url] = data
        while len(self._cache) > self.cache_files:
            self._cache.popitem(last=False)
        return data
