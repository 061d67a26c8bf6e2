"""What every raw asset does: fetch its partitions from the source, normalize in core, quarantine rejects,
return the rows for the IO manager, and report checks and metadata."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import dagster as dg
import polars as pl

from quantmm_assets.core.ingest import IngestParams, normalize
from quantmm_assets.core.quality import CheckWindow
from quantmm_assets.defs.checks.raw_checks import raw_check_results
from quantmm_assets.defs.partitions import UNIVERSE, contiguous_runs, dates_and_symbols, day_start
from quantmm_resources.opstore import OperationalStore
from quantmm_resources.sources.base import empty_source_frame

Fetch = Callable[[str | None, datetime, datetime], pl.DataFrame]


def _fetch_all(
    context: dg.AssetExecutionContext, asset: str, fetch: Fetch, dates, symbols
) -> tuple[pl.DataFrame, list[tuple[str, str, str]], int]:
    """Source frames for every (symbol, contiguous date run); listed days only. Returns frame, windows, unlisted."""
    frames, windows, unlisted = [], [], 0
    for sym in symbols or [None]:
        days = [d for d in dates if sym is None or UNIVERSE.is_listed(sym, d)]
        unlisted += len(dates) - len(days)
        for start, end in contiguous_runs(days):
            frame = fetch(sym, start, end)
            frames.append(frame)
            windows.append((sym or "*", start.date().isoformat(), end.date().isoformat()))
            context.log.debug(
                f"{asset}: fetched {len(frame):,} source rows for {sym or 'all'} {start:%Y-%m-%d}..{end:%Y-%m-%d}"
            )
    frames = [f for f in frames if len(f)]
    return (pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()), windows, unlisted


def ingest_raw(
    context: dg.AssetExecutionContext, asset: str, fetch: Fetch, opstore: OperationalStore, source_name: str
) -> Iterator[dg.Output | dg.AssetCheckResult]:
    """Materialize the run's partitions of a raw asset (one partition or a single-run range)."""
    keys = [str(k) for k in context.partition_keys]
    dates, symbols = dates_and_symbols(keys)
    t0 = time.perf_counter()
    source, windows, unlisted = _fetch_all(context, asset, fetch, dates, symbols)
    t_fetch = time.perf_counter() - t0
    params = IngestParams(
        start=day_start(dates[0]),
        end=day_start(dates[-1]) + timedelta(days=1),
        symbols=tuple(symbols) if symbols else None,
        partition_keys=frozenset(keys),
        universe=UNIVERSE,
        now=datetime.now(UTC),
    )
    result = normalize(asset, source if len(source.columns) else empty_source_frame(asset), params)
    clean, rejects = result.clean, result.rejects
    t_norm = time.perf_counter() - t0 - t_fetch
    stored = opstore.replace_rejects(asset, keys, rejects, run_id=context.run.run_id)
    now = datetime.now(UTC)
    complete = all(day_start(d).timestamp() + 86400 <= now.timestamp() for d in dates)
    context.log.info(f"{asset}: {len(clean):,} rows to the lake, {stored:,} quarantined over {len(keys)} partition(s)")
    yield dg.Output(
        clean,
        metadata={
            "rows": len(clean),
            "source_rows": len(source),
            "rejected_rows": stored,
            "rejects_by_reason": dg.MetadataValue.json(result.reject_counts),
            "partitions": len(keys),
            "date_range": f"{dates[0]}..{dates[-1]}",
            "symbols": ", ".join(symbols) if symbols else "n/a",
            "partitions_before_listing": unlisted,
            "complete": complete,
            "source": source_name,
            "max_ts_available": str(clean["ts_available"].max()) if len(clean) else "none",
            "fetch_seconds": round(t_fetch, 3),
            "normalize_seconds": round(t_norm, 3),
            "fetch_windows": len(windows),
        },
    )
    window = CheckWindow(dates=tuple(dates), symbols=tuple(symbols) if symbols else None, now=now, universe=UNIVERSE)
    yield from raw_check_results(asset, clean, rejects, window)
