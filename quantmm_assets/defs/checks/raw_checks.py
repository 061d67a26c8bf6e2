"""Asset checks of the raw assets: specs declared on each asset, results computed in its run from core.quality.

They are evaluated on the run's rows and the rows it quarantined (no second read of the lake; partitions
the run kept as they were are not re-judged), one result per check per run: for a range run the metadata
names the worst partitions.
"""

from __future__ import annotations

import dagster as dg
import polars as pl

from quantmm_assets.core import quality
from quantmm_assets.core.quality import CheckOutcome, CheckWindow

RAW_CHECKS: dict[str, tuple[str, ...]] = {
    "market_bars_5m": ("schema", "key_unique", "ohlc_sanity", "coverage", "freshness"),
    "funding_rates": ("schema", "key_unique", "sanity", "coverage", "freshness"),
    "open_interest": ("schema", "key_unique", "sanity", "coverage", "freshness"),
    "derivatives_metrics": ("schema", "key_unique", "sanity", "coverage", "freshness"),
    "macro_series": ("schema", "key_unique", "sanity", "coverage", "freshness"),
    "social_posts_raw": ("schema", "key_unique", "sanity", "coverage", "freshness"),
    "social_comments_raw": ("schema", "key_unique", "sanity", "coverage", "freshness"),
}
DESCRIPTIONS = {
    "schema": "Canonical columns and dtypes, no nulls in required columns, unparseable rows within tolerance",
    "key_unique": "Key is unique in the lake; duplicates the source sent stay within tolerance",
    "ohlc_sanity": "low <= open, close <= high; volume >= 0; positive prices",
    "sanity": "Values in range (finite rates, non-negative OI, positive ratios, text size)",
    "coverage": "Every complete, listed partition is filled (5m bars: missing share per day; macro: each series on "
    "its published business days); nothing before a listing date",
    "freshness": "Per-partition deadline: each partition's newest row within the asset's lag of min(now, its end)",
}
WARN_ONLY = {"coverage", "freshness"}


def raw_check_specs(asset: str) -> list[dg.AssetCheckSpec]:
    return [dg.AssetCheckSpec(name, asset=asset, description=DESCRIPTIONS[name]) for name in RAW_CHECKS[asset]]


def evaluate(asset: str, name: str, clean: pl.DataFrame, rejects: pl.DataFrame, window: CheckWindow) -> CheckOutcome:
    """Run one named check of ``asset``."""
    if name == "schema":
        return quality.check_schema(asset, clean, rejects)
    if name == "key_unique":
        return quality.check_key_unique(asset, clean, rejects)
    if name in ("ohlc_sanity", "sanity"):
        return quality.check_sanity(asset, clean, rejects)
    if name == "coverage":
        if asset == "market_bars_5m":
            return quality.check_bar_coverage(clean, window)
        return quality.check_daily_coverage(asset, clean, window)
    if name == "freshness":
        return quality.check_freshness(asset, clean, window)
    raise KeyError(f"unknown check {name!r}")


def raw_check_results(asset: str, clean: pl.DataFrame, rejects: pl.DataFrame, window: CheckWindow):
    """AssetCheckResults of every check declared on ``asset``."""
    for name in RAW_CHECKS[asset]:
        out = evaluate(asset, name, clean, rejects, window)
        yield dg.AssetCheckResult(
            asset_key=asset,
            check_name=name,
            passed=out.passed,
            severity=dg.AssetCheckSeverity.WARN if name in WARN_ONLY else dg.AssetCheckSeverity.ERROR,
            description=out.description,
            metadata={
                k: v if isinstance(v, (int, float, str, bool)) or v is None else dg.MetadataValue.json(v)
                for k, v in out.metadata.items()
            },
        )
