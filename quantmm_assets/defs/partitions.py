"""Partition definitions: daily UTC ``date`` (today's partition included, partial) x ``symbol``."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import dagster as dg

from quantmm_resources.settings import get_settings

_settings = get_settings()
UNIVERSE = _settings.universe()

daily = dg.DailyPartitionsDefinition(start_date=_settings.partition_start, timezone="UTC", end_offset=1)
symbols = dg.StaticPartitionsDefinition(UNIVERSE.symbols)
date_x_symbol = dg.MultiPartitionsDefinition({"date": daily, "symbol": symbols})


def dates_and_symbols(partition_keys: list[str]) -> tuple[list[date], list[str] | None]:
    """Dates and symbols covered by a run's partition keys (``2025-01-01|BTCUSDT`` or ``2025-01-01``)."""
    dates, syms = set(), set()
    for key in partition_keys:
        day, _, sym = str(key).partition("|")
        dates.add(date.fromisoformat(day))
        if sym:
            syms.add(sym)
    return sorted(dates), (sorted(syms, key=UNIVERSE.symbols.index) if syms else None)


def day_start(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=UTC)


def contiguous_runs(days: list[date]) -> list[tuple[datetime, datetime]]:
    """Collapse sorted dates into [start, end) windows of consecutive days."""
    runs: list[tuple[datetime, datetime]] = []
    for d in days:
        if runs and runs[-1][1] == day_start(d):
            runs[-1] = (runs[-1][0], day_start(d) + timedelta(days=1))
        else:
            runs.append((day_start(d), day_start(d) + timedelta(days=1)))
    return runs


def lookback(days: int, ahead: int = 0) -> dg.MultiPartitionMapping:
    """date x symbol -> date x symbol: the same symbol over ``days`` earlier days (and ``ahead`` later days, for
    labels). Days before the first partition or after the last do not exist and are simply not read."""
    return dg.MultiPartitionMapping(
        {
            "date": dg.DimensionPartitionMapping(
                "date",
                dg.TimeWindowPartitionMapping(
                    start_offset=-days, end_offset=ahead, allow_nonexistent_upstream_partitions=True
                ),
            ),
            "symbol": dg.DimensionPartitionMapping("symbol", dg.IdentityPartitionMapping()),
        }
    )


# date x symbol -> date (macro and social raw assets): the same day.
SAME_DAY = dg.MultiToSingleDimensionPartitionMapping(partition_dimension_name="date")
