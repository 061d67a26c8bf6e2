"""The shared HTTP fetcher: retries, Retry-After, errors, headers; frame helpers. No network, no waiting."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import httpx
import polars as pl
import pytest

from quantmm_resources.sources.base import ExchangeSource, MacroSource, SocialSource
from quantmm_resources.sources.binance_rest import BinanceRestExchange
from quantmm_resources.sources.binance_vision import BinanceVisionExchange
from quantmm_resources.sources.fred import FredMacro
from quantmm_resources.sources.http_common import (
    DEFAULT_USER_AGENT,
    HttpFetcher,
    SourceHTTPError,
    drop_exact_duplicates,
    parse_retry_after,
    to_source_frame,
    window_filter,
)
from quantmm_resources.sources.reddit import RedditSocial
from quantmm_resources.sources.rss import RssNewsSocial

BINANCE = Path(__file__).parents[1] / "fixtures" / "http" / "binance"
URL = "https://api.example.test/v1/data"


def scripted(responses: list[httpx.Response | Exception], seen: list[httpx.Request]) -> httpx.MockTransport:
    """A transport answering the scripted responses in order (an exception is raised instead)."""
    queue = list(responses)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        item = queue.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    return httpx.MockTransport(handler)


def fetcher(responses: list[httpx.Response | Exception], **kwargs: object) -> tuple[HttpFetcher, list, list]:
    seen: list[httpx.Request] = []
    sleeps: list[float] = []
    return HttpFetcher(transport=scripted(responses, seen), sleep=sleeps.append, **kwargs), seen, sleeps


def test_ok_response_sends_user_agent_and_params() -> None:
    f, seen, sleeps = fetcher([httpx.Response(200, json=[1, 2])], timeout_s=12.5)
    response = f.get(URL, {"symbol": "BTCUSDT", "limit": 3})
    assert response.json() == [1, 2]
    assert seen[0].headers["User-Agent"] == DEFAULT_USER_AGENT
    assert seen[0].url.params["symbol"] == "BTCUSDT" and seen[0].url.params["limit"] == "3"
    assert f.client.timeout.read == 12.5
    assert sleeps == []


def test_429_honours_retry_after_seconds() -> None:
    body = (BINANCE / "error_429_too_many_requests.json").read_text()
    f, seen, sleeps = fetcher(
        [httpx.Response(429, text=body, headers={"Retry-After": "7"}), httpx.Response(200, json=[])]
    )
    assert f.get(URL).status_code == 200
    assert sleeps == [7.0]
    assert len(seen) == 2


def test_418_honours_retry_after_and_too_long_a_ban_fails_fast() -> None:
    body = (BINANCE / "error_418_ip_banned.json").read_text()
    f, _, sleeps = fetcher([httpx.Response(418, text=body, headers={"Retry-After": "3"}), httpx.Response(200, json=[])])
    f.get(URL)
    assert sleeps == [3.0]

    f, seen, sleeps = fetcher([httpx.Response(418, text=body, headers={"Retry-After": "86400"})], max_retry_after_s=300)
    with pytest.raises(SourceHTTPError, match="Retry-After 86400s exceeds") as info:
        f.get(URL)
    assert info.value.status == 418 and "banned until" in str(info.value)
    assert sleeps == [] and len(seen) == 1


def test_5xx_backs_off_exponentially_then_succeeds() -> None:
    html = (BINANCE / "error_502_bad_gateway.html").read_text()
    f, seen, sleeps = fetcher(
        [httpx.Response(502, text=html), httpx.Response(503, text=html), httpx.Response(200, json={"ok": 1})],
        backoff_s=1.0,
    )
    assert f.get(URL).json() == {"ok": 1}
    assert sleeps == [1.0, 2.0]
    assert len(seen) == 3


def test_5xx_ignores_retry_after_and_gives_up_after_budget() -> None:
    html = (BINANCE / "error_502_bad_gateway.html").read_text()
    f, seen, sleeps = fetcher([httpx.Response(502, text=html, headers={"Retry-After": "99"})] * 3, max_attempts=3)
    with pytest.raises(SourceHTTPError) as info:
        f.get(URL, {"q": "x"})
    message = str(info.value)
    assert info.value.status == 502
    assert "https://api.example.test/v1/data?q=x" in message and "502 Bad Gateway" in message
    assert "gave up after 3 attempts" in message
    assert len(seen) == 3 and sleeps == [1.0, 2.0]


def test_transport_errors_are_retried_then_reported() -> None:
    f, seen, sleeps = fetcher([httpx.ConnectError("refused"), httpx.Response(200, json=[])])
    assert f.get(URL).status_code == 200
    assert sleeps == [1.0]

    f, seen, _ = fetcher([httpx.ReadTimeout("slow")] * 2, max_attempts=2)
    with pytest.raises(SourceHTTPError, match="status None") as info:
        f.get(URL)
    assert isinstance(info.value.__cause__, httpx.ReadTimeout)
    assert len(seen) == 2


def test_other_4xx_raise_at_once_with_the_body() -> None:
    body = (BINANCE / "error_invalid_symbol.json").read_text()
    f, seen, sleeps = fetcher([httpx.Response(400, text=body)])
    with pytest.raises(SourceHTTPError, match="status 400") as info:
        f.get(URL)
    assert "Invalid symbol." in str(info.value) and URL in str(info.value)
    assert len(seen) == 1 and sleeps == []


def test_injected_client_is_used_and_not_closed() -> None:
    seen: list[httpx.Request] = []
    client = httpx.Client(transport=scripted([httpx.Response(200, text="hi")], seen), headers={"X-Test": "1"})
    f = HttpFetcher(client=client)
    assert f.get(URL).text == "hi"
    f.close()
    assert not client.is_closed
    assert seen[0].headers["X-Test"] == "1"


def test_parse_retry_after_forms() -> None:
    now = datetime(2024, 1, 1, 0, 0, 0, tzinfo=UTC)
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after("Mon, 01 Jan 2024 00:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("Sun, 31 Dec 2023 23:59:00 GMT", now=now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_window_filter_keeps_unparsed_timestamps() -> None:
    ts = [datetime(2024, 1, 1, h, tzinfo=UTC) for h in (0, 1, 2)] + [None]
    df = pl.DataFrame({"ts_event": ts, "v": [1, 2, 3, 4]}, schema={"ts_event": pl.Datetime("us", "UTC"), "v": pl.Int64})
    out = window_filter(df, datetime(2024, 1, 1, 1, tzinfo=UTC), datetime(2024, 1, 1, 2, tzinfo=UTC))
    assert out["v"].to_list() == [2, 4]


def test_dedupe_drops_only_exact_duplicate_rows() -> None:
    df = pl.DataFrame({"k": [1, 1, 1, 2, 2, 3], "v": ["a", "a", "b", "c", "c", None]})
    out = drop_exact_duplicates(df, ["k"])
    # the repeated (1, a) and (2, c) rows are page overlap; (1, b) shares the key but differs: kept for core
    assert out.rows() == [(1, "a"), (1, "b"), (2, "c"), (3, None)]


def test_dedupe_never_merges_null_keys() -> None:
    df = pl.DataFrame({"k": [1, None, 1, None, 2], "v": ["a", "x", "a", "x", "e"]})
    out = drop_exact_duplicates(df, ["k"])
    assert out.rows() == [(1, "a"), (None, "x"), (None, "x"), (2, "e")]  # malformed rows: each goes to core


def test_to_source_frame_orders_and_fills() -> None:
    out = to_source_frame(pl.DataFrame({"value": ["1.0"], "series_id": ["vix"]}), "macro_series")
    assert out.columns == ["series_id", "ts_event", "value", "source_series", "source"]
    assert out["source"].to_list() == [None]


def test_http_sources_are_valid_dagster_resources() -> None:
    seen: dict[str, object] = {}

    @dg.asset
    def probe(
        rest: ExchangeSource,
        vision: ExchangeSource,
        fred: MacroSource,
        reddit: SocialSource,
        rss: SocialSource,
    ) -> None:
        seen.update(rest=rest, vision=vision, fred=fred, reddit=reddit, rss=rss)

    resources = {
        "rest": BinanceRestExchange(weight_budget_per_minute=1500, timeout_s=5.0),
        "vision": BinanceVisionExchange(base_url="https://mirror.test"),
        "fred": FredMacro(series_ids=["vix"]),
        "reddit": RedditSocial(subreddits=["Bitcoin"]),
        "rss": RssNewsSocial(feed_urls=["https://news.test/rss"]),
    }
    assert dg.materialize([probe], resources=resources).success
    assert seen["rest"].weight_budget_per_minute == 1500 and seen["rest"].timeout_s == 5.0  # type: ignore[attr-defined]
    assert seen["vision"].base_url == "https://mirror.test"  # type: ignore[attr-defined]
    assert seen["fred"].series_ids == ["vix"]  # type: ignore[attr-defined]
    assert seen["reddit"].user_agent.startswith("python:quantmm")  # type: ignore[attr-defined]
    assert seen["rss"].feed_urls == ["https://news.test/rss"]  # type: ignore[attr-defined]
