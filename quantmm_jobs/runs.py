"""Run raw-asset materializations in-process on the Dagster instance: one single-run backfill per
partitions definition (date x symbol, and date) over a range of partitions."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from datetime import date

import dagster as dg

from quantmm_assets.defs.partitions import UNIVERSE
from quantmm_assets.defs.raw_assets import RAW_DATE_ASSETS, RAW_MARKET_ASSETS
from quantmm_jobs.schedules import range_tags
from quantmm_resources.environment import ensure_dagster_home
from quantmm_resources.settings import QuantmmSettings


@dataclass
class RangeRun:
    """What one single-run backfill did."""

    assets: list[str]
    partition_range: str
    partitions: int
    success: bool
    wall_seconds: float
    rows: dict[str, int]
    rejected: dict[str, int]
    checks: dict[str, str]  # "asset:check" -> "passed" or "FAILED: <description>"
    run_id: str


def instance_for(settings: QuantmmSettings) -> dg.DagsterInstance:
    """The persistent instance under $QUANTMM_HOME/dagster (SQLite) or PostgreSQL (DAGSTER_PG_URL)."""
    return dg.DagsterInstance.from_config(str(ensure_dagster_home(settings)))


def symbol_span(symbols: list[str]) -> tuple[str, str]:
    """First and last of ``symbols`` in universe order (a range covers everything between)."""
    ordered = sorted(symbols, key=UNIVERSE.symbols.index)
    return ordered[0], ordered[-1]


def run_range(
    assets: list[dg.AssetsDefinition],
    start: date,
    end: date,
    symbols: list[str] | None,
    resources: dict,
    instance: dg.DagsterInstance,
    log_level: str = "INFO",
) -> RangeRun:
    """Materialize ``assets`` over [start, end] (inclusive days; x symbols when given) in one run."""
    if symbols:
        first, last = symbol_span(symbols)
        start_key, end_key = f"{start}|{first}", f"{end}|{last}"
    else:
        start_key, end_key = str(start), str(end)
    names = ", ".join(a.key.to_user_string() for a in assets)
    print(f"materializing {names} over {start_key}...{end_key} in one run", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    result = dg.materialize(
        assets,
        resources=resources,
        instance=instance,
        tags=range_tags(start_key, end_key),
        raise_on_error=False,
        run_config={"loggers": {"console": {"config": {"log_level": log_level}}}},
    )
    wall = time.perf_counter() - t0
    rows, rejected, checks, partitions = {}, {}, {}, 0
    for mat in result.get_asset_materialization_events():
        m = mat.step_materialization_data.materialization
        name = m.asset_key.to_user_string()
        md = m.metadata
        if "run_rows" in md:
            rows[name] = md["run_rows"].value
            rejected[name] = md["run_rejected_rows"].value
            partitions = md["run_partitions"].value
    for ev in result.get_asset_check_evaluations():
        checks[f"{ev.asset_key.to_user_string()}:{ev.check_name}"] = (
            "passed" if ev.passed else f"FAILED: {ev.description}"
        )
    return RangeRun(
        [a.key.to_user_string() for a in assets],
        f"{start_key}...{end_key}",
        partitions,
        result.success,
        wall,
        rows,
        rejected,
        checks,
        result.run_id,
    )


def run_raw(
    start: date,
    end: date,
    symbols: list[str],
    resources: dict,
    instance: dg.DagsterInstance,
    market_assets: list[dg.AssetsDefinition] | None = None,
    date_assets: list[dg.AssetsDefinition] | None = None,
) -> list[RangeRun]:
    """The raw layer over a date range: one run for date x symbol assets, one for date assets."""
    market_assets = RAW_MARKET_ASSETS if market_assets is None else market_assets
    date_assets = RAW_DATE_ASSETS if date_assets is None else date_assets
    runs = []
    if market_assets:
        runs.append(run_range(market_assets, start, end, symbols, resources, instance))
    if date_assets:
        runs.append(run_range(date_assets, start, end, None, resources, instance))
    return runs
