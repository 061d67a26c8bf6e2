"""``make demo``: the main job on the embedded default (SQLite instance, local lake, synthetic sample).

Grows with each issue until it runs the whole graph. Today: the raw layer over the last ``history`` days plus
today's partial partition; market features and labels over that history; the whole feature layer (macro, text
items, bucket features, MiniLM latents, the feature matrix with its leakage checks) over the last ``days`` days;
the walk-forward folds with their hygiene check; the readiness audit; and a summary of what was materialized.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import dagster as dg
import polars as pl

from quantmm_assets.core.readiness import to_markdown
from quantmm_assets.core.text_features import TEXT_LOOKBACK_DAYS
from quantmm_assets.defs.feature_assets import derivatives_features, macro_features, market_features
from quantmm_assets.defs.matrix_assets import feature_matrix_main, labels_multi_horizon, walk_forward_folds
from quantmm_assets.defs.partitions import UNIVERSE
from quantmm_assets.defs.readiness import default_plot_path, readiness_report
from quantmm_assets.defs.text_assets import text_bucket_features, text_items, text_latents
from quantmm_jobs.cli import print_runs
from quantmm_jobs.runs import instance_for, run_range, run_raw, run_unpartitioned
from quantmm_resources.environment import build_resources
from quantmm_resources.lake_views import LakeResource
from quantmm_resources.settings import get_settings

# Two purged walk-forward folds of 3 test days (purge = the 7-day label horizon) fit in 45 days of history.
DEMO_FOLDS = {"n_folds": 2, "test_days": 3, "min_train_days": 20, "inner_k": 2}


def run_demo(days: int = 3, symbols: list[str] | None = None, history: int = 45) -> int:
    settings = get_settings()
    if settings.env == "prod":
        raise ValueError("the demo runs on the embedded default; in production use the schedules (make ui)")
    symbols = symbols or UNIVERSE.symbols
    instance = instance_for(settings)
    resources = build_resources(settings)
    today = datetime.now(UTC).date()
    first, recent = today - timedelta(days=history), today - timedelta(days=days - 1)
    print(
        f"quantmm demo: home {settings.home}  source {settings.resolved_source}  "
        f"instance {type(instance.run_storage).__name__}  text encoder {settings.text_encoder}"
    )
    print(f"raw layer: {first} .. {today} (today is partial) x {', '.join(symbols)}")
    runs = run_raw(first, today, symbols, resources, instance)
    print(f"market features and labels: {first} .. {today}; the whole feature layer: {recent} .. {today}")
    runs += [
        run_range([market_features, labels_multi_horizon], first, today, symbols, resources, instance),
        run_range([macro_features], recent, today, None, resources, instance),
        run_range([text_items], recent - timedelta(days=TEXT_LOOKBACK_DAYS), today, symbols, resources, instance),
        run_range(
            [derivatives_features, text_bucket_features, text_latents, feature_matrix_main],
            recent,
            today,
            symbols,
            resources,
            instance,
        ),
    ]
    runs.append(run_unpartitioned([walk_forward_folds], resources, instance, DEMO_FOLDS))
    print_runs(runs)
    _show_features(settings.lake_dir, instance, today, symbols[0])
    lake = LakeResource(base_dir=str(settings.lake_dir))
    report = readiness_report(lake, "research", history + 1, plot=default_plot_path(lake, "research"))
    print("\n" + to_markdown(report).split("\nBackfill")[0])
    print(f"daily coverage heatmap: {report['plot']}")
    print(f"\nlake: {settings.lake_dir}   operational store: {settings.resolved_ops_url}")
    for asset in sorted({a for r in runs for a in r.assets}):
        parts = instance.get_materialized_partitions(dg.AssetKey(asset)) if asset != "walk_forward_folds" else {"-"}
        print(f"  {asset:<22} {len(parts):>5} partitions materialized on the instance")
    print("next: `make ui` to browse the runs, checks and partitions in the Dagster UI")
    return 0 if all(r.success for r in runs) else 1


def _show_features(lake, instance: dg.DagsterInstance, today, symbol: str) -> None:
    """Print the feature contract, the newest matrix row of ``symbol`` and the folds."""
    event = instance.get_latest_materialization_event(dg.AssetKey("feature_matrix_main"))
    if event is None:
        return
    contract = json.loads((lake / "feature_matrix_main" / "contract.json").read_text())
    print(f"\nfeature contract {contract['version']}: {len(contract['columns'])} features")
    path = lake / "feature_matrix_main" / f"date={today}" / f"symbol={symbol}" / "data.parquet"
    if path.exists():
        row = pl.read_parquet(path).tail(1)
        shown = ["ts_event", "ret_1h", "rv_1d", "funding_rate", "basis_rate", "macro_vix", "sym_sentiment_1h"]
        print(f"newest row of {symbol}:")
        print(row.select([c for c in shown if c in row.columns]))
        if row["post_latent"][0] is not None:
            print(f"  post latent: {len(row['post_latent'][0])} dims from {row['post_n'][0]} posts in the last hour")
    folds_path = lake / "walk_forward_folds" / "data.parquet"
    if folds_path.exists():
        folds = pl.read_parquet(folds_path).filter(pl.col("kind") == "walk_forward")
        print("walk-forward folds (purged by the 7d horizon, 1d embargo):")
        print(folds.select("fold", "role", "start", "end"))
