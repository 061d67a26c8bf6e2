"""``python -m bench ingest``: import ../shared/data's 5m spot + perp bars, funding and mark prices for the
five symbols through one single-run backfill on the embedded (SQLite) instance, and print figures."""

from __future__ import annotations

import resource
import tempfile
import time
from pathlib import Path

from bench.common import DEFAULT_DATA, bench_settings
from quantmm_assets.defs.raw_assets import derivatives_metrics, funding_rates, market_bars_5m
from quantmm_jobs.cli.bundle_import import plan_import
from quantmm_jobs.cli.runs import instance_for, run_range
from quantmm_resources.environment import build_resources
from quantmm_resources.sources.bundle import bundle_coverage


def bench_ingest(data_dir: Path | None = None) -> dict:
    data_dir = data_dir or DEFAULT_DATA
    bars_dir = data_dir / "binance_usdt_5m"
    if not bars_dir.is_dir():
        raise FileNotFoundError(f"bench data not found: {bars_dir}")
    with tempfile.TemporaryDirectory(prefix="quantmm-bench-") as home:
        settings = bench_settings(Path(home))
        t0 = time.perf_counter()
        coverage = bundle_coverage(bars_dir)
        t_scan = time.perf_counter() - t0
        assets, lo, hi, symbols = plan_import(
            coverage, [market_bars_5m, funding_rates, derivatives_metrics], None, None, None
        )
        instance = instance_for(settings)
        run = run_range(assets, lo, hi, symbols, build_resources(settings, "bundle", bars_dir), instance)
        rows = sum(run.rows.values())
        step = _step_seconds(instance, run.run_id)
        return {
            "bench": "ingest",
            "data": str(bars_dir),
            "assets": run.assets,
            "partition_range": run.partition_range,
            "partitions_per_asset": run.partitions,
            "success": run.success,
            "rows_to_lake": run.rows,
            "rows_quarantined": run.rejected,
            "file_scan_and_parse_seconds": round(t_scan, 2),
            "run_wall_seconds": round(run.wall_seconds, 2),
            "wall_seconds_total": round(t_scan + run.wall_seconds, 2),
            "rows_per_second": round(rows / (t_scan + run.wall_seconds)),
            "in_step_seconds": step,
            "dagster_overhead_seconds": round(
                run.wall_seconds - sum(v for s in step.values() for v in s.values() if v is not None), 2
            ),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "checks": run.checks,
            "target": "under 120 s on the 2-core machine",
        }


def _step_seconds(instance, run_id: str) -> dict:
    """fetch / normalize seconds per asset as recorded in the run's materialization metadata."""
    import dagster as dg

    out = {}
    for rec in instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION).records:
        m = rec.event_log_entry.dagster_event.step_materialization_data.materialization
        md = m.metadata
        name = m.asset_key.to_user_string()
        if name not in out and "fetch_seconds" in md:
            out[name] = {
                "fetch": md["fetch_seconds"].value,
                "normalize": md["normalize_seconds"].value,
                "write_parquet": md["write_seconds"].value if "write_seconds" in md else None,
            }
    return out
