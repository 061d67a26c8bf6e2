"""RssNewsSocial against recorded RSS 2.0 and Atom documents (httpx.MockTransport)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from quantmm_assets.core.schemas import RAW_SCHEMAS
from quantmm_resources.sources.http_common import SourceHTTPError
from quantmm_resources.sources.rss import RssNewsSocial, parse_feed

FIXTURES = Path(__file__).parents[1] / "fixtures" / "http" / "rss"
RSS_URL, ATOM_URL = "https://news.test/rss", "https://research.test/atom.xml"
START, END = datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 2, tzinfo=UTC)


def handler(request: httpx.Request) -> httpx.Response:
    files = {
        RSS_URL: ("crypto_news_rss2.xml", "application/rss+xml"),
        ATOM_URL: ("exchange_blog_atom.xml", "application/atom+xml; charset=utf-8"),
    }
    if str(request.url) not in files:
        return httpx.Response(404, text="not found")
    name, content_type = files[str(request.url)]
    return httpx.Response(200, content=(FIXTURES / name).read_bytes(), headers={"Content-Type": content_type})


def make(*urls: str, names: dict[str, str] | None = None) -> RssNewsSocial:
    source = RssNewsSocial(feed_urls=list(urls), feed_names=names or {})
    return source.with_http(transport=httpx.MockTransport(handler), sleep=lambda s: None)


def test_rss2_items() -> None:
    posts = make(RSS_URL, names={RSS_URL: "daily-wire"}).fetch_posts(START, END)
    assert posts.columns == RAW_SCHEMAS["social_posts_raw"].source_columns
    rows = {r["id"]: r for r in posts.iter_rows(named=True)}
    assert set(rows) == {
        "cdw-2024-0001",
        "https://news.example.com/markets/eth-funding",
    }  # 2023 item left out
    first = rows["cdw-2024-0001"]
    assert first["ts_event"] == datetime(2024, 1, 1, 20, 30, tzinfo=UTC)
    assert first["text"] == "BTC rose 2% & ETH followed."  # HTML removed, entities decoded
    assert (first["author"], first["community"], first["platform"], first["source"]) == (
        "Jane Writer",
        "daily-wire",
        "rss",
        "rss",
    )
    assert first["url"] == "https://news.example.com/markets/bitcoin-42k"
    assert first["engagement_score"] is None and first["num_comments"] is None
    assert posts["engagement_observed_at"].null_count() == posts.height  # feeds carry no counts
    second = rows["https://news.example.com/markets/eth-funding"]
    assert second["ts_event"] == datetime(2024, 1, 1, 21, 0, tzinfo=UTC)  # -0500 converted to UTC
    assert second["text"] == second["title"] == "Ether funding rates turn positive"


def test_atom_entries_use_feed_title_and_updated_fallback() -> None:
    posts = make(ATOM_URL).fetch_posts(START, END)
    rows = {r["id"]: r for r in posts.iter_rows(named=True)}
    perp = rows["urn:uuid:1225c695-cfb8-4ebb-aaaa-80da344efa6a"]
    assert perp["ts_event"] == datetime(2024, 1, 1, 13, 15, tzinfo=UTC)  # published, not updated
    assert perp["community"] == "Exchange Research Blog"
    assert perp["text"] == "Basis on SOLUSDT widened." and perp["author"] == "Research Team"
    oi = rows["tag:research.example.org,2024:oi-monitor"]
    assert oi["ts_event"] == datetime(2024, 1, 1, 17, 45, tzinfo=UTC)
    assert oi["text"] == "Open interest on BTCUSDT hit a record."


def test_several_feeds_and_window() -> None:
    source = make(RSS_URL, ATOM_URL)
    assert source.fetch_posts(START, END).height == 4
    assert source.fetch_posts(datetime(2023, 12, 31, tzinfo=UTC), START)["title"].to_list() == ["Year in review: 2023"]


def test_comments_are_empty() -> None:
    comments = make(RSS_URL).fetch_comments(START, END)
    assert comments.height == 0 and comments.columns == RAW_SCHEMAS["social_comments_raw"].source_columns


def test_entry_without_date_is_kept_with_null_time() -> None:
    doc = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>
      <item><title>No date</title><link>https://x.test/a</link><description>body</description></item>
    </channel></rss>"""
    posts = parse_feed(doc, None)
    assert posts.height == 1 and posts["ts_event"][0] is None and posts["community"][0] == "T"


def test_unreadable_feed_and_http_errors() -> None:
    with pytest.raises(ValueError, match="not a readable feed"):
        parse_feed(b"<html><body>Service unavailable", "x")
    with pytest.raises(SourceHTTPError, match="404"):
        make("https://news.test/missing").fetch_posts(START, END)


def test_a_date_without_time_is_read_as_the_end_of_that_day() -> None:
    feed = b"""<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>
    <entry><id>urn:x:1</id><title>BTC news</title><published>2024-01-01</published><summary>s</summary></entry>
    </feed>"""
    posts = parse_feed(feed, "t", "application/atom+xml")
    assert posts["ts_event"].to_list() == [datetime(2024, 1, 1, 23, 59, 59, tzinfo=UTC)]
