"""Production social source: Reddit posts and comments plus RSS/Atom news posts, side by side."""

from __future__ import annotations

from datetime import datetime

import polars as pl

from .base import SocialSource
from .reddit import RedditSocial
from .rss import RssNewsSocial


class RedditAndNewsSocial(SocialSource):
    """Both live social clients behind one resource (``platform`` tells the rows apart)."""

    reddit: RedditSocial
    news: RssNewsSocial

    def fetch_posts(self, start: datetime, end: datetime) -> pl.DataFrame:
        """Reddit posts and news items with ``start <= ts_event < end``."""
        frames = [self.reddit.fetch_posts(start, end), self.news.fetch_posts(start, end)]
        return pl.concat([f for f in frames if len(f.columns)], how="diagonal_relaxed")

    def fetch_comments(self, start: datetime, end: datetime) -> pl.DataFrame:
        """Reddit comments (news feeds have none)."""
        return self.reddit.fetch_comments(start, end)
