"""RedditSocial against recorded listing / comment payloads (httpx.MockTransport)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from quantmm_assets.core.schemas import RAW_SCHEMAS, UTC_TS
from quantmm_resources.sources.base import SocialSource
from quantmm_resources.sources.http_common import SourceHTTPError
from quantmm_resources.sources.reddit import RedditSocial

FIXTURES = Path(__file__).parents[1] / "fixtures" / "http" / "reddit"
BASE = "https://reddit.test"
START, END = datetime(2024, 1, 1, 12, tzinfo=UTC), datetime(2024, 1, 2, tzinfo=UTC)
OBSERVED = datetime(2024, 1, 3, 9, 30, tzinfo=UTC)  # the injected clock: when each response was received


class FakeReddit:
    """``new.json`` pages by ``after``; comments by post id; optional scripted first responses."""

    def __init__(self, scripted: list[httpx.Response] | None = None, headers: dict[str, str] | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self.scripted = scripted or []
        self.headers = headers or {}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.scripted:
            return self.scripted.pop(0)
        path, after = request.url.path, request.url.params.get("after")
        if path == "/r/CryptoCurrency/new.json":
            name = {None: "new_page1.json", "t3_18w1p3c": "new_page2.json"}.get(after)
            if name is None:
                return httpx.Response(200, json={"kind": "Listing", "data": {"after": None, "children": []}})
        elif path == "/r/CryptoCurrency/comments/18w1p1a.json":
            name = "comments_18w1p1a.json"
        elif path.startswith("/r/CryptoCurrency/comments/"):
            name = "comments_no_replies.json"
        else:
            return httpx.Response(404, json={"message": "Not Found", "error": 404})
        return httpx.Response(200, json=json.loads((FIXTURES / name).read_text()), headers=self.headers)


class Clock:
    """A clock that advances one minute per reading, from OBSERVED."""

    def __init__(self) -> None:
        self.readings = 0

    def __call__(self) -> datetime:
        self.readings += 1
        return OBSERVED + timedelta(minutes=self.readings - 1)


def make(fake: FakeReddit, clock: Any = None, **config: Any) -> tuple[RedditSocial, list[float]]:
    sleeps: list[float] = []
    source = RedditSocial(subreddits=["CryptoCurrency"], base_url=BASE, **config)
    clock = clock or (lambda: OBSERVED)
    return source.with_http(transport=httpx.MockTransport(fake), sleep=sleeps.append, clock=clock), sleeps


def test_is_a_social_source() -> None:
    assert isinstance(RedditSocial(), SocialSource)


def test_posts_paginate_with_after_until_older_than_start() -> None:
    fake = FakeReddit()
    source, _ = make(fake)
    posts = source.fetch_posts(START, END)
    assert [r.url.params.get("after") for r in fake.requests] == [None, "t3_18w1p3c"]
    assert {r.url.params["limit"] for r in fake.requests} == {"100"}
    assert {r.url.params["raw_json"] for r in fake.requests} == {"1"}
    assert posts.columns == RAW_SCHEMAS["social_posts_raw"].source_columns
    assert posts["id"].to_list() == [
        "t3_18w1p1a",
        "t3_18w1p2b",
        "t3_18w1p3c",
    ]  # 11:00 and 10:00 are before START
    assert posts["id"].is_unique().all()


def test_post_fields_mapping() -> None:
    source, _ = make(FakeReddit())
    posts = {r["id"]: r for r in source.fetch_posts(START, END).iter_rows(named=True)}
    first = posts["t3_18w1p1a"]
    assert first["ts_event"] == datetime(2024, 1, 1, 20, tzinfo=UTC)
    assert (first["platform"], first["source"], first["community"]) == ("reddit", "reddit", "CryptoCurrency")
    assert first["title"] == "BTC ETF decision next week"
    assert first["text"] == "Approval odds look high, BTCUSDT funding is rising."
    assert (first["engagement_score"], first["num_comments"]) == (152, 3)
    assert first["url"] == f"{BASE}/r/CryptoCurrency/comments/18w1p1a/btc_etf_decision_next_week/"
    assert posts["t3_18w1p2b"]["author"] == "[deleted]" and posts["t3_18w1p2b"]["text"] == "[deleted]"
    assert posts["t3_18w1p3c"]["text"] == ""  # a link post has no body: kept empty, not invented
    assert {p["engagement_observed_at"] for p in posts.values()} == {OBSERVED}  # counts as of the listing


def test_engagement_observed_at_is_when_each_response_was_received() -> None:
    clock = Clock()
    source, _ = make(FakeReddit(), clock=clock)
    posts = source.fetch_posts(START, END)
    assert posts["engagement_observed_at"].to_list() == [OBSERVED] * 3  # all from the first listing page
    assert clock.readings == 2  # one reading per listing page
    comments, _ = make(FakeReddit(), clock=Clock(), comment_lookback_hours=1.5)
    frame = comments.fetch_comments(START, END)
    # listing page 1 (reading 1), page 2 (reading 2), then the comments page of 18w1p1a (reading 3)
    assert set(frame["engagement_observed_at"]) == {OBSERVED + timedelta(minutes=2)}
    assert frame.schema["engagement_observed_at"] == posts.schema["engagement_observed_at"] == UTC_TS


def test_comment_tree_is_flattened_with_parent_and_post_ids() -> None:
    fake = FakeReddit()
    source, _ = make(fake, comment_lookback_hours=1.5)
    comments = source.fetch_comments(START, END)
    assert comments.columns == RAW_SCHEMAS["social_comments_raw"].source_columns
    assert comments["id"].to_list() == ["t1_kfc1", "t1_kfc2", "t1_kfc3", "t1_kfc4"]  # kfc5 is after END
    assert comments["parent_id"].to_list() == ["t3_18w1p1a", "t1_kfc1", "t1_kfc2", "t3_18w1p1a"]
    assert set(comments["post_id"]) == {"t3_18w1p1a"}
    deleted = comments.row(3, named=True)
    assert (deleted["author"], deleted["text"], deleted["engagement_score"]) == ("[deleted]", "[deleted]", 1)
    assert comments["ts_event"][0] == datetime(2024, 1, 1, 20, 5, tzinfo=UTC)
    assert source.skipped_more_stubs == 2
    comment_paths = [r.url.path for r in fake.requests if "/comments/" in r.url.path]
    # posts from 10:30 (START - 1.5 h) on: p1..p4; p5 (10:00) is older
    assert comment_paths == [
        f"/r/CryptoCurrency/comments/{i}.json" for i in ("18w1p1a", "18w1p2b", "18w1p3c", "18w1p4d")
    ]


def test_max_pages_bounds_the_listing() -> None:
    fake = FakeReddit()
    source, _ = make(fake, max_pages=1)
    assert source.fetch_posts(START, END).height == 3
    assert len(fake.requests) == 1


def test_429_retry_after_is_honoured() -> None:
    fake = FakeReddit(scripted=[httpx.Response(429, text="Too Many Requests", headers={"Retry-After": "4"})])
    source, sleeps = make(fake)
    assert source.fetch_posts(START, END).height == 3
    assert sleeps == [4.0]


def test_exhausted_rate_limit_headers_pause() -> None:
    fake = FakeReddit(headers={"x-ratelimit-remaining": "0.0", "x-ratelimit-reset": "42", "x-ratelimit-used": "100"})
    source, sleeps = make(fake)
    source.fetch_posts(START, END)
    assert sleeps == [42.0, 42.0]  # after each of the two listing pages


def test_empty_window() -> None:
    source, _ = make(FakeReddit())
    later = datetime(2024, 2, 1, tzinfo=UTC)
    assert source.fetch_posts(later, later).height == 0


def test_unknown_subreddit_fails_clearly() -> None:
    source = RedditSocial(subreddits=["nope"], base_url=BASE).with_http(transport=httpx.MockTransport(FakeReddit()))
    with pytest.raises(SourceHTTPError, match="status 404"):
        source.fetch_posts(START, END)
