"""``quantmm bundle import DIR``: materialize the raw assets from an offline bundle through Dagster.

Not a side door into the lake: one single-run backfill per partitions definition (date x symbol, and
date) over the partitions the bundle covers, with the bundle resources, so every imported partition gets
a materialization, a data version and check results on the instance.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl

from quantmm_assets.core.schemas import RAW_SCHEMAS
from quantmm_assets.defs.partitions import UNIVERSE
from quantmm_assets.defs.raw_assets import RAW_DATE_ASSETS, RAW_MARKET_ASSETS
from quantmm_jobs.cli.runs import RangeRun, instance_for, run_range
from quantmm_resources.environment import build_resources
from quantmm_resources.opstore import OperationalStore
from quantmm_resources.settings import get_settings
from quantmm_resources.sources.bundle import bundle_coverage, set_aside_rows, unserved_rows


def plan_import(
    coverage: dict, assets: list, start: date | None, end: date | None, symbols: list[str] | None
) -> tuple[list, date, date, list[str]] | None:
    """Assets the bundle fills, and the date range and symbols to materialize them over (None: nothing)."""
    chosen = [a for a in assets if a.key.to_user_string() in coverage]
    if not chosen:
        return None
    cov = [coverage[a.key.to_user_string()] for a in chosen]
    first_partition = date.fromisoformat(get_settings().partition_start)
    # Clip to the partitions that exist (macro files reach back to 1970; nothing lies after today).
    lo = max(start or min(c["start"] for c in cov), first_partition)
    hi = min(end or max(c["end"] for c in cov), datetime.now(UTC).date())
    if lo > hi:
        raise ValueError(f"empty import window {lo}..{hi}")
    in_universe = [s for c in cov for s in c["symbols"] if s in UNIVERSE.symbols]
    syms = sorted(set(symbols or in_universe), key=lambda s: UNIVERSE.symbols.index(s) if s in UNIVERSE.symbols else -1)
    unknown = [s for s in syms if s not in UNIVERSE.symbols]
    if unknown:
        raise ValueError(f"symbols not in the universe: {unknown}")
    return chosen, lo, hi, syms


def import_bundle(
    path: Path, start: date | None = None, end: date | None = None, symbols: list[str] | None = None, instance=None
) -> list[RangeRun]:
    """Import a bundle; returns one RangeRun per partitions definition that had data."""
    if not path.is_dir():
        raise FileNotFoundError(f"bundle directory not found: {path}")
    settings = get_settings()
    coverage = bundle_coverage(path)
    if not coverage:
        raise ValueError(f"no recognised files in bundle {path} (see docs/bundle.md for the layout)")
    resources = build_resources(settings, source="bundle", bundle_dir=path)
    record_set_aside(path, list(coverage), resources["opstore"])
    instance = instance or instance_for(settings)
    runs = []
    market = plan_import(coverage, RAW_MARKET_ASSETS, start, end, symbols)
    if market and market[3]:
        assets, lo, hi, syms = market
        runs.append(run_range(assets, lo, hi, syms, resources, instance))
    dated = plan_import(coverage, RAW_DATE_ASSETS, start, end, None)
    if dated:
        assets, lo, hi, _ = dated
        runs.append(run_range(assets, lo, hi, None, resources, instance))
    return runs


def served_groups(asset: str) -> set[tuple]:
    """Groups (symbol[, market]) of ``asset`` that an import can place in a partition: the universe's."""
    if asset == "market_bars_5m":
        return {(s, m) for s in UNIVERSE.symbols for m in ("spot", "perp")}
    if RAW_SCHEMAS[asset].partitioned_by_symbol:
        return {(s,) for s in UNIVERSE.symbols}
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
    return counts
