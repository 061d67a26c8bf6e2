"""The one place that picks resources: each source kind, and the combined live social source."""

import json
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from quantmm_resources.environment import build_resources, dagster_instance_yaml
from quantmm_resources.settings import get_settings
from quantmm_resources.sources.combined import RedditAndNewsSocial
from quantmm_resources.sources.reddit import RedditSocial
from quantmm_resources.sources.rss import RssNewsSocial

FIXTURES = Path(__file__).parents[1] / "fixtures" / "http"


@pytest.mark.parametrize(
    "source, classes",
    [
        ("synthetic", ("SyntheticExchange", "SyntheticMacro", "SyntheticSocial")),
        ("bundle", ("BundleExchange", "BundleMacro", "BundleSocial")),
        ("live", ("BinanceRestExchange", "FredMacro", "RedditAndNewsSocial")),
    ],
)
def test_each_source_kind_picks_its_resources(quantmm_home, tmp_path, source, classes):
    res = build_resources(get_settings(), source=source, bundle_dir=tmp_path)
    assert tuple(type(res[k]).__name__ for k in ("exchange", "macro", "social")) == classes
    assert type(res["lake_io_manager"]).__name__ == "PolarsParquetIOManager"
    assert res["opstore"].url.startswith("sqlite:///")


def test_bundle_without_directory_and_unknown_source_are_clear_errors(quantmm_home):
    with pytest.raises(ValueError, match="bundle directory"):
        build_resources(get_settings(), source="bundle")
    with pytest.raises(ValueError, match="unknown source"):
        build_resources(get_settings(), source="kaggle")


def test_instance_yaml_is_sqlite_by_default_and_postgres_when_configured(quantmm_home, monkeypatch):
    assert "PooledSqliteEventLogStorage" in dagster_instance_yaml(get_settings())
    monkeypatch.setenv("DAGSTER_PG_URL", "postgresql+psycopg2://u@h/db")
    get_settings.cache_clear()
    assert "DAGSTER_PG_URL" in dagster_instance_yaml(get_settings())


def handler(request: httpx.Request) -> httpx.Response:
    if request.url.host == "news.test":
        body = (FIXTURES / "rss" / "crypto_news_rss2.xml").read_bytes()
        return httpx.Response(200, content=body, headers={"Content-Type": "application/rss+xml"})
    if request.url.path.endswith("/new.json") and request.url.params.get("after") is None:
        return httpx.Response(200, json=json.loads((FIXTURES / "reddit" / "new_page1.json").read_text()))
    if "/comments/" in request.url.path:
        return httpx.Response(200, json=json.loads((FIXTURES / "reddit" / "comments_no_replies.json").read_text()))
    return httpx.Response(200, json={"kind": "Listing", "data": {"after": None, "children": []}})


def test_reddit_and_news_side_by_side():
    transport = httpx.MockTransport(handler)
    reddit = RedditSocial(subreddits=["CryptoCurrency"], base_url="https://reddit.test")
    news = RssNewsSocial(feed_urls=["https://news.test/rss"], feed_names={})
    combined = RedditAndNewsSocial(reddit=reddit, news=news)
    combined.reddit.with_http(transport=transport, sleep=lambda s: None)
    combined.news.with_http(transport=transport, sleep=lambda s: None)
    start, end = datetime(2023, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)
    posts = combined.fetch_posts(start, end)
    assert set(posts["platform"]) == {"reddit", "rss"}
    assert len(posts) == len(combined.reddit.fetch_posts(start, end)) + len(combined.news.fetch_posts(start, end))
