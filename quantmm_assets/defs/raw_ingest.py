"""What every raw asset does: fetch its partitions from the source, normalize in core, quarantine rejects,
return the rows for the IO manager, and report checks and metadata (per run and per partition)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import polars as pl

from quantmm_assets.core.availability import settle_lag
from quantmm_assets.core.ingest import FALLBACK_COLUMN, IngestParams, normalize, partition_label
from quantmm_assets.core.quality import CheckWindow
from quantmm_assets.core.schemas import RAW_SCHEMAS
from quantmm_assets.defs.checks.raw_checks import raw_check_results
from quantmm_assets.defs.partition_metadata import days_not_over, partition_metadata, rows_by_partition
from quantmm_assets.defs.partitions import contiguous_runs, dates_by_symbol, day_start
from quantmm_resources.io_manager import LakeWrite
from quantmm_resources.opstore import OperationalStore
from quantmm_resources.settings import get_settings
from quantmm_resources.sources.base import empty_source_frame

Fetch = Callable[[str | None, datetime, datetime], pl.DataFrame]


@dataclass
class Fetched:
    frame: pl.DataFrame
    first_fetch_at: datetime
    windows: int = 0
    unlisted: int = 0
    errors: list[str] = field(default_factory=list)
    failed_keys: set[str] = field(default_factory=set)


def _window_keys(sym: str | None, start: datetime, end: datetime) -> list[str]:
    days = [start.date() + timedelta(days=i) for i in range((end - start).days)]
    return [f"{d}|{sym}" if sym else str(d) for d in days]


def _fetch_all(context: dg.AssetExecutionContext, asset: str, fetch: Fetch, keys: list[str]) -> Fetched:
    """One fetch per symbol and contiguous run of its own days; one failing symbol does not stop the others:
    its error is reported and its partitions keep what the lake and the rejects had. Each fetched frame is
    tagged with its window's first partition, where rows that fit none of the run's partitions are filed."""
    frames = []
    universe = get_settings().universe()
    out = Fetched(pl.DataFrame(), datetime.now(UTC))
    for sym, days in dates_by_symbol(keys).items():
        out.unlisted += sum(1 for d in days if sym is not None and not universe.is_listed(sym, d))
        for start, end in contiguous_runs(days):
            out.windows += 1
            window_keys = _window_keys(sym, start, end)
            try:
                frame = fetch(sym, start, end)
            except Exception as exc:  # reported; the other symbols go on
                out.errors.append(f"{sym or 'all'} {start:%Y-%m-%d}..{end:%Y-%m-%d}: {type(exc).__name__}: {exc}")
                out.failed_keys.update(window_keys)
                context.log.error(f"{asset}: fetch failed: {out.errors[-1]}")
                continue
            frames.append(frame.with_columns(pl.lit(window_keys[0]).alias(FALLBACK_COLUMN)))
            context.log.debug(
                f"{asset}: fetched {len(frame):,} rows for {sym or 'all'} {start:%Y-%m-%d}..{end:%Y-%m-%d}"
            )
    if out.windows and len(out.errors) == out.windows:
        raise RuntimeError(f"{asset}: every fetch failed; first error: {out.errors[0]}")
    frames = [f for f in frames if len(f)]
    out.frame = pl.concat(frames, how="diagonal_relaxed") if frames else empty_source_frame(asset)
    return out


def ingest_raw(
    context: dg.AssetExecutionContext, asset: str, fetch: Fetch, opstore: OperationalStore, source_name: str
) -> Iterator[dg.Output | dg.AssetCheckResult]:
    """Materialize the run's partitions of a raw asset (one partition or a single-run range)."""
    keys = [str(k) for k in context.partition_keys]
    t0 = time.perf_counter()
    fetched = _fetch_all(context, asset, fetch, keys)
    t_fetch = time.perf_counter() - t0
    days = sorted({date.fromisoformat(k.partition("|")[0]) for k in keys})
    symbols = [s for s in dates_by_symbol(keys) if s is not None] or None
    params = IngestParams(
        start=day_start(days[0]),
        end=day_start(days[-1]) + timedelta(days=1),
        symbols=tuple(symbols) if symbols else None,
        partition_keys=frozenset(keys),
        universe=get_settings().universe(),
        now=fetched.first_fetch_at,  # a row not yet available when the source answered is not final
    )
    result = normalize(asset, fetched.frame, params)
    clean, rejects = result.clean, result.rejects
    # Partitions the source sent nothing for (a bundle without that symbol, an API that only serves recent
    # history) or whose fetch failed keep what the lake and the rejects already hold.
    touched = set(rejects["partition"].to_list())
    if len(clean):
        touched |= set(clean.select(partition_label(RAW_SCHEMAS[asset])).to_series().to_list())
    keep = frozenset((set(keys) - touched) | fetched.failed_keys)
    t_norm = time.perf_counter() - t0 - t_fetch
    stored = len(rejects)
    now = datetime.now(UTC)
    per_partition = partition_metadata(
        context,
        keys,
        rows_by_partition(clean, partition_label(RAW_SCHEMAS[asset])),
        days_not_over(keys, now, settle_lag(asset)),
        rejected=rows_by_partition(rejects, pl.col("partition")),
    )
    context.log.info(f"{asset}: {len(clean):,} rows to the lake, {stored:,} quarantined over {len(keys)} partition(s)")
    yield dg.Output(
        LakeWrite(clean, keep_existing=keep),
        metadata={
            "run_rows": len(clean),
            "run_source_rows": len(fetched.frame),
            "run_rejected_rows": stored,
            "rejects_by_reason": dg.MetadataValue.json(result.reject_counts),
            "run_partitions": len(keys),
            "date_range": f"{days[0]}..{days[-1]}",
            "symbols": ", ".join(symbols) if symbols else "n/a",
            "partitions_before_listing": fetched.unlisted,
            "partitions_kept_as_they_were": len(keep),
            **per_partition,
            "source": source_name,
            "fetch_errors": dg.MetadataValue.json(fetched.errors),
            "max_ts_available": str(clean["ts_available"].max()) if len(clean) else "none",
            "fetch_seconds": round(t_fetch, 3),
            "normalize_seconds": round(t_norm, 3),
        },
    )
    # Dagster stores the Output (the IO manager writes the lake) before the generator resumes: the rejects
    # follow the lake, so a crash in between never leaves rejects that describe rows the lake does not have.
    opstore.replace_rejects(asset, [k for k in keys if k not in keep], rejects, run_id=context.run.run_id)
    window = CheckWindow(
        dates=tuple(days),
        symbols=tuple(symbols) if symbols else None,
        now=now,
        universe=get_settings().universe(),
        partition_keys=frozenset(keys),
    )
    yield from raw_check_results(asset, clean, rejects, window)
