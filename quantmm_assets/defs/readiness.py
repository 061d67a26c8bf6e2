"""``readiness_audit``: coverage of each data kind over the production (420 d) or research window."""

import json
from datetime import UTC, date, datetime
from pathlib import Path

import dagster as dg
import polars as pl

from quantmm_assets.core.readiness.audit import audit, to_markdown, window_for
from quantmm_assets.core.readiness.grid import coverage_grid
from quantmm_assets.defs.partitions import first_partition_day
from quantmm_assets.defs.raw_assets import RAW_ASSETS
from quantmm_resources.lake import LakeLayout, LakeResource
from quantmm_resources.lake_views import daily_counts
from quantmm_resources.readiness_plot import plot_coverage
from quantmm_resources.settings import get_settings


class ReadinessConfig(dg.Config):
    mode: str = "production"  # production (lookback_days) | research (full history)
    lookback_days: int = 420


def readiness_report(
    lake: LakeLayout, mode: str, lookback_days: int, today: date | None = None, plot: Path | None = None
) -> dict:
    """Audit the lake as it is now (shared by the asset and `quantmm readiness`); with ``plot``, also write the
    daily coverage heatmap there and name it in the report."""
    counts = daily_counts(lake)
    universe = get_settings().universe()
    earliest = counts["date"].min() if len(counts) else first_partition_day()
    window = window_for(mode, today or datetime.now(UTC).date(), lookback_days, earliest)
    report = audit(counts, universe, window)
    if plot is not None:
        title = f"Readiness ({mode}) {window.start} .. {window.end}"
        report["plot"] = str(plot_coverage(coverage_grid(counts, universe, window), title, plot))
    return report


def default_plot_path(lake: LakeLayout, mode: str) -> Path:
    """``reports/readiness_<mode>.png`` beside the lake."""
    return lake.reports_dir() / f"readiness_{mode}.png"


@dg.asset(
    group_name="readiness",
    deps=RAW_ASSETS,
    io_manager_key="lake_io_manager",
    kinds={"duckdb"},
    description="Coverage of each modality over a window, missing data kinds and the backfills that fill them.",
)
def readiness_audit(context: dg.AssetExecutionContext, config: ReadinessConfig, lake: LakeResource) -> dg.Output:
    report = readiness_report(lake, config.mode, config.lookback_days, plot=default_plot_path(lake, config.mode))
    table = pl.DataFrame(
        [
            {"kind": k, "asset": v["asset"], "coverage": v["coverage"], "ready": v["ready"]}
            for k, v in report["kinds"].items()
        ]
    )
    context.log.info(to_markdown(report))
    return dg.Output(
        table,
        metadata={
            "mode": report["mode"],
            "window": " .. ".join(report["window"]),
            "ready": report["ready"],
            "missing_kinds": ", ".join(report["missing_kinds"]) or "none",
            "report": dg.MetadataValue.md(to_markdown(report)),
            "coverage_plot": dg.MetadataValue.path(report["plot"]),
            "backfills": dg.MetadataValue.json(json.loads(json.dumps(report["backfills"][:50]))),
        },
    )
