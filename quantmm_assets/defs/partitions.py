"""Partition definitions: daily UTC ``date`` (today's partition included, partial) x ``symbol``.

They are built from the settings (``QUANTMM_PARTITION_START``, ``QUANTMM_UNIVERSE_FILE``) once, when the code location
loads: Dagster needs them on the asset decorators. Everything else reads the universe (listing dates, aliases) from
``get_settings().universe()`` when it runs, and the partitions' own symbols and first day through the two functions
below, never through a module global.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta

import dagster as dg

from quantmm_resources.settings import get_settings

daily = dg.DailyPartitionsDefinition(start_date=get_settings().partition_start, timezone="UTC", end_offset=1)
symbols = dg.StaticPartitionsDefinition(get_settings().universe().symbols)
date_x_symbol = dg.MultiPartitionsDefinition({"date": daily, "symbol": symbols})


def partition_symbols() -> list[str]:
    """The symbols of the date x symbol partitions, in universe order (what a partition range spans)."""
    return list(symbols.get_partition_keys())


def first_partition_day() -> date:
    """The first day of the daily partitions definition the code location loaded."""
    return daily.start.date()


def dates_by_symbol(keys: list[str]) -> dict[str | None, list[date]]:
    """The run's days per symbol (``None`` for date-only assets): a selection need not be a rectangle."""
    out: dict[str | None, list[date]] = defaultdict(list)
    for key in keys:
        day, _, sym = key.partition("|")
        out[sym or None].append(date.fromisoformat(day))
    return {s: sorted(d) for s, d in out.items()}


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
