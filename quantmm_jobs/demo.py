"""``make demo``: the main job on the embedded default (SQLite instance, local lake, synthetic sample).

Grows with each issue until it runs the whole graph. Today: the raw layer over the last few complete days
plus today's partial partition, the readiness audit, and a summary of what was materialized.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg

from quantmm_assets.core.readiness import to_markdown
from quantmm_assets.defs.partitions import UNIVERSE
from quantmm_assets.defs.readiness import default_plot_path, readiness_report
from quantmm_jobs.cli import print_runs
from quantmm_jobs.runs import instance_for, run_raw
from quantmm_resources.environment import build_resources
from quantmm_resources.lake_views import LakeResource
from quantmm_resources.settings import get_settings


def run_demo(days: int = 3, symbols: list[str] | None = None) -> int:
    settings = get_settings()
    if settings.env == "prod":
        raise ValueError("the demo runs on the embedded default; in production use the schedules (make ui)")
    symbols = symbols or UNIVERSE.symbols
    instance = instance_for(settings)
    today = datetime.now(UTC).date()
    start = today - timedelta(days=days)
    print(
        f"quantmm demo: home {settings.home}  source {settings.resolved_source}  "
        f"instance {type(instance.run_storage).__name__}"
    )
    print(f"raw layer: {start} .. {today} (today is partial) x {', '.join(symbols)}")
    runs = run_raw(start, today, symbols, build_resources(settings), instance)
    print_runs(runs)
    lake = LakeResource(base_dir=str(settings.lake_dir))
    report = readiness_report(lake, "research", days + 1, plot=default_plot_path(lake, "research"))
    print("\n" + to_markdown(report).split("\nBackfill")[0])
    print(f"daily coverage heatmap: {report['plot']}")
    print(f"\nlake: {settings.lake_dir}   operational store: {settings.resolved_ops_url}")
    for asset in sorted(a for r in runs for a in r.assets):
        parts = instance.get_materialized_partitions(dg.AssetKey(asset))
        print(f"  {asset:<22} {len(parts):>5} partitions materialized on the instance")
    print("next: `make ui` to browse the runs, checks and partitions in the Dagster UI")
    return 0 if all(r.success for r in runs) else 1
