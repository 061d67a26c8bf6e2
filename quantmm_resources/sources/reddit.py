"""Reddit client: subreddit listings (posts) and comment trees, via Reddit's public JSON endpoints.

- Posts: ``GET {base}/r/{sub}/new.json?limit=100&after=...&raw_json=1`` (newest first), paginated with
  ``after`` until a page reaches posts older than the window start (or ``max_pages``).
- Comments: ``GET {base}/r/{sub}/comments/{id36}.json?raw_json=1`` returns ``[post listing, comment
  listing]``; the tree is walked depth-first through ``replies``. ``kind == "more"`` stubs (comments not
  inlined) are skipped, counted, logged and exposed as :attr:`RedditSocial.skipped_more_stubs`.

Id convention: Reddit *fullnames* everywhere (``t3_...`` posts, ``t1_...`` comments), so ``post_id``
(the comment's ``link_id``) and ``parent_id`` join on ``id`` without rewriting. Field mapping: ``score``
-> ``engagement_score``, ``subreddit`` -> ``community``, ``selftext`` / ``body`` -> ``text`` (as sent:
empty for link posts, ``[removed]`` stays), ``author`` as sent (``[deleted]`` stays), ``url`` = the
permalink on ``base_url``. ``engagement_observed_at`` = when the response carrying the counts (the listing
page for posts, the comments page for comments) was received, by the injectable clock: scores change
after publication and are known only from then on.

Rate limiting: when ``x-ratelimit-remaining`` drops below 1 the client pauses ``x-ratelimit-reset``
seconds; 429 is retried after ``Retry-After`` by :mod:`http_common`.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
from pydantic import Field, PrivateAttr

from .base import SocialSource, source_schema
from .http_common import HttpSourceResource, drop_exact_duplicates, window_filter

logger = logging.getLogger(__name__)

PLATFORM = "reddit"
SOURCE = "reddit"
POST_SCHEMA = source_schema("social_posts_raw")
COMMENT_SCHEMA = source_schema("social_comments_raw")


def _utc(epoch_s: Any) -> datetime | None:
    """Reddit ``created_utc`` (epoch seconds, float) as a UTC datetime; None if absent or not a number."""
    if isinstance(epoch_s, bool) or not isinstance(epoch_s, int | float):
        return None
    return datetime.fromtimestamp(epoch_s, tz=UTC)


def _int(value: Any) -> int | None:
    """An integral JSON number, else None (never a guessed count)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    return int(value) if isinstance(value, float) and value.is_integer() else None


def _fullname(data: dict[str, Any], prefix: str) -> str | None:
    name = data.get("name")
    if isinstance(name, str) and name:
        return name
    return f"{prefix}_{data['id']}" if data.get("id") else None


def _children(listing: Any) -> list[dict[str, Any]]:
    """Children of a ``Listing`` object ([] for anything else, e.g. the empty-string ``replies``)."""
    if isinstance(listing, dict) and isinstance(listing.get("data"), dict):
        children = listing["data"].get("children")
        return [c for c in children if isinstance(c, dict)] if isinstance(children, list) else []
    return []


class RedditSocial(SocialSource, HttpSourceResource):
    """Posts and comments of a list of subreddits."""

    subreddits: list[str] = Field(
        default=["CryptoCurrency", "Bitcoin", "ethereum", "CryptoMarkets"], description="Subreddits to read."
    )
    base_url: str = Field(default="https://www.reddit.com", description="Reddit base URL.")
    user_agent: str = Field(
        default="python:quantmm:0.1 (crypto research data client)",
        description="Descriptive User-Agent, as Reddit's API rules require.",
    )
    page_limit: int = Field(default=100, description="Posts per listing page (max 100).")
    max_pages: int = Field(default=10, description="Listing pages per subreddit and call (100 posts each).")
    comment_lookback_hours: float = Field(
        default=48.0, description="Read comments of posts published up to this long before the window."
    )
    max_posts_for_comments: int = Field(default=100, description="Comment trees fetched per subreddit and call.")
    comment_limit: int = Field(default=500, description="``limit`` of a comments request.")

    _more_stubs: int = PrivateAttr(default=0)

    @property
    def skipped_more_stubs(self) -> int:
        """``more`` stubs met so far (comments Reddit did not inline; not fetched)."""
        return self._more_stubs

    def fetch_posts(self, start: datetime, end: datetime) -> pl.DataFrame:
        rows = [self._post_row(d, seen) for sub in self.subreddits for d, seen in self._listing(sub, start)]
        df = pl.DataFrame(rows, schema=POST_SCHEMA, orient="row") if rows else pl.DataFrame(schema=POST_SCHEMA)
        return drop_exact_duplicates(window_filter(df, start, end), ["platform", "id"])

    def fetch_comments(self, start: datetime, end: datetime) -> pl.DataFrame:
        oldest = start - timedelta(hours=self.comment_lookback_hours)
        rows: list[dict[str, Any]] = []
        for sub in self.subreddits:
            listed = self._listing(sub, oldest)
            posts = [p for p, _ in listed if (t := _utc(p.get("created_utc"))) and oldest <= t < end]
            for post in posts[: self.max_posts_for_comments]:
                rows.extend(self._comment_rows(sub, post))
        df = pl.DataFrame(rows, schema=COMMENT_SCHEMA) if rows else pl.DataFrame(schema=COMMENT_SCHEMA)
        return drop_exact_duplicates(window_filter(df, start, end), ["platform", "id"])

    # ---- requests ------------------------------------------------------------------------------------

    def _get_json(self, path: str, params: dict[str, Any]) -> Any:
        response = self.http_get(f"{self.base_url}{path}", {**params, "raw_json": 1})
        remaining, reset = (
            response.headers.get("x-ratelimit-remaining"),
            response.headers.get("x-ratelimit-reset"),
        )
        try:
            if remaining is not None and reset is not None and float(remaining) < 1:
                logger.warning("Reddit rate limit used up: pausing %ss", reset)
                self.pause(float(reset))
        except ValueError:
            pass
        return response.json()

    def _listing(self, sub: str, oldest: datetime) -> list[tuple[dict[str, Any], datetime]]:
        """(``data``, time its page was received) of the posts of ``/r/{sub}/new`` back to ``oldest``."""
        posts: list[tuple[dict[str, Any], datetime]] = []
        after: str | None = None
        for page_number in range(self.max_pages):
            params: dict[str, Any] = {"limit": self.page_limit} | ({"after": after} if after else {})
            listing = self._get_json(f"/r/{sub}/new.json", params)
            seen = self.now()
            page = [c["data"] for c in _children(listing) if c.get("kind") == "t3" and isinstance(c.get("data"), dict)]
            posts.extend((p, seen) for p in page)
            after = listing.get("data", {}).get("after") if isinstance(listing, dict) else None
            times = [t for p in page if (t := _utc(p.get("created_utc"))) is not None]
            if not after or not page or (times and min(times) < oldest):
                return posts
            if page_number == self.max_pages - 1:
                logger.warning("r/%s: stopped after %d pages before reaching %s", sub, self.max_pages, oldest)
        return posts

    def _comment_rows(self, sub: str, post: dict[str, Any]) -> list[dict[str, Any]]:
        """Flattened comment tree of one post."""
        post_id36 = post.get("id") or str(post.get("name", "")).removeprefix("t3_")
        payload = self._get_json(f"/r/{sub}/comments/{post_id36}.json", {"limit": self.comment_limit})
        seen = self.now()
        listing = payload[1] if isinstance(payload, list) and len(payload) > 1 else None
        rows: list[dict[str, Any]] = []
        stubs = self._walk(_children(listing), rows)
        for row in rows:
            row["engagement_observed_at"] = seen
        if stubs:
            logger.info("r/%s post %s: skipped %d 'more' stubs", sub, post_id36, stubs)
            self._more_stubs += stubs
        return rows

    def _walk(self, children: list[dict[str, Any]], rows: list[dict[str, Any]]) -> int:
        """Append comment rows depth-first (parents before replies); return the ``more`` stubs met."""
        stubs = 0
        for child in children:
            if child.get("kind") == "more":
                stubs += 1
                continue
            data = child.get("data")
            if child.get("kind") != "t1" or not isinstance(data, dict):
                continue
            rows.append(self._comment_row(data))
            stubs += self._walk(_children(data.get("replies")), rows)
        return stubs

    # ---- rows ----------------------------------------------------------------------------------------

    def _post_row(self, d: dict[str, Any], seen: datetime) -> tuple[Any, ...]:
        permalink = d.get("permalink")
        return (
            PLATFORM,
            _fullname(d, "t3"),
            _utc(d.get("created_utc")),
            d.get("author"),
            d.get("subreddit"),
            d.get("title"),
            d.get("selftext"),
            f"{self.base_url}{permalink}" if permalink else d.get("url"),
            _int(d.get("score")),
            _int(d.get("num_comments")),
            seen,
            SOURCE,
        )

    @staticmethod
    def _comment_row(d: dict[str, Any]) -> dict[str, Any]:
        return {
            "platform": PLATFORM,
            "id": _fullname(d, "t1"),
            "post_id": d.get("link_id"),
            "parent_id": d.get("parent_id"),
            "ts_event": _utc(d.get("created_utc")),
            "author": d.get("author"),
            "community": d.get("subreddit"),
            "text": d.get("body"),
            "engagement_score": _int(d.get("score")),
            "engagement_observed_at": None,  # set per comments page in _comment_rows
            "source": SOURCE,
        }
