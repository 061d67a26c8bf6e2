"""Daily coverage grid behind the readiness plot: per data kind and day, the share of expected series present."""

from __future__ import annotations

from datetime import timedelta

import polars as pl

from quantmm_assets.core.availability import us_market_holidays
from quantmm_assets.core.readiness.audit import DATA_KINDS, MIN_ROWS_PER_DAY, ReadinessWindow
from quantmm_assets.core.universe import Universe


def coverage_grid(counts: pl.DataFrame, universe: Universe, window: ReadinessWindow) -> pl.DataFrame:
    """Columns: kind, date, share (covered listed symbols / listed symbols; 0 or 1 for date-only kinds; null
    where nothing is expected: macro on weekends, a symbol-partitioned kind before any listing)."""
    days = [window.start + timedelta(days=i) for i in range((window.end - window.start).days + 1)]
    rows = []
    holidays = set(us_market_holidays())
    for kind, asset, flt, by_symbol in DATA_KINDS:
        sub = counts.filter((pl.col("asset") == asset) & (pl.col("rows") >= MIN_ROWS_PER_DAY.get(kind, 1)))
        if flt is not None:
            sub = sub.filter(pl.col("kind_filter") == flt)
        have = set(sub.select("symbol", "date").iter_rows())
        for d in days:
            if kind == "macro" and (d.weekday() >= 5 or d in holidays):  # no observations then: not a gap
                rows.append({"kind": kind, "date": d, "share": None})
                continue
            targets = [s for s in universe.symbols if universe.is_listed(s, d)] if by_symbol else [None]
            covered = sum((s, d) in have for s in targets)
            rows.append({"kind": kind, "date": d, "share": covered / len(targets) if targets else None})
    return pl.DataFrame(rows, schema={"kind": pl.Utf8, "date": pl.Date, "share": pl.Float64})
