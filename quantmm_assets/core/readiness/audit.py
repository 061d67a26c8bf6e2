"""Readiness audit: how much of each data kind the lake holds over a window, what is missing, and the
backfill that would fill it. Pure: takes per-day row counts, returns a report."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import polars as pl

from quantmm_assets.core.availability import us_market_holidays
from quantmm_assets.core.universe import Universe

# (data kind, raw asset, filter on the counts frame, symbol-partitioned)
DATA_KINDS: tuple[tuple[str, str, str | None, bool], ...] = (
    ("perp_bars_5m", "market_bars_5m", "perp", True),
    ("spot_bars_5m", "market_bars_5m", "spot", True),
    ("funding", "funding_rates", None, True),
    ("open_interest", "open_interest", None, True),
    ("derivatives_metrics", "derivatives_metrics", None, True),
    ("macro", "macro_series", None, False),
    ("social_posts", "social_posts_raw", None, False),
    ("social_comments", "social_comments_raw", None, False),
)
READY_SHARE = 0.95
# A day counts as covered with at least this many rows (5m bars: 95% of 288; other kinds: any row).
MIN_ROWS_PER_DAY = {"perp_bars_5m": 274, "spot_bars_5m": 274}


@dataclass(frozen=True)
class ReadinessWindow:
    mode: str  # "production" | "research"
    start: date
    end: date  # inclusive: the newest complete day


def window_for(mode: str, today: date, lookback_days: int, earliest: date) -> ReadinessWindow:
    """Production: the last ``lookback_days`` complete days. Research: everything since ``earliest``."""
    end = today - timedelta(days=1)
    if mode == "production":
        return ReadinessWindow(mode, end - timedelta(days=lookback_days - 1), end)
    if mode == "research":
        return ReadinessWindow(mode, min(earliest, end), end)
    raise ValueError(f"unknown readiness mode {mode!r}: production | research")


def _macro_due(day: date, end: date) -> bool:
    """A business day (not a US market holiday) whose values are out by ``end``: FRED posts them on a later
    business day."""
    holidays = set(us_market_holidays())
    if day.weekday() >= 5 or day in holidays:
        return False
    return any((day + timedelta(days=k)).weekday() < 5 for k in range(1, (end - day).days + 1))


def _runs(days: list[date]) -> list[tuple[date, date]]:
    out: list[tuple[date, date]] = []
    for d in sorted(days):
        if out and out[-1][1] + timedelta(days=1) == d:
            out[-1] = (out[-1][0], d)
        else:
            out.append((d, d))
    return out


def audit(counts: pl.DataFrame, universe: Universe, window: ReadinessWindow) -> dict:
    """``counts``: columns asset, kind_filter (market or null), symbol (or null), date, rows.

    Returns {mode, window, kinds: {kind: {coverage, per_symbol, missing_ranges}}, missing_kinds, backfills}.
    """
    days = [window.start + timedelta(days=i) for i in range((window.end - window.start).days + 1)]
    report: dict = {
        "mode": window.mode,
        "window": [str(window.start), str(window.end)],
        "kinds": {},
        "missing_kinds": [],
        "backfills": [],
    }
    for kind, asset, flt, by_symbol in DATA_KINDS:
        sub = counts.filter((pl.col("asset") == asset) & (pl.col("rows") >= MIN_ROWS_PER_DAY.get(kind, 1)))
        if flt is not None:
            sub = sub.filter(pl.col("kind_filter") == flt)
        have = set(sub.select("symbol", "date").iter_rows())
        entries = {}
        targets = universe.symbols if by_symbol else [None]
        expected_total = covered_total = 0
        for sym in targets:
            listed = [d for d in days if sym is None or universe.is_listed(sym, d)]
            expected = [d for d in listed if kind != "macro" or _macro_due(d, window.end)]
            missing = [d for d in expected if (sym, d) not in have]
            expected_total += len(expected)
            covered_total += len(expected) - len(missing)
            ranges = _runs(missing)
            entries[sym or "*"] = {
                "coverage": round(1 - len(missing) / len(expected), 4) if expected else None,
                "missing_days": len(missing),
                "missing_ranges": [[str(a), str(b)] for a, b in ranges[:20]],
            }
            for a, b in ranges:
                suffix = f"|{sym}" if sym else ""
                report["backfills"].append(
                    {
                        "asset": asset,
                        "kind": kind,
                        "symbol": sym,
                        "from": str(a),
                        "to": str(b),
                        "partition_range": f"{a}{suffix}...{b}{suffix}",
                        "command": f"dagster asset materialize -m quantmm_jobs.definitions --select {asset} "
                        f"--partition-range '{a}{suffix}...{b}{suffix}'",
                    }
                )
        coverage = covered_total / expected_total if expected_total else 0.0
        report["kinds"][kind] = {
            "asset": asset,
            "coverage": round(coverage, 4),
            "ready": coverage >= READY_SHARE,
            "per_symbol": entries,
        }
        if coverage < READY_SHARE:
            report["missing_kinds"].append(kind)
    report["ready"] = not report["missing_kinds"]
    return report


def to_markdown(report: dict) -> str:
    """A short table a person reads in the Dagster UI or a terminal."""
    lines = [
        f"# Readiness ({report['mode']}, {report['window'][0]} .. {report['window'][1]})",
        "",
        "| data kind | coverage | ready |",
        "|---|---:|:---:|",
    ]
    for kind, v in report["kinds"].items():
        lines.append(f"| {kind} | {v['coverage']:.1%} | {'yes' if v['ready'] else 'NO'} |")
    lines += [
        "",
        f"Missing data kinds: {', '.join(report['missing_kinds']) or 'none'}",
        f"Backfill ranges to run: {len(report['backfills'])} (with a source that has them: QUANTMM_SOURCE=live, "
        "or `quantmm bundle import DIR` for an offline bundle)",
    ]
    for b in report["backfills"][:10]:
        lines.append(f"- `{b['command']}`")
    if report.get("plot"):
        lines += ["", f"Daily coverage heatmap: {report['plot']}"]
    return "\n".join(lines)
