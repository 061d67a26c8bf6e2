"""Data-quality checks of raw assets, pure functions: f(clean, rejects, params) -> CheckOutcome.

A check fails when the written rows break its rule, or when the rows quarantined for its reasons exceed
a tolerated share of what the source delivered: bad input is kept out of the lake *and* reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import polars as pl

from quantmm_assets.core.availability import macro_available, us_market_holidays
from quantmm_assets.core.ingest import MAX_TEXT_CHARS, value_rules
from quantmm_assets.core.schemas import RAW_SCHEMAS, RawSchema
from quantmm_assets.core.universe import Universe

# Reject reasons (the text before ":") grouped by the check that reports them.
REASON_FAMILIES: dict[str, tuple[str, ...]] = {
    "schema": ("unparseable", "missing", "outside requested window", "symbol not requested"),
    "key_unique": ("duplicate key",),
    "sanity": (
        "non-finite",
        "unknown market",
        "ts_event not on the 5m grid",
        "ohlc",
        "funding",
        "unknown period",
        "open interest",
        "metrics",
        "unknown macro series",
        "empty text",
        "oversized text",
    ),
}
DEFAULT_TOLERANCE = 0.001
# Macro files carry empty holiday placeholders (FRED marks holidays blank): quarantined, not a failure.
TOLERANCE_OVERRIDES = {("macro_series", "schema"): 0.25}
BARS_PER_DAY = 288
CANONICAL_MACRO = ["dollar_index", "us10y", "vix"]
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
    partition_keys: frozenset[str] | None = None  # when the run is not every date x symbol of the range

    def pairs(self) -> list[tuple[date, str | None]]:
        """(date, symbol or None) of every partition of the run."""
        if self.partition_keys is not None:
            out = []
            for key in sorted(self.partition_keys):
                day, _, sym = key.partition("|")
                out.append((date.fromisoformat(day), sym or None))
            return out
        return [(d, s) for d in self.dates for s in (self.symbols or (None,))]

    def listed(self, day: date, symbol: str | None) -> bool:
        return symbol is None or self.universe is None or self.universe.is_listed(symbol, day)

    def day_bounds(self, day: date) -> tuple[datetime, datetime]:
        start = datetime(day.year, day.month, day.day, tzinfo=self.now.tzinfo)
        return start, start + timedelta(days=1)


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


def check_sanity(
    asset: str, clean: pl.DataFrame, rejects: pl.DataFrame, max_text_chars: int = MAX_TEXT_CHARS
) -> CheckOutcome:
    """Value sanity, by the rules ingest quarantines with (``core.ingest.value_rules``): OHLC ordering, volume
    >= 0, finite floats, rates in range, non-negative OI, positive ratios, known ids, text present and sized."""
    if len(clean):
        bad = pl.any_horizontal([cond.fill_null(False) for cond, _ in value_rules(asset, max_text_chars)])
        violations = int(clean.select(bad.sum()).item())
    else:
        violations = 0
    return _reject_outcome(asset, "sanity", violations, clean, rejects, "value sanity")


def check_bar_coverage(clean: pl.DataFrame, w: CheckWindow, max_missing_share: float = 0.01) -> CheckOutcome:
    """Share of missing 5m bars per (date, symbol, market) after listing; no bars before a listing date."""
    counts = clean.group_by(pl.col("ts_event").dt.date().alias("date"), "symbol", "market").len()
    have = {(d, s, m): n for d, s, m, n in counts.iter_rows()}
    worst: list[tuple[str, float]] = []
    early = 0
    for d, s in w.pairs():
        start, end = w.day_bounds(d)
        expected = BARS_PER_DAY if end <= w.now else max(0, int((w.now - start).total_seconds() // 300) - 1)
        for m in w.expected_markets:
            n = have.get((d, s, m), 0)
            if not w.listed(d, s):
                early += n
            elif expected:
                worst.append((f"{d}|{s}|{m}", max(0.0, 1 - n / expected)))
    worst.sort(key=lambda x: -x[1])
    failing = [x for x in worst if x[1] > max_missing_share]
    desc = (
        f"{len(failing)} of {len(worst)} partition-markets miss more than {max_missing_share:.0%} of 5m bars; "
        f"{early} bar(s) before a listing date"
    )
    return CheckOutcome(
        not failing and early == 0,
        desc,
        {
            "partition_markets": len(worst),
            "failing": len(failing),
            "worst": {k: round(v, 4) for k, v in worst[:10]},
            "bars_before_listing": early,
            "mean_missing_share": sum(v for _, v in worst) / len(worst) if worst else 0.0,
        },
    )


def _published_days(days: list[date], series: str, now: datetime) -> list[date]:
    """The business days among ``days`` whose observation of ``series`` is published by ``now``."""
    if not days:
        return []
    probe = pl.DataFrame({"ts_event": [datetime(d.year, d.month, d.day, tzinfo=now.tzinfo) for d in days]})
    at = probe.select(macro_available(pl.col("ts_event"), pl.lit(series)))["ts_event"].to_list()
    return [d for d, t in zip(days, at, strict=True) if t is not None and t <= now]


def _macro_coverage(clean: pl.DataFrame, w: CheckWindow, max_missing_share: float) -> CheckOutcome:
    """Each series seen in the run (the canonical three when none) on every published business day."""
    holidays = set(us_market_holidays())
    weekdays = [d for d, _ in w.pairs() if d.weekday() < 5 and d not in holidays and w.day_bounds(d)[1] <= w.now]
    seen = sorted(clean["series_id"].unique().to_list()) if len(clean) else CANONICAL_MACRO
    per_series, expected_total, missing_total = {}, 0, 0
    for series in seen:
        expected = _published_days(weekdays, series, w.now)
        have = set(clean.filter(pl.col("series_id") == series)["ts_event"].dt.date().to_list()) if len(clean) else set()
        missing = [str(d) for d in expected if d not in have]
        per_series[series] = {"expected": len(expected), "missing": len(missing), "examples": missing[:5]}
        expected_total += len(expected)
        missing_total += len(missing)
    shares = {k: v["missing"] / v["expected"] for k, v in per_series.items() if v["expected"]}
    worst = max(shares.values(), default=0.0)
    return CheckOutcome(
        worst <= max_missing_share,
        f"{missing_total} of {expected_total} published series-days missing; worst series {worst:.1%}",
        {"per_series": per_series, "worst_missing_share": worst},
    )


def check_daily_coverage(
    asset: str, clean: pl.DataFrame, w: CheckWindow, max_missing_share: float = 0.0
) -> CheckOutcome:
    """Every complete, listed partition has rows and none before a listing date (funding, OI, metrics, social);
    macro: each series on every business day its observation is published by now (10% holiday allowance)."""
    if asset == "macro_series":
        return _macro_coverage(clean, w, max(max_missing_share, 0.1))
    by_symbol = "symbol" in clean.columns
    cols = [pl.col("ts_event").dt.date()] + ([pl.col("symbol")] if by_symbol else [])
    counts = {(r[0], r[1] if by_symbol else None): r[-1] for r in clean.group_by(cols).len().iter_rows()}
    complete = [(d, s) for d, s in w.pairs() if w.day_bounds(d)[1] <= w.now]
    expected = [(d, s) for d, s in complete if w.listed(d, s)]
    missing = [f"{d}|{s}" if s else str(d) for d, s in expected if not counts.get((d, s))]
    early = sum(n for (d, s), n in counts.items() if not w.listed(d, s))
    share = len(missing) / len(expected) if expected else 0.0
    return CheckOutcome(
        share <= max_missing_share and early == 0,
        f"{len(missing)} of {len(expected)} complete partitions have no rows ({share:.1%}); "
        f"{early} row(s) before a listing date",
        {
            "expected_partitions": len(expected),
            "missing_partitions": len(missing),
            "missing_examples": missing[:10],
            "missing_share": share,
            "rows_before_listing": early,
        },
    )


def _macro_freshness(clean: pl.DataFrame, w: CheckWindow, max_lag: timedelta) -> CheckOutcome:
    """The newest observation is no older than ``max_lag`` before the latest business day of the run whose
    value is published by min(now, range end); a run with no such day is not judged."""
    deadline = min(w.now, w.day_bounds(max(w.dates))[1])
    holidays = set(us_market_holidays())
    days = [d for d in w.dates if d.weekday() < 5 and d not in holidays]
    due = _published_days(days, CANONICAL_MACRO[-1], deadline)  # vix: the earliest publication
    newest = clean["ts_event"].max() if len(clean) else None
    if not due:
        return CheckOutcome(True, "no business day of the run is published yet: not judged", {"judged": False})
    expected = max(due)
    ok = newest is not None and newest.date() >= expected - max_lag
    return CheckOutcome(
        ok,
        f"newest observation {newest} against latest published business day {expected} (allowed {max_lag})",
        {
            "judged": True,
            "newest_observation": str(newest),
            "expected_day": str(expected),
            "max_lag_seconds": max_lag.total_seconds(),
        },
    )


def check_freshness(asset: str, clean: pl.DataFrame, w: CheckWindow) -> CheckOutcome:
    """Per-partition deadline: in each listed partition the newest row is available within the asset's lag of
    min(now, partition end). Macro has no daily rows on weekends and holidays: its newest publication is judged
    against min(now, range end) instead."""
    max_lag = MAX_FRESHNESS_LAG[asset]
    if asset == "macro_series":
        return _macro_freshness(clean, w, max_lag)
    by_symbol = "symbol" in clean.columns
    cols = [pl.col("ts_event").dt.date()] + ([pl.col("symbol")] if by_symbol else [])
    newest = (
        {
            (r[0], r[1] if by_symbol else None): r[-1]
            for r in clean.group_by(cols).agg(pl.col("ts_available").max()).iter_rows()
        }
        if len(clean)
        else {}
    )
    stale: list[tuple[str, float | None]] = []
    judged = 0
    for d, s in w.pairs():
        start, end = w.day_bounds(d)
        deadline = min(w.now, end)
        if not w.listed(d, s) or deadline - start < max_lag:
            continue  # not listed, or too early in the day to tell
        judged += 1
        last = newest.get((d, s))
        lag = deadline - last if last is not None else None
        if lag is None or lag > max_lag:
            stale.append((f"{d}|{s}" if s else str(d), lag.total_seconds() if lag is not None else None))
    return CheckOutcome(
        not stale,
        f"{len(stale)} of {judged} partitions have no row within {max_lag} of their deadline",
        {
            "judged_partitions": judged,
            "stale_partitions": len(stale),
            "stale_examples": dict(stale[:10]),
            "max_lag_seconds": max_lag.total_seconds(),
        },
    )
