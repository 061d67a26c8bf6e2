"""News feeds (RSS 2.0 and Atom) as social posts: fetched with httpx, parsed with ``feedparser``.

Mapping of a feed entry: ``id`` = entry id (RSS ``guid`` / Atom ``id``) or else its link; ``ts_event`` =
``published`` or else ``updated`` (UTC); ``community`` = the name configured in ``feed_names`` or else
the feed title; ``text`` = the summary / content with HTML tags removed, or the title for headline-only
items; ``engagement_score``, ``num_comments`` and ``engagement_observed_at`` are null (feeds carry no
counts). Feeds have no comments: the comment frame is always empty. A feed that cannot be fetched raises
:class:`SourceHTTPError`.
"""

from __future__ import annotations

import calendar
import html
import logging
import re
from datetime import UTC, datetime
from typing import Any

import feedparser
import polars as pl
from pydantic import Field

from .base import SocialSource, empty_source_frame, source_schema
from .http_common import HttpSourceResource, drop_exact_duplicates, window_filter

logger = logging.getLogger(__name__)

PLATFORM = "rss"
SOURCE = "rss"
POST_SCHEMA = source_schema("social_posts_raw")
_TAG = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")


def _plain(text: str | None) -> str | None:
    """HTML fragment to plain text (tags removed, entities unescaped, whitespace collapsed)."""
    if not text:
        return None
    plain = _SPACE.sub(" ", html.unescape(_TAG.sub(" ", text))).strip()
    return plain or None


def _entry_time(entry: Any) -> datetime | None:
    """``published`` or else ``updated`` of a feedparser entry, as UTC. A date without a time of day is read as
    the day's last instant: the item may have appeared any time that day (never earlier than it could have)."""
    for key in ("published", "updated"):
        parsed = entry.get(f"{key}_parsed")
        if parsed:
            at = datetime.fromtimestamp(calendar.timegm(parsed), tz=UTC)
            if ":" not in str(entry.get(key, "")):
                at = at.replace(hour=23, minute=59, second=59)
            return at
    return None


def parse_feed(content: bytes, community: str | None, content_type: str | None = None) -> pl.DataFrame:
    """Entries of an RSS 2.0 / Atom document as a ``social_posts_raw`` source frame."""
    headers = {"content-type": content_type} if content_type else None
    parsed = feedparser.parse(content, response_headers=headers)
    if parsed.bozo and not parsed.entries:
        raise ValueError(f"not a readable feed: {parsed.get('bozo_exception')!r}")
    feed_title = parsed.feed.get("title")
    rows = []
    for entry in parsed.entries:
        contents = entry.get("content") or []
        body = entry.get("summary") or (contents[0].get("value") if contents else None)
        title = _plain(entry.get("title"))
        rows.append(
            (
                PLATFORM,
                entry.get("id") or entry.get("link"),
                _entry_time(entry),
                entry.get("author"),
                community or feed_title,
                title,
                _plain(body) or title,
                entry.get("link"),
                None,
                None,
                None,
                SOURCE,
            )
        )
    return pl.DataFrame(rows, schema=POST_SCHEMA, orient="row") if rows else pl.DataFrame(schema=POST_SCHEMA)


class RssNewsSocial(SocialSource, HttpSourceResource):
    """Posts from a list of news feeds."""

    feed_urls: list[str] = Field(
        default=["https://www.coindesk.com/arc/outboundfeeds/rss/", "https://cointelegraph.com/rss"],
        description="Feeds to read (RSS 2.0 or Atom).",
    )
    feed_names: dict[str, str] = Field(
        default={
            "https://www.coindesk.com/arc/outboundfeeds/rss/": "coindesk",
            "https://cointelegraph.com/rss": "cointelegraph",
        },
        description="Optional community name per feed URL (default: the feed's own title).",
    )

    def fetch_posts(self, start: datetime, end: datetime) -> pl.DataFrame:
        frames = []
        for url in self.feed_urls:
            response = self.http_get(url)
            frame = parse_feed(response.content, self.feed_names.get(url), response.headers.get("content-type"))
            logger.info("feed %s: %d entries", url, len(frame))
            frames.append(frame)
        df = pl.concat(frames, how="vertical") if frames else pl.DataFrame(schema=POST_SCHEMA)
        return drop_exact_duplicates(window_filter(df, start, end), ["platform", "id"])

    def fetch_comments(self, start: datetime, end: datetime) -> pl.DataFrame:
        return empty_source_frame("social_comments_raw")
