"""``backbone_report``: one table ranking the trained backbones and the baselines per symbol and horizon.

It reads every materialized ``trained_backbones`` partition (the out-of-sample predictions) and the run summaries
beside them, adds the baselines (zero, momentum sign, Ridge on price) on the same folds and rows, and writes the
report as JSON and Markdown with its plots into ``lake/backbone_report/``, into the materialization metadata
and into an MLflow run.
"""

import json
import time
from pathlib import Path

import dagster as dg
import polars as pl

from quantmm_assets.core.evaluation import calibration_table, expected_calibration_error, fold_metrics
from quantmm_assets.core.evaluation_bootstrap import ablation_significance
from quantmm_assets.core.evaluation_plots import plot_calibration, plot_cumulative_pnl
from quantmm_assets.core.evaluation_report import ablation_table, rank_backbones, report_markdown
from quantmm_assets.defs.model_assets import TrainConfig, trained_backbones
from quantmm_assets.defs.model_inputs import load_model_data
from quantmm_assets.models.baselines import baseline_predictions
from quantmm_assets.models.registry import BACKBONES
from quantmm_resources.lake import LakeResource
from quantmm_resources.mlflow_tracking import MlflowTracking


def build_report(predictions: pl.DataFrame, n_configs: dict[str, int], out_dir: Path, n_boot: int = 300) -> dict:
    """Write report.json / report.md / plots into ``out_dir`` and return the JSON document."""
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics = fold_metrics(predictions)
    ranking = rank_backbones(metrics)
    ablation = ablation_table(metrics)
    cal = calibration_table(predictions)
    ece = expected_calibration_error(cal)
    trained = predictions.filter(pl.col("backbone").is_in(list(BACKBONES)))
    significance = ablation_significance(trained, "full", "no_text", "rank_ic", n_boot=n_boot)
    markdown = report_markdown(ranking, ablation, ece, n_configs, significance)
    doc = {
        "ranking": ranking.to_dicts(),
        "ablation": ablation.to_dicts(),
        "text_significance": significance.to_dicts(),
        "calibration_ece": ece.to_dicts(),
        "calibration_table": cal.to_dicts(),
        "fold_metrics": metrics.to_dicts(),
        "n_configs": n_configs,
    }
    (out_dir / "report.json").write_text(json.dumps(doc, indent=1, default=str))
    (out_dir / "report.md").write_text(markdown)
    plot_cumulative_pnl(predictions, out_dir / "cumulative_pnl.png", variants=["full"])
    plot_calibration(cal, out_dir / "calibration.png", variants=["full"])
    return doc | {"markdown": markdown}


@dg.asset(
    group_name="models",
    deps=[dg.AssetDep(trained_backbones, partition_mapping=dg.AllPartitionMapping())],
    kinds={"python", "mlflow"},
    description="The backbones and baselines ranked per symbol and horizon by mean after-cost Sharpe of the "
    "signal (ties: rank IC), with IC, rank IC, hit rate, MAE, turnover and max drawdown per fold, the ablations, "
    "the full - no_text significance and the confidence calibration; JSON and Markdown beside the lake and in "
    "MLflow.",
)
def backbone_report(
    context: dg.AssetExecutionContext,
    config: TrainConfig,
    walk_forward_folds: pl.DataFrame,
    lake: LakeResource,
    mlflow: MlflowTracking,
) -> dg.MaterializeResult:
    started = time.perf_counter()
    trained = lake.read_partitions("trained_backbones", sorted(BACKBONES))
    if trained.is_empty():
        raise ValueError("backbone_report: no trained_backbones partition is materialized")
    horizons = tuple(h for h in config.horizons if h in set(trained["horizon"].unique().to_list()))
    inputs = load_model_data(lake, horizons, config.row_stride)
    baselines = baseline_predictions(inputs.data, walk_forward_folds, inputs.symbols)
    predictions = pl.concat([trained, baselines.select(trained.columns)])
    summaries = lake.run_summaries()
    n_configs = {b: int(s["n_configs"]) for b, s in summaries.items()}
    n_configs |= dict.fromkeys(baselines["backbone"].unique().to_list(), 1)
    out_dir = lake.report_dir()
    doc = build_report(predictions, n_configs, out_dir)
    with mlflow.run("backbone_report", tags={"kind": "report"}):
        for name in ("report.json", "report.md", "cumulative_pnl.png", "calibration.png"):
            mlflow.log_file(out_dir / name, "report")
    backbones = sorted(trained["backbone"].unique().to_list())
    context.log.info(f"backbone_report: {len(backbones)} backbones + baselines in {time.perf_counter() - started:.1f}s")
    return dg.MaterializeResult(
        metadata={
            "backbones": ", ".join(backbones),
            "report": dg.MetadataValue.md(doc["markdown"]),
            "report_json": dg.MetadataValue.path(str(out_dir / "report.json")),
            "cumulative_pnl": dg.MetadataValue.path(str(out_dir / "cumulative_pnl.png")),
        }
    )


MODEL_ASSETS = [trained_backbones, backbone_report]
