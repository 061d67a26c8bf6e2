"""``make demo``: the main job on the embedded default (SQLite instance, local lake, synthetic sample).

Grows with each issue until it runs the whole graph. Today: the raw layer over the last ``history`` days plus
today's partial partition; the whole feature layer (macro, text items, bucket features, text latents, the feature
matrix with its leakage checks) and the labels over that history; the walk-forward folds with their hygiene check;
the readiness audit; three backbones (Ridge, LightGBM, TSMixer) through the walk-forward protocol with their
ablations and MLflow runs; and the backbone report beside the baselines.

The demo embeds text with the hashing encoder unless QUANTMM_TEXT_ENCODER is set: MiniLM over 45 days of synthetic
posts would take minutes on 2 cores (one encoder per lake: the latents of different encoders never mix). It passes
that choice in its own settings object; the environment is left as it was.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta

import dagster as dg
import polars as pl

from quantmm_assets.core.readiness.audit import to_markdown
from quantmm_assets.defs.partitions import partition_symbols
from quantmm_assets.defs.readiness import default_plot_path, readiness_report
from quantmm_jobs.cli.demo_registry import show_gates_and_promote
from quantmm_jobs.cli.demo_strong import run_strong_world
from quantmm_jobs.cli.printing import print_runs
from quantmm_jobs.cli.runs import instance_for, run_candidates, run_features, run_raw, run_training
from quantmm_resources.environment import build_resources
from quantmm_resources.lake import REPORT_JSON, REPORT_MARKDOWN, Lake
from quantmm_resources.settings import get_settings

# Two purged walk-forward folds of 3 test days (purge = the 7-day label horizon) fit in 45 days of history.
DEMO_FOLDS = {"n_folds": 2, "test_days": 3, "min_train_days": 20, "inner_k": 2}
DEMO_BACKBONES = ["ridge", "lightgbm", "tsmixer"]
# Half-hourly rows, three horizons, small step budgets: the model layer in about a minute on 2 cores.
DEMO_TRAINING = {
    "horizons": ["1h", "4h", "1d"],
    "row_stride": 6,
    "overrides_json": json.dumps({"tsmixer": {"max_steps": 60, "batch_size": 256}}),
}


def run_demo(symbols: list[str] | None = None, history: int = 45) -> int:
    settings = get_settings()
    if "QUANTMM_TEXT_ENCODER" not in os.environ:
        settings = settings.model_copy(update={"text_encoder": "hashing"})
    if settings.env == "prod":
        raise ValueError("the demo runs on the embedded default; in production use the schedules (make ui)")
    symbols = symbols or partition_symbols()
    instance = instance_for(settings)
    resources = build_resources(settings)
    today = datetime.now(UTC).date()
    first = today - timedelta(days=history)
    print(
        f"quantmm demo: home {settings.home}  source {settings.resolved_source}  "
        f"instance {type(instance.run_storage).__name__}  text encoder {settings.text_encoder}"
    )
    print(f"raw layer: {first} .. {today} (today is partial) x {', '.join(symbols)}")
    runs = run_raw(first, today, symbols, resources, instance)
    print(f"the whole feature layer and the labels: {first} .. {today}")
    runs += run_features(first, today, symbols, resources, instance, fold_config=DEMO_FOLDS)
    if all(r.success for r in runs):
        print(f"backbones {', '.join(DEMO_BACKBONES)}: walk-forward, ablations, MLflow runs; then the report")
        runs += run_training(DEMO_BACKBONES, resources, instance, DEMO_TRAINING)
    if all(r.success for r in runs):
        print("candidates: register the best-ranked refit per symbol x horizon in MLflow and run its three gates")
        runs += run_candidates(symbols, DEMO_TRAINING["horizons"], resources, instance)
    print_runs(runs)
    lake = Lake(settings.lake_dir)
    _show_features(lake, instance, today, symbols[0])
    report = readiness_report(lake, "research", history + 1, plot=default_plot_path(lake, "research"))
    print("\n" + to_markdown(report).split("\nBackfill")[0])
    print(f"daily coverage heatmap: {report['plot']}")
    print(f"\nlake: {settings.lake_dir}   operational store: {settings.resolved_ops_url}")
    for asset in sorted({a for r in runs for a in r.assets}):
        key = dg.AssetKey(asset)
        parts = instance.get_materialized_partitions(key) if asset not in UNPARTITIONED else {"-"}
        print(f"  {asset:<22} {len(parts):>5} partitions materialized on the instance")
    _show_report(lake)
    if all(r.success for r in runs):
        show_gates_and_promote(settings, instance, resources["registry"], symbols, DEMO_TRAINING["horizons"])
    ok = all(r.success for r in runs) and run_strong_world(settings)
    print(
        f"MLflow runs: {settings.resolved_mlflow_uri} (`mlflow ui --backend-store-uri {settings.resolved_mlflow_uri}`)"
    )
    print("next: `make ui` to browse the runs, checks and partitions in the Dagster UI")
    return 0 if ok else 1


UNPARTITIONED = {"walk_forward_folds", "backbone_report"}


def _show_report(lake: Lake) -> None:
    """Print the head of the backbone report (ranking of the first symbol per horizon)."""
    path = lake.report_file(REPORT_JSON)
    if not path.exists():
        return
    doc = json.loads(path.read_text())
    ranking = pl.DataFrame(doc["ranking"])
    first = ranking["symbol"].min()
    print(f"\nbackbone report ({lake.report_file(REPORT_MARKDOWN)}), ranking for {first}:")
    cols = ["horizon", "rank", "backbone", "verdict", "evidence_sharpe", "n_counted", "n_windows", "n_held"]
    cols += ["mean_rank_ic", "mean_hit_rate"]
    print(doc.get("evidence_rule", ""))
    with pl.Config(tbl_rows=40, tbl_cols=12, fmt_str_lengths=24, tbl_width_chars=200):
        print(ranking.filter(pl.col("symbol") == first).select(cols))


def _show_features(lake: Lake, instance: dg.DagsterInstance, today, symbol: str) -> None:
    """Print the feature contract, the newest matrix row of ``symbol`` and the folds."""
    event = instance.get_latest_materialization_event(dg.AssetKey("feature_matrix_main"))
    if event is None:
        return
    contract = lake.feature_contract()
    print(f"\nfeature contract {contract['version']}: {len(contract['columns'])} features")
    path = lake.partition_file("feature_matrix_main", f"{today}|{symbol}")
    if path.exists():
        row = pl.read_parquet(path).tail(1)
        shown = ["ts_event", "ret_1h", "rv_1d", "funding_rate", "basis_rate", "macro_vix", "sym_sentiment_1h"]
        print(f"newest row of {symbol}:")
        print(row.select([c for c in shown if c in row.columns]))
        if row["post_latent"][0] is not None:
            print(f"  post latent: {len(row['post_latent'][0])} dims from {row['post_n'][0]} posts in the last hour")
    folds_path = lake.partition_file("walk_forward_folds")
    if folds_path.exists():
        folds = pl.read_parquet(folds_path).filter(pl.col("kind") == "walk_forward")
        print("walk-forward folds (purged by the 7d horizon, 1d embargo):")
        print(folds.select("fold", "role", "start", "end"))
