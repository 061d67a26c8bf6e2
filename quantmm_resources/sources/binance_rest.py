"""Binance REST client: USDT-M futures (fapi) and spot (api) public market data.

Endpoints and the request weight counted for each (developers.binance.com, "Request Weight"):

==================================================  =======  =====================================
endpoint                                            weight   note
==================================================  =======  =====================================
GET /fapi/v1/klines (limit 1500)                    10       limit > 1000 weighs 10
GET /fapi/v1/markPriceKlines (limit 1500)           10       same table as klines
GET /api/v3/klines (spot, limit 1000)               2
GET /fapi/v1/fundingRate (limit 1000)               1        own 500 / 5 min / IP limit
GET /futures/data/* (limit 500)                     1        documented 0 or 1 (IP limit 1000 / 5 min);
                                                             counted as 1 to stay conservative
==================================================  =======  =====================================

Weight awareness: after each response the ``X-MBX-USED-WEIGHT-1M`` header (per host) is remembered; a
request that would take the used weight past ``weight_budget_per_minute`` first pauses (injectable sleep)
until the next clock minute, when Binance resets the counter. 429 / 418 are retried after
``Retry-After`` by :mod:`http_common`; an invalid symbol (HTTP 400, ``{"code":-1121,...}``) raises
:class:`SourceHTTPError` with Binance's message.

``/futures/data/*`` statistics are served for the last ~30 days only: older parts of a window are skipped
with a warning (``futures_data_max_age_days``). Their ``timestamp`` is ``ts_event``, read as the START of
the period (the conservative reading, as for the Vision ``metrics`` files' ``create_time``); see
:mod:`binance_wire`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import polars as pl
from pydantic import Field, PrivateAttr

from quantmm_assets.core.availability import PERIODS

from .base import ExchangeSource
from .binance_wire import (
    parse_rest_funding,
    parse_rest_klines,
    parse_rest_mark_price_klines,
    parse_rest_open_interest,
    parse_rest_period_stats,
)
from .http_common import (
    HttpSourceResource,
    SourceHTTPError,
    drop_exact_duplicates,
    finish_pages,
    to_epoch_ms,
    to_source_frame,
)

logger = logging.getLogger(__name__)

SOURCE = "binance_rest"
WEIGHT_HEADER = "X-MBX-USED-WEIGHT-1M"
RATIO_ENDPOINTS: dict[str, dict[str, str]] = {
    "/futures/data/globalLongShortAccountRatio": {"longShortRatio": "long_short_account_ratio"},
    "/futures/data/topLongShortAccountRatio": {"longShortRatio": "top_long_short_account_ratio"},
    "/futures/data/topLongShortPositionRatio": {"longShortRatio": "top_long_short_position_ratio"},
    "/futures/data/takerlongshortRatio": {"buySellRatio": "taker_buy_sell_ratio"},
}
BASIS_FIELDS = {"basis": "basis", "basisRate": "basis_rate", "annualizedBasisRate": "annualized_basis_rate"}
METRIC_KEYS = ["symbol", "period", "ts_event"]


def _kline_weight(limit: int) -> int:
    """Weight of a (mark price) klines request by its ``limit``."""
    return 1 if limit < 100 else 2 if limit < 500 else 5 if limit <= 1000 else 10


def _open_time(row: Any) -> Any:
    """Open time of a kline array (None for a malformed row)."""
    return row[0] if isinstance(row, list) and row else None


def _funding_time(row: Any) -> Any:
    """``fundingTime`` of a funding object (None for a malformed row)."""
    return row.get("fundingTime") if isinstance(row, dict) else None


class BinanceRestExchange(ExchangeSource, HttpSourceResource):
    """Bars, funding, open interest and derivatives metrics from Binance's public REST APIs."""

    futures_base_url: str = Field(default="https://fapi.binance.com", description="USDT-M futures REST base URL.")
    spot_base_url: str = Field(default="https://api.binance.com", description="Spot REST base URL.")
    metrics_period: str = Field(default="5m", description="Period of open interest, ratios, basis, mark price.")
    perp_kline_limit: int = Field(default=1500, description="Rows per /fapi/v1/klines page (max 1500).")
    spot_kline_limit: int = Field(default=1000, description="Rows per /api/v3/klines page (max 1000).")
    funding_limit: int = Field(default=1000, description="Rows per /fapi/v1/fundingRate page (max 1000).")
    stats_limit: int = Field(default=500, description="Rows per /futures/data/* request (max 500).")
    weight_budget_per_minute: int = Field(
        default=2000,
        description="Pause before a request would push X-MBX-USED-WEIGHT-1M past this (limit 2400).",
    )
    futures_data_max_age_days: int = Field(
        default=30, description="History served by /futures/data/* endpoints; older windows are skipped."
    )

    _used_weight: dict[str, int] = PrivateAttr(default_factory=dict)

    # ---- ExchangeSource ------------------------------------------------------------------------------

    def fetch_bars(self, symbol: str, market: str, start: datetime, end: datetime) -> pl.DataFrame:
        if market == "perp":
            base, path, limit = self.futures_base_url, "/fapi/v1/klines", self.perp_kline_limit
        elif market == "spot":
            base, path, limit = self.spot_base_url, "/api/v3/klines", self.spot_kline_limit
        else:
            raise ValueError(f"market must be 'spot' or 'perp', got {market!r}")
        pages = self._paginate(
            base,
            path,
            {"symbol": symbol, "interval": "5m"},
            start,
            end,
            limit,
            weight=2 if market == "spot" else _kline_weight(limit),
            stamp=_open_time,
        )
        frames = [parse_rest_klines(page, symbol, market, SOURCE) for page in pages]
        return finish_pages(frames, "market_bars_5m", start, end)

    def fetch_funding(self, symbol: str, start: datetime, end: datetime) -> pl.DataFrame:
        pages = self._paginate(
            self.futures_base_url,
            "/fapi/v1/fundingRate",
            {"symbol": symbol},
            start,
            end,
            self.funding_limit,
            weight=1,
            stamp=_funding_time,
        )
        frames = [parse_rest_funding(page, symbol, SOURCE) for page in pages]
        return finish_pages(frames, "funding_rates", start, end)

    def fetch_open_interest(self, symbol: str, start: datetime, end: datetime) -> pl.DataFrame:
        period = self.metrics_period
        frames = [
            parse_rest_open_interest(page, symbol, period, SOURCE)
            for page in self._stats_pages("/futures/data/openInterestHist", {"symbol": symbol}, start, end)
        ]
        return finish_pages(frames, "open_interest", start, end)

    def fetch_derivatives_metrics(self, symbol: str, start: datetime, end: datetime) -> pl.DataFrame:
        period = self.metrics_period
        parts: list[pl.DataFrame] = []
        for path, fields in RATIO_ENDPOINTS.items():
            pages = self._stats_pages(path, {"symbol": symbol}, start, end)
            parts.append(self._stack([parse_rest_period_stats(p, fields, symbol, period) for p in pages], fields))
        basis_pages = self._stats_pages(
            "/futures/data/basis", {"pair": symbol, "contractType": "PERPETUAL"}, start, end
        )
        parts.append(
            self._stack([parse_rest_period_stats(p, BASIS_FIELDS, symbol, period) for p in basis_pages], BASIS_FIELDS)
        )
        mark_pages = self._paginate(
            self.futures_base_url,
            "/fapi/v1/markPriceKlines",
            {"symbol": symbol, "interval": period},
            start,
            end,
            self.perp_kline_limit,
            weight=_kline_weight(self.perp_kline_limit),
            stamp=_open_time,
        )
        parts.append(
            self._stack([parse_rest_mark_price_klines(p, symbol, period) for p in mark_pages], {"close": "mark_price"})
        )
        merged = parts[0]
        for part in parts[1:]:
            merged = merged.join(part, on=METRIC_KEYS, how="full", coalesce=True)
        merged = merged.with_columns(pl.lit(SOURCE).alias("source"))
        return finish_pages([to_source_frame(merged, "derivatives_metrics")], "derivatives_metrics", start, end)

    # ---- requests ------------------------------------------------------------------------------------

    def request_json(self, base: str, path: str, params: dict[str, Any], weight: int) -> Any:
        """GET ``base + path`` within the weight budget; return the decoded JSON."""
        used = self._used_weight.get(base, 0)
        if used + weight > self.weight_budget_per_minute:
            now = self.now()
            wait = 60.0 - (now.second + now.microsecond / 1e6) + 1.0
            logger.warning(
                "Binance weight %d + %d would pass budget %d on %s: pausing %.1fs",
                used,
                weight,
                self.weight_budget_per_minute,
                base,
                wait,
            )
            self.pause(wait)
            self._used_weight[base] = 0
        response = self.http_get(base + path, params)
        header = response.headers.get(WEIGHT_HEADER)
        self._used_weight[base] = int(header) if header and header.isdigit() else used + weight
        payload = response.json()
        if isinstance(payload, dict) and "code" in payload:
            raise SourceHTTPError(
                str(response.request.url), response.status_code, response.text, reason="Binance error payload"
            )
        return payload

    def _paginate(
        self,
        base: str,
        path: str,
        params: dict[str, Any],
        start: datetime,
        end: datetime,
        limit: int,
        weight: int,
        stamp: Callable[[Any], Any],
    ) -> Iterator[list]:
        """Pages of ``path`` from ``start`` (by ``startTime``) until ``end`` or a short page."""
        cursor, end_ms = to_epoch_ms(start), to_epoch_ms(end)
        while cursor < end_ms:
            page = self.request_json(
                base, path, {**params, "startTime": cursor, "endTime": end_ms - 1, "limit": limit}, weight
            )
            if not page:
                return
            yield page
            stamps = [int(s) for s in map(stamp, page) if isinstance(s, int | str) and str(s).isdigit()]
            if len(page) < limit or not stamps or max(stamps) + 1 <= cursor:
                return
            cursor = max(stamps) + 1

    def _stats_pages(self, path: str, params: dict[str, Any], start: datetime, end: datetime) -> Iterator[list]:
        """Pages of a ``/futures/data`` endpoint, one per chunk of ``stats_limit`` periods."""
        period = PERIODS[self.metrics_period]
        oldest = self.now() - timedelta(days=self.futures_data_max_age_days) + period  # one period of margin
        if start < oldest:
            logger.warning(
                "%s serves only the last %d days: skipping %s .. %s",
                path,
                self.futures_data_max_age_days,
                start,
                min(end, oldest),
            )
            start = oldest
        chunk = period * self.stats_limit
        lo = start
        while lo < end:
            hi = min(lo + chunk, end)
            # ts_event = timestamp (read as the period start): ts_event in [lo, hi) <=> timestamp in [lo, hi)
            page = self.request_json(
                self.futures_base_url,
                path,
                {
                    **params,
                    "period": self.metrics_period,
                    "limit": self.stats_limit,
                    "startTime": to_epoch_ms(lo),
                    "endTime": to_epoch_ms(hi) - 1,
                },
                weight=1,
            )
            if page:
                yield page
            lo = hi

    # ---- frames --------------------------------------------------------------------------------------

    @staticmethod
    def _stack(frames: list[pl.DataFrame], fields: dict[str, str]) -> pl.DataFrame:
        """Concatenated pages of one metric, or an empty frame with its key and value columns."""
        if frames:
            return drop_exact_duplicates(pl.concat(frames, how="vertical"), METRIC_KEYS)
        schema = {"symbol": pl.Utf8, "period": pl.Utf8, "ts_event": pl.Datetime("us", "UTC")}
        return pl.DataFrame(schema={**schema, **dict.fromkeys(fields.values(), pl.Utf8)})
