"""What every derived (date x symbol) asset does around its core call: the run's window and symbols, the inputs
read over a look-back, the rows it owns, and its output with per-partition metadata."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import dagster as dg
import polars as pl

from quantmm_assets.defs.partition_metadata import days_not_over, partition_metadata, rows_by_partition
from quantmm_assets.defs.partitions import dates_by_symbol, day_start, lookback, partition_symbols
from quantmm_resources.io_manager import PARTIAL_OK

COMMON = {
    "backfill_policy": dg.BackfillPolicy.single_run(),
    "io_manager_key": "lake_io_manager",
    "kinds": {"polars"},
}


def window_in(days: int, ahead: int = 0) -> dg.AssetIn:
    """An input read over the run's days plus ``days`` earlier (and ``ahead`` later) partitions of the same
    symbol; partitions that were never materialized (before the data starts) are read as no rows."""
    return dg.AssetIn(partition_mapping=lookback(days, ahead), metadata={PARTIAL_OK: True})


@dataclass(frozen=True)
class RunWindow:
    """The partitions of one run: keys, [start, end) over its days, its symbols (universe order)."""

    keys: list[str]
    start: datetime
    end: datetime
    symbols: list[str]

    @property
    def days(self) -> int:
        return (self.end - self.start).days


def run_window(context: dg.AssetExecutionContext) -> RunWindow:
    keys = [str(k) for k in context.partition_keys]
    by_symbol = dates_by_symbol(keys)
    days = sorted({d for ds in by_symbol.values() for d in ds})
    symbols = sorted((s for s in by_symbol if s), key=partition_symbols().index)
    return RunWindow(keys, day_start(days[0]), day_start(days[-1]) + timedelta(days=1), symbols)


def partition_key() -> pl.Expr:
    """Partition key of a derived row: ``YYYY-MM-DD|SYMBOL`` of its ts_event."""
    return pl.concat_str([pl.col("ts_event").dt.strftime("%Y-%m-%d"), pl.lit("|"), pl.col("symbol")])


def owned_rows(frame: pl.DataFrame, win: RunWindow) -> pl.DataFrame:
    """Rows of the run's own partitions (a selection need not be a rectangle)."""
    return frame.filter(partition_key().is_in(win.keys))


def unfinished_partitions(frame: pl.DataFrame, win: RunWindow, complete_rows: pl.Expr | None = None) -> set[str]:
    """The run's partitions that are not complete: their day is not over (or, with ``complete_rows``, one of
    their rows does not satisfy it, e.g. labels whose forward window is not yet in the lake)."""
    out = days_not_over(win.keys, datetime.now(UTC))
    if complete_rows is not None and len(frame):
        out |= set(frame.filter(~complete_rows).select(partition_key().alias("k")).unique()["k"].to_list())
    return out


def derived_output(
    context: dg.AssetExecutionContext,
    frame: pl.DataFrame,
    win: RunWindow,
    seconds: float,
    extra: dict | None = None,
    complete_rows: pl.Expr | None = None,
) -> dg.Output:
    """The run's rows for the IO manager, with the metadata every derived asset reports."""
    meta = {
        "run_rows": len(frame),
        "run_partitions": len(win.keys),
        "date_range": f"{win.start:%Y-%m-%d}..{(win.end - timedelta(days=1)):%Y-%m-%d}",
        "symbols": ", ".join(win.symbols),
        "compute_seconds": round(seconds, 3),
        "max_ts_available": str(frame["ts_available"].max())
        if len(frame) and "ts_available" in frame.columns
        else "none",
        **partition_metadata(
            context,
            win.keys,
            rows_by_partition(frame, partition_key()),
            unfinished_partitions(frame, win, complete_rows),
        ),
        **(extra or {}),
    }
    context.log.info(f"{context.asset_key.to_user_string()}: {len(frame):,} rows over {len(win.keys)} partition(s)")
    return dg.Output(frame, metadata=meta)


def timed(fn: Callable[[], pl.DataFrame]) -> tuple[pl.DataFrame, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0
