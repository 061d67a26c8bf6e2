"""``quantmm bundle import DIR``: materialize the raw assets from an offline bundle through Dagster.

Not a side door into the lake: one single-run backfill per partitions definition (date x symbol, and
date) over the partitions the bundle covers, with the bundle resources, so every imported partition gets
a materialization, a data version and check results on the instance.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl

from quantmm_assets.core.schemas import RAW_SCHEMAS
from quantmm_assets.defs.partitions import first_partition_day, partition_symbols
from quantmm_assets.defs.raw_assets import RAW_DATE_ASSETS, RAW_MARKET_ASSETS
from quantmm_jobs.cli.runs import RangeRun, instance_for, run_range
from quantmm_resources.environment import build_resources
from quantmm_resources.opstore import OperationalStore
from quantmm_resources.settings import QuantmmSettings, get_settings
from quantmm_resources.sources.bundle import bundle_coverage, load_asset, set_aside_rows, unserved_rows

UNIVERSE_HINT = (
    "to import a symbol, list it in a universe file (the default is quantmm_resources/config/universe.toml: "
    "copy it, add a [[symbol]] entry with its listing_date) and point QUANTMM_UNIVERSE_FILE at that file"
)


def partition_start_hint(first_day: date) -> str:
    """How to make the partitions reach back to ``first_day``."""
    return (
        f"QUANTMM_PARTITION_START={first_day} would cover them (the partitions definition is read once per code "
        "location: set it before `quantmm` and `make ui` start)"
    )


def plan_import(
    coverage: dict,
    assets: list,
    start: date | None,
    end: date | None,
    symbols: list[str] | None,
) -> tuple[list, date, date, list[str]] | None:
    """Assets the bundle fills, and the date range and symbols to materialize them over (None: nothing)."""
    chosen = [a for a in assets if a.key.to_user_string() in coverage]
    if not chosen:
        return None
    cov = {a.key.to_user_string(): coverage[a.key.to_user_string()] for a in chosen}
    first_partition = first_partition_day()
    # Clip to the partitions that exist (macro files reach back to 1970; nothing lies after today).
    bundle_lo, bundle_hi = min(c["start"] for c in cov.values()), max(c["end"] for c in cov.values())
    lo = max(start or bundle_lo, first_partition)
    hi = min(end or bundle_hi, datetime.now(UTC).date())
    if lo > hi:
        rows = sum(c["rows"] for c in cov.values())
        hint = partition_start_hint(start or bundle_lo) if (end or bundle_hi) < first_partition else ""
        raise ValueError(
            f"empty import window {lo}..{hi}: the bundle's {', '.join(cov)} span {bundle_lo}..{bundle_hi}, the "
            f"partitions run from QUANTMM_PARTITION_START={first_partition} to today; all {rows:,} rows of these "
            "assets lie outside the window" + (f": {hint}" if hint else "")
        )
    universe = partition_symbols()
    in_universe = [s for c in cov.values() for s in c["symbols"] if s in universe]
    syms = sorted(set(symbols or in_universe), key=lambda s: universe.index(s) if s in universe else -1)
    unknown = [s for s in syms if s not in universe]
    if unknown:
        raise ValueError(f"symbols not in the universe: {unknown}; {UNIVERSE_HINT}")
    return chosen, lo, hi, syms


def import_bundle(
    path: Path,
    start: date | None = None,
    end: date | None = None,
    symbols: list[str] | None = None,
    instance=None,
    settings: QuantmmSettings | None = None,
) -> list[RangeRun]:
    """Import a bundle; returns one RangeRun per partitions definition that had data."""
    if not path.is_dir():
        raise FileNotFoundError(f"bundle directory not found: {path}")
    settings = settings or get_settings()
    coverage = bundle_coverage(path)
    if not coverage:
        raise ValueError(f"no recognised files in bundle {path} (see docs/bundle.md for the layout)")
    market = plan_import(coverage, RAW_MARKET_ASSETS, start, end, symbols)
    dated = plan_import(coverage, RAW_DATE_ASSETS, start, end, None)
    resources = build_resources(settings, source="bundle", bundle_dir=path)
    record_set_aside(path, list(coverage), resources["opstore"])
    instance = instance or instance_for(settings)
    runs = []
    for plan, by_symbol in ((market, True), (dated, False)):
        if plan is None or (by_symbol and not plan[3]):  # nothing to import (or only symbols outside the universe)
            continue
        assets, lo, hi, syms = plan
        report_outside(path, [a.key.to_user_string() for a in assets], lo, hi)
        runs.append(run_range(assets, lo, hi, syms if by_symbol else None, resources, instance))
    return runs


def rows_outside(path: Path, asset: str, lo: date, hi: date) -> tuple[int, int, date | None]:
    """Rows of ``asset`` (universe groups only: the rest are rejects) before ``lo`` and after ``hi``, and the
    first day of the earlier ones."""
    served = served_groups(asset)
    start = datetime(lo.year, lo.month, lo.day, tzinfo=UTC)
    stop = datetime(hi.year, hi.month, hi.day, tzinfo=UTC) + timedelta(days=1)
    before, after, first = 0, 0, None
    for group, frame in load_asset(path, asset).items():
        if group in served:
            ts = frame["ts_event"]
            early = ts.filter(ts < start)
            before, after = before + early.len(), after + ts.filter(ts >= stop).len()
            if early.len():
                first = min(early.min().date(), first or date.max)
    return before, after, first


def report_outside(path: Path, assets: list[str], lo: date, hi: date) -> None:
    """Print the bundle rows of ``assets`` the import window ``lo..hi`` leaves out, and how to take them in."""
    first_partition = first_partition_day()
    for asset in assets:
        before, after, first = rows_outside(path, asset, lo, hi)
        if before:
            # macro files reach back decades: moving the partitions there is not the remedy
            hint = f"; {partition_start_hint(first)}" if lo == first_partition and asset != "macro_series" else ""
            print(f"{asset}: {before:,} bundle rows before {lo} not imported (first {first}){hint}")
        if after:
            print(f"{asset}: {after:,} bundle rows after {hi} not imported")


def served_groups(asset: str) -> set[tuple]:
    """Groups (symbol[, market]) of ``asset`` that an import can place in a partition: the universe's."""
    if asset == "market_bars_5m":
        return {(s, m) for s in partition_symbols() for m in ("spot", "perp")}
    if RAW_SCHEMAS[asset].partitioned_by_symbol:
        return {(s,) for s in partition_symbols()}
    return {()}


def bundle_partition(path: Path) -> str:
    """The rejects label of one bundle's unplaceable rows (re-importing it replaces them, other bundles' stay)."""
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:10]
    return f"bundle:{path.resolve().name[:36]}:{digest}"


def record_set_aside(path: Path, assets: list[str], store: OperationalStore) -> dict[str, int]:
    """Record the bundle rows no partition receives as rejects: copies superseded by a preferred format,
    unparseable timestamps, and groups outside the universe (unknown symbol or market)."""
    label = bundle_partition(path)
    counts = {}
    for asset in assets:
        rows = pl.concat([set_aside_rows(path, asset), unserved_rows(path, asset, served_groups(asset))])
        rejects = rows.select(pl.lit(asset).alias("asset"), pl.lit(label).alias("partition"), "reason", "raw")
        counts[asset] = store.replace_rejects(asset, [label], rejects)
        if counts[asset]:
            print(f"{asset}: {counts[asset]:,} bundle rows no partition receives, recorded as rejects ({label})")
            for reason, n in sorted(rows["reason"].value_counts().iter_rows(), key=lambda r: -r[1]):
                print(f"    {n:>8,}  {reason}")
            if rows["reason"].str.contains("not in the universe").any():
                print(f"    {UNIVERSE_HINT}")
    return counts
