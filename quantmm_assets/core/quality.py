"""Data-quality checks of raw assets, pure functions: f(clean, rejects, params) -> CheckOutcome.

A check fails when the written rows break its rule, or when the rows quarantined for its reasons exceed
a tolerated share of what the source delivered: bad input is kept out of the lake *and* reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import polars as pl

from quantmm_assets.core.availability import MACRO_SERIES_SPECS, macro_available
from quantmm_assets.core.schemas import RAW_SCHEMAS, RawSchema
from quantmm_assets.core.universe import Universe

# Reject reasons (the text before ":") grouped by the check that reports them.
REASON_FAMILIES: dict[str, tuple[str, ...]] = {
    "schema": (
        "unparseable",
        "missing",
        "unknown market",
        "unknown period",
        "unknown macro series",
        "non-finite",
        "ts_event not on the 5m grid",
        "outside requested window",
        "symbol not requested",
    ),
    "key_unique": ("duplicate key",),
    "sanity": ("ohlc", "funding", "open interest", "metrics", "empty text", "oversized text"),
}
DEFAULT_TOLERANCE = 0.001
# Macro files carry empty holiday placeholders (FRED marks holidays blank): quarantined, not a failure.
TOLERANCE_OVERRIDES = {("macro_series", "schema"): 0.25}
BARS_PER_DAY = 288
MAX_FRESHNESS_LAG = {
    "market_bars_5m": timedelta(minutes=15),
    "funding_rates": timedelta(hours=8, minutes=30),
    "open_interest": timedelta(days=1, hours=1),
    "derivatives_metrics": timedelta(hours=1, minutes=30),
    "macro_series": timedelta(days=4),
    "social_posts_raw": timedelta(hours=6),
    "social_comments_raw": timedelta(hours=6),
}


@dataclass(frozen=True)
class CheckOutcome:
    passed: bool
    description: str
    metadata: dict = field(default_factory=dict)


@dataclass(frozen=True)
class CheckWindow:
    """The partitions a run covered: dates, symbols (None for date-only assets) and the evaluation instant."""

    dates: tuple[date, ...]
    symbols: tuple[str, ...] | None
    now: datetime
    universe: Universe | None = None
    expected_markets: tuple[str, ...] = ("perp", "spot")


def _family_rejects(rejects: pl.DataFrame, family: str) -> int:
    if rejects.is_empty():
        return 0
    reason = pl.col("reason")
    hit = pl.any_horizontal([reason.str.starts_with(prefix) for prefix in REASON_FAMILIES[family]])
    return int(rejects.select(hit.sum()).item())


def _reject_outcome(
    asset: str, family: str, violations: int, clean: pl.DataFrame, rejects: pl.DataFrame, what: str
) -> CheckOutcome:
    rejected = _family_rejects(rejects, family)
    delivered = len(clean) + len(rejects)
    share = rejected / delivered if delivered else 0.0
    tolerance = TOLERANCE_OVERRIDES.get((asset, family), DEFAULT_TOLERANCE)
    passed = violations == 0 and share <= tolerance
    desc = (
        f"{what}: {violations} violation(s) written, {rejected} row(s) quarantined "
        f"({share:.4%}, tolerance {tolerance:.2%})"
    )
    return CheckOutcome(
        passed,
        desc,
        {
            "violations_in_lake": violations,
            "quarantined_rows": rejected,
            "quarantined_share": share,
            "tolerance": tolerance,
        },
    )


def check_schema(asset: str, clean: pl.DataFrame, rejects: pl.DataFrame) -> CheckOutcome:
    """Columns and dtypes are the canonical ones; required columns have no nulls."""
    schema: RawSchema = RAW_SCHEMAS[asset]
    wrong = [f"{c}: {clean.schema.get(c)} != {t}" for c, t in schema.columns.items() if clean.schema.get(c) != t]
    extra = [c for c in clean.columns if c not in schema.columns]
    nulls = sum(int(clean[c].null_count()) for c in schema.required if c in clean.columns)
    out = _reject_outcome(asset, "schema", len(wrong) + len(extra) + nulls, clean, rejects, "schema")
    return CheckOutcome(
        out.passed,
        out.description,
        {**out.metadata, "wrong_dtypes": wrong, "extra_columns": extra, "nulls_in_required": nulls},
    )


def check_key_unique(asset: str, clean: pl.DataFrame, rejects: pl.DataFrame) -> CheckOutcome:
    """No two written rows share the key; duplicates the source sent stay within tolerance."""
    key = list(RAW_SCHEMAS[asset].key)
    dupes = len(clean) - clean.select(key).n_unique() if len(clean) else 0
    return _reject_outcome(asset, "key_unique", dupes, clean, rejects, f"key {tuple(key)} unique")


def check_sanity(asset: str, clean: pl.DataFrame, rejects: pl.DataFrame, max_text_chars: int = 40_000) -> CheckOutcome:
    """Value sanity: OHLC ordering and volume >= 0, finite rates, non-negative OI, positive ratios, text size."""
    c = pl.col
    if asset == "market_bars_5m":
        bad = (
            (c("low") > pl.min_horizontal("open", "close"))
            | (c("high") < pl.max_horizontal("open", "close"))
            | (c("volume") < 0)
            | (c("low") <= 0)
        )
    elif asset == "funding_rates":
        bad = ~c("funding_rate").is_finite() | (c("funding_rate").abs() > 0.05)
    elif asset == "open_interest":
        bad = (c("open_interest") < 0) | (c("open_interest_value") < 0)
    elif asset == "derivatives_metrics":
        bad = pl.any_horizontal(
            [
                c(x) <= 0
                for x in (
                    "long_short_account_ratio",
                    "top_long_short_account_ratio",
                    "top_long_short_position_ratio",
                    "taker_buy_sell_ratio",
                    "mark_price",
                )
            ]
        )
    elif asset == "macro_series":
        bad = ~c("value").is_finite()
    else:
        bad = (c("text").str.strip_chars().str.len_chars() == 0) | (c("text").str.len_chars() > max_text_chars)
    violations = int(clean.select(bad.fill_null(False).sum()).item()) if len(clean) else 0
    return _reject_outcome(asset, "sanity", violations, clean, rejects, "value sanity")


def _complete_dates(w: CheckWindow) -> list[date]:
    return [d for d in w.dates if datetime(d.year, d.month, d.day, tzinfo=w.now.tzinfo) + timedelta(days=1) <= w.now]


def check_bar_coverage(clean: pl.DataFrame, w: CheckWindow, max_missing_share: float = 0.01) -> CheckOutcome:
    """Share of missing 5m bars per (date, symbol, market) after listing; no bars before a listing date."""
    counts = clean.group_by(pl.col("ts_event").dt.date().alias("date"), "symbol", "market").len()
    have = {(d, s, m): n for d, s, m, n in counts.iter_rows()}
    worst: list[tuple[str, float]] = []
    early = 0
    for d in w.dates:
        expected = BARS_PER_DAY
        day_start = datetime(d.year, d.month, d.day, tzinfo=w.now.tzinfo)
        if day_start + timedelta(days=1) > w.now:  # today's partial partition: bars closed so far
            expected = max(0, int((w.now - day_start).total_seconds() // 300) - 1)
        for s in w.symbols or ():
            listed = w.universe.is_listed(s, d) if w.universe else True
            for m in w.expected_markets:
                n = have.get((d, s, m), 0)
                if not listed:
                    early += n
                    continue
                if expected:
                    worst.append((f"{d}|{s}|{m}", max(0.0, 1 - n / expected)))
    worst.sort(key=lambda x: -x[1])
    failing = [x for x in worst if x[1] > max_missing_share]
    passed = not failing and early == 0
    desc = (
        f"{len(failing)} of {len(worst)} partition-markets miss more than {max_missing_share:.0%} of 5m bars; "
        f"{early} bar(s) before a listing date"
    )
    return CheckOutcome(
        passed,
        desc,
        {
            "partition_markets": len(worst),
            "failing": len(failing),
            "worst": {k: round(v, 4) for k, v in worst[:10]},
            "bars_before_listing": early,
            "mean_missing_share": sum(v for _, v in worst) / len(worst) if worst else 0.0,
        },
    )


def _macro_published(d: date, clean: pl.DataFrame, now: datetime) -> bool:
    """Whether the observation of day ``d`` of any series in ``clean`` (else any known series) is out by now."""
    series = clean["series_id"].unique().to_list() if len(clean) else list(MACRO_SERIES_SPECS)
    probe = pl.DataFrame(
        {"ts_event": [datetime(d.year, d.month, d.day, tzinfo=now.tzinfo)] * len(series), "series_id": series}
    )
    first = probe.select(macro_available(pl.col("ts_event"), pl.col("series_id")).min()).item()
    return first is not None and first <= now


def check_daily_coverage(
    asset: str,
    clean: pl.DataFrame,
    w: CheckWindow,
    max_missing_share: float = 0.0,
) -> CheckOutcome:
    """Every complete, listed partition has rows (funding, OI, metrics, macro business days)."""
    if asset == "macro_series":
        days = [d for d in _complete_dates(w) if d.weekday() < 5 and _macro_published(d, clean, w.now)]
        present = set(clean["ts_event"].dt.date().to_list())
        missing = [str(d) for d in days if d not in present]
        expected = len(days)
        max_missing_share = max(max_missing_share, 0.1)  # market holidays
    else:
        present = set(clean.select(pl.col("ts_event").dt.date(), "symbol").unique().iter_rows())
        keys = [
            (d, s) for d in _complete_dates(w) for s in w.symbols or () if not w.universe or w.universe.is_listed(s, d)
        ]
        missing = [f"{d}|{s}" for d, s in keys if (d, s) not in present]
        expected = len(keys)
    share = len(missing) / expected if expected else 0.0
    passed = share <= max_missing_share
    return CheckOutcome(
        passed,
        f"{len(missing)} of {expected} complete partitions have no rows ({share:.1%})",
        {
            "expected_partitions": expected,
            "missing_partitions": len(missing),
            "missing_examples": missing[:10],
            "missing_share": share,
        },
    )


def check_freshness(asset: str, clean: pl.DataFrame, w: CheckWindow) -> CheckOutcome:
    """Per-partition deadline: the newest row of the run is within the asset's lag of min(now, range end)."""
    last_day = max(w.dates)
    range_end = datetime(last_day.year, last_day.month, last_day.day, tzinfo=w.now.tzinfo) + timedelta(days=1)
    deadline = min(w.now, range_end)
    max_lag = MAX_FRESHNESS_LAG[asset]
    newest = clean["ts_available"].max() if len(clean) else None
    lag = (deadline - newest) if newest is not None else None
    passed = lag is not None and lag <= max_lag
    desc = f"newest row available {newest} ({lag} before deadline {deadline}; allowed {max_lag})"
    return CheckOutcome(
        passed,
        desc,
        {
            "newest_ts_available": str(newest),
            "deadline": str(deadline),
            "lag_seconds": lag.total_seconds() if lag is not None else None,
            "max_lag_seconds": max_lag.total_seconds(),
        },
    )
