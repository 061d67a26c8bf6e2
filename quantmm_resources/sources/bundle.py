"""The offline bundle: a directory of market, macro and social files read without internet.

Discovery is by file name (and, for CSV/JSONL, the header line) anywhere under the bundle directory, so
the real files of ``shared/data`` are accepted unchanged; docs/bundle.md documents every rule. Each file is
parsed once per process (cached on path, mtime and size); fetches slice pre-sorted per-symbol frames.

This module holds the Dagster resources; discovery lives in ``bundle_inventory``, loading, the per-group
index, the rows no window serves and coverage in ``bundle_index`` (re-exported here).
"""

from __future__ import annotations

from datetime import datetime

import polars as pl

from quantmm_resources.sources.base import ExchangeSource, MacroSource, SocialSource
from quantmm_resources.sources.bundle_index import (
    bundle_coverage,
    clear_bundle_cache,
    load_asset,
    set_aside_rows,
    unserved_rows,
    window,
)
from quantmm_resources.sources.bundle_inventory import (
    EXCHANGE_ASSETS,
    SOCIAL_ASSETS,
    BundleFile,
    Inventory,
    available_assets,
    classify,
    inventory,
    scan,
)

__all__ = [
    "EXCHANGE_ASSETS",
    "SOCIAL_ASSETS",
    "BundleExchange",
    "BundleFile",
    "BundleMacro",
    "BundleSocial",
    "Inventory",
    "available_assets",
    "bundle_coverage",
    "classify",
    "clear_bundle_cache",
    "inventory",
    "load_asset",
    "scan",
    "set_aside_rows",
    "unserved_rows",
    "window",
]


class BundleExchange(ExchangeSource):
    """Market bars and derivatives read from an offline bundle directory."""

    path: str

    def fetch_bars(self, symbol: str, market: str, start: datetime, end: datetime) -> pl.DataFrame:
        """5m bars of ``market`` (spot | perp) in [start, end)."""
        return window(self.path, "market_bars_5m", (symbol.upper(), market), start, end)

    def fetch_funding(self, symbol: str, start: datetime, end: datetime) -> pl.DataFrame:
        """Funding settlements in [start, end)."""
        return window(self.path, "funding_rates", (symbol.upper(),), start, end)

    def fetch_open_interest(self, symbol: str, start: datetime, end: datetime) -> pl.DataFrame:
        """Open interest snapshots in [start, end)."""
        return window(self.path, "open_interest", (symbol.upper(),), start, end)

    def fetch_derivatives_metrics(self, symbol: str, start: datetime, end: datetime) -> pl.DataFrame:
        """Ratios, basis and mark price in [start, end)."""
        return window(self.path, "derivatives_metrics", (symbol.upper(),), start, end)

    def available_kinds(self) -> set[str]:
        """Exchange raw assets the bundle has files for."""
        return available_assets(self.path) & set(EXCHANGE_ASSETS)


class BundleMacro(MacroSource):
    """Daily macro series read from an offline bundle directory."""

    path: str

    def fetch_macro(self, start: datetime, end: datetime) -> pl.DataFrame:
        """Observations of every series in [start, end)."""
        return window(self.path, "macro_series", (), start, end)

    def available_kinds(self) -> set[str]:
        """{"macro_series"} when the bundle has a macro file, else empty."""
        return available_assets(self.path) & {"macro_series"}


class BundleSocial(SocialSource):
    """Social posts and comments read from an offline bundle directory."""

    path: str

    def fetch_posts(self, start: datetime, end: datetime) -> pl.DataFrame:
        """Posts published in [start, end)."""
        return window(self.path, "social_posts_raw", (), start, end)

    def fetch_comments(self, start: datetime, end: datetime) -> pl.DataFrame:
        """Comments published in [start, end)."""
        return window(self.path, "social_comments_raw", (), start, end)

    def available_kinds(self) -> set[str]:
        """Social raw assets the bundle has files for."""
        return available_assets(self.path) & set(SOCIAL_ASSETS)
