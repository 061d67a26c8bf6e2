"""BinanceRestExchange against a fake Binance serving the recorded payloads (httpx.MockTransport)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from quantmm_assets.core.schemas import RAW_SCHEMAS
from quantmm_resources.sources.base import ExchangeSource
from quantmm_resources.sources.binance_rest import BinanceRestExchange
from quantmm_resources.sources.http_common import SourceHTTPError

FIXTURES = Path(__file__).parents[1] / "fixtures" / "http" / "binance"
FUTURES, SPOT = "https://fapi.test", "https://spot.test"
T0 = datetime(2024, 1, 1, tzinfo=UTC)
M5 = timedelta(minutes=5)
NOW = datetime(2024, 1, 10, 12, 0, 45, 500000, tzinfo=UTC)
ROUTES = {
    "/fapi/v1/klines": "futures_klines.json",
    "/api/v3/klines": "spot_klines.json",
    "/fapi/v1/markPriceKlines": "mark_price_klines.json",
    "/fapi/v1/fundingRate": "funding_rate.json",
    "/futures/data/openInterestHist": "open_interest_hist.json",
    "/futures/data/globalLongShortAccountRatio": "global_long_short_account_ratio.json",
    "/futures/data/topLongShortAccountRatio": "top_long_short_account_ratio.json",
    "/futures/data/topLongShortPositionRatio": "top_long_short_position_ratio.json",
    "/futures/data/takerlongshortRatio": "taker_long_short_ratio.json",
    "/futures/data/basis": "basis.json",
}


def _stamp(row: Any) -> int:
    if isinstance(row, list):
        return int(row[0])
    return int(row.get("fundingTime", row.get("timestamp")))


class FakeBinance:
    """Serves fixtures like Binance: rows with startTime <= stamp <= endTime, at most ``limit``."""

    def __init__(self, weight: int | list[int] = 10) -> None:
        self.requests: list[httpx.Request] = []
        self.events: list[str] = []
        self.scripted: list[httpx.Response] = []
        self.weight = weight

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        self.events.append("request")
        if self.scripted:
            return self.scripted.pop(0)
        params = request.url.params
        if params.get("symbol", params.get("pair")) != "BTCUSDT":
            return httpx.Response(400, text=(FIXTURES / "error_invalid_symbol.json").read_text())
        rows = json.loads((FIXTURES / ROUTES[request.url.path]).read_text())
        lo, hi = int(params.get("startTime", 0)), int(params.get("endTime", 2**62))
        page = [r for r in rows if lo <= _stamp(r) <= hi][: int(params["limit"])]
        used = self.weight.pop(0) if isinstance(self.weight, list) else self.weight
        return httpx.Response(200, json=page, headers={"X-MBX-USED-WEIGHT-1M": str(used)})

    def calls(self, path: str) -> list[httpx.QueryParams]:
        return [r.url.params for r in self.requests if r.url.path == path]


def make(fake: FakeBinance, now: datetime = NOW, **config: Any) -> tuple[BinanceRestExchange, list[float]]:
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        fake.events.append("sleep")
        sleeps.append(seconds)

    source = BinanceRestExchange(futures_base_url=FUTURES, spot_base_url=SPOT, **config)
    return source.with_http(transport=httpx.MockTransport(fake), sleep=sleep, clock=lambda: now), sleeps


def ms(ts: datetime) -> str:
    return str(int(ts.timestamp() * 1000))


def test_is_an_exchange_source() -> None:
    assert isinstance(BinanceRestExchange(), ExchangeSource)


def test_perp_bars_paginate_by_start_time_within_window() -> None:
    fake = FakeBinance()
    source, sleeps = make(fake, perp_kline_limit=2)
    bars = source.fetch_bars("BTCUSDT", "perp", T0, T0 + 5 * M5)
    assert bars.columns == RAW_SCHEMAS["market_bars_5m"].source_columns
    assert bars["ts_event"].to_list() == [T0 + i * M5 for i in range(5)]  # 23:55 and 00:25 left out
    assert bars["ts_event"].is_unique().all()
    calls = fake.calls("/fapi/v1/klines")
    assert [c["startTime"] for c in calls] == [
        ms(T0),
        str(int(ms(T0 + M5)) + 1),
        str(int(ms(T0 + 3 * M5)) + 1),
    ]
    assert {c["endTime"] for c in calls} == {str(int(ms(T0 + 5 * M5)) - 1)}
    assert {(c["interval"], c["limit"]) for c in calls} == {("5m", "2")}
    assert set(bars["market"]) == {"perp"} and set(bars["source"]) == {"binance_rest"}
    assert bars["close"][0] == "42310.00"
    assert sleeps == []


def test_spot_bars_use_the_spot_api() -> None:
    fake = FakeBinance()
    source, _ = make(fake)
    bars = source.fetch_bars("BTCUSDT", "spot", T0, T0 + 3 * M5)
    assert [str(r.url.copy_with(query=None)) for r in fake.requests] == [f"{SPOT}/api/v3/klines"]
    assert fake.requests[0].url.params["limit"] == "1000"
    assert bars["ts_event"].to_list() == [T0, T0 + M5, T0 + 2 * M5]
    assert set(bars["market"]) == {"spot"} and bars["open"][0] == "42283.58000000"
    with pytest.raises(ValueError, match="market"):
        source.fetch_bars("BTCUSDT", "futures", T0, T0 + M5)


def test_funding_paginates_and_keeps_the_window() -> None:
    fake = FakeBinance()
    source, _ = make(fake, funding_limit=2)
    funding = source.fetch_funding("BTCUSDT", T0, T0 + timedelta(days=1))
    assert funding.columns == RAW_SCHEMAS["funding_rates"].source_columns
    assert funding["funding_rate"].to_list() == ["0.00042016", "0.00030112", "0.00010000"]
    assert funding["mark_price"].to_list() == ["42283.58000000", "42745.16431000", None]
    assert len(fake.calls("/fapi/v1/fundingRate")) == 2


def test_open_interest_chunks_by_stats_limit_and_reads_the_stamp_as_period_start() -> None:
    fake = FakeBinance()
    source, _ = make(fake, stats_limit=2)
    oi = source.fetch_open_interest("BTCUSDT", T0, T0 + 3 * M5)
    assert oi.columns == RAW_SCHEMAS["open_interest"].source_columns
    # ts_event = timestamp (conservative reading: core makes the row available one period later)
    assert oi["ts_event"].to_list() == [T0, T0 + M5, T0 + 2 * M5]
    assert oi["open_interest"].to_list() == ["74210.31200000", "74225.31200000", "74240.31200000"]
    calls = fake.calls("/futures/data/openInterestHist")
    assert [(c["startTime"], c["endTime"], c["period"], c["limit"]) for c in calls] == [
        (ms(T0), str(int(ms(T0 + 2 * M5)) - 1), "5m", "2"),
        (ms(T0 + 2 * M5), str(int(ms(T0 + 3 * M5)) - 1), "5m", "2"),
    ]


def test_derivatives_metrics_outer_join_of_six_endpoints() -> None:
    fake = FakeBinance()
    source, _ = make(fake)
    dm = source.fetch_derivatives_metrics("BTCUSDT", T0, T0 + 4 * M5)
    assert dm.columns == RAW_SCHEMAS["derivatives_metrics"].source_columns
    assert dm["ts_event"].to_list() == [T0, T0 + M5, T0 + 2 * M5, T0 + 3 * M5]
    first = dm.row(0, named=True)  # every statistic stamped 00:00 (read as the period start)
    assert first["long_short_account_ratio"] == "1.2034"
    assert first["top_long_short_account_ratio"] == "1.4121"
    assert first["top_long_short_position_ratio"] == "1.6203"
    assert first["taker_buy_sell_ratio"] == "0.9412"
    assert (first["basis"], first["basis_rate"], first["annualized_basis_rate"]) == (
        "12.94054945",
        "0.0003",
        None,
    )
    assert first["mark_price"] == "42308.75000000"  # close of the mark-price bar opening at 00:00
    assert dm["top_long_short_position_ratio"][3] is None  # absent from that endpoint: null, row kept
    basis_call = fake.calls("/futures/data/basis")[0]
    assert (basis_call["pair"], basis_call["contractType"]) == ("BTCUSDT", "PERPETUAL")
    assert {r.url.host for r in fake.requests} == {"fapi.test"}
    assert len(fake.requests) == 6


def test_futures_data_older_than_30_days_is_not_requested() -> None:
    fake = FakeBinance()
    source, _ = make(fake, now=datetime(2024, 3, 1, tzinfo=UTC))
    oi = source.fetch_open_interest("BTCUSDT", T0, T0 + 3 * M5)
    assert oi.height == 0 and oi.columns == RAW_SCHEMAS["open_interest"].source_columns
    dm = source.fetch_derivatives_metrics("BTCUSDT", T0, T0 + 3 * M5)
    assert [r.url.path for r in fake.requests] == ["/fapi/v1/markPriceKlines"]
    assert dm["mark_price"].to_list() == ["42308.75000000", "42293.85000000", "42349.15000000"]
    assert dm["long_short_account_ratio"].null_count() == 3


def test_weight_budget_pauses_until_the_next_minute() -> None:
    fake = FakeBinance(weight=[2000, 40, 41])
    source, sleeps = make(fake, perp_kline_limit=2)
    bars = source.fetch_bars("BTCUSDT", "perp", T0, T0 + 5 * M5)
    assert sleeps == [pytest.approx(15.5)]  # clock at :45.5 -> next minute + 1 s margin
    assert fake.events == ["request", "sleep", "request", "request"]
    assert bars.height == 5

    fake = FakeBinance(weight=1999)
    source, sleeps = make(fake, perp_kline_limit=2)
    source.fetch_bars("BTCUSDT", "perp", T0, T0 + 5 * M5)
    assert sleeps == []  # 1999 + weight 1 stays within 2000


@pytest.mark.parametrize(
    ("status", "fixture", "retry_after"),
    [(429, "error_429_too_many_requests.json", "7"), (418, "error_418_ip_banned.json", "3")],
)
def test_rate_limit_responses_honour_retry_after(status: int, fixture: str, retry_after: str) -> None:
    fake = FakeBinance()
    fake.scripted = [
        httpx.Response(status, text=(FIXTURES / fixture).read_text(), headers={"Retry-After": retry_after})
    ]
    source, sleeps = make(fake)
    bars = source.fetch_bars("BTCUSDT", "perp", T0, T0 + 2 * M5)
    assert sleeps == [float(retry_after)]
    assert bars.height == 2 and len(fake.requests) == 2


def test_server_errors_are_retried_then_fail_clearly() -> None:
    html = (FIXTURES / "error_502_bad_gateway.html").read_text()
    fake = FakeBinance()
    fake.scripted = [httpx.Response(502, text=html)]
    source, sleeps = make(fake)
    assert source.fetch_funding("BTCUSDT", T0, T0 + timedelta(days=1)).height == 3
    assert sleeps == [1.0]

    fake = FakeBinance()
    fake.scripted = [httpx.Response(502, text=html)] * 3
    source, _ = make(fake, max_attempts=3)
    with pytest.raises(SourceHTTPError, match="502") as info:
        source.fetch_funding("BTCUSDT", T0, T0 + timedelta(days=1))
    assert "/fapi/v1/fundingRate" in str(info.value)


def test_invalid_symbol_raises_with_binance_message() -> None:
    fake = FakeBinance()
    source, sleeps = make(fake)
    with pytest.raises(SourceHTTPError) as info:
        source.fetch_bars("NOPEUSDT", "perp", T0, T0 + M5)
    assert info.value.status == 400
    assert "Invalid symbol." in str(info.value) and "-1121" in str(info.value)
    assert "symbol=NOPEUSDT" in str(info.value)
    assert len(fake.requests) == 1 and sleeps == []


def test_empty_window_returns_empty_source_frames() -> None:
    fake = FakeBinance()
    source, _ = make(fake)
    later = T0 + timedelta(days=3)
    for frame, asset in [
        (source.fetch_bars("BTCUSDT", "perp", later, later + M5), "market_bars_5m"),
        (source.fetch_funding("BTCUSDT", later, later + M5), "funding_rates"),
        (source.fetch_derivatives_metrics("BTCUSDT", later, later + M5), "derivatives_metrics"),
    ]:
        assert frame.height == 0 and frame.columns == RAW_SCHEMAS[asset].source_columns


def test_malformed_rows_are_kept_and_do_not_break_pagination() -> None:
    fake = FakeBinance()
    good = json.loads((FIXTURES / "futures_klines.json").read_text())[1]
    fake.scripted = [httpx.Response(200, json=[good, [], "oops"])]
    source, _ = make(fake, perp_kline_limit=3)
    bars = source.fetch_bars("BTCUSDT", "perp", T0, T0 + 5 * M5)
    assert bars.height == 5 + 2 and bars["ts_event"].null_count() == 2  # 5 bars + the 2 malformed rows
    assert bars["ts_event"].drop_nulls().to_list() == [T0 + i * M5 for i in range(5)]
    assert [c["startTime"] for c in fake.calls("/fapi/v1/klines")][:2] == [ms(T0), str(int(ms(T0)) + 1)]
