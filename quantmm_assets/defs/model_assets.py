"""Model assets: ``trained_backbones`` (one partition per backbone) and the ``backbone_report`` across them.

``trained_backbones`` runs the one experiment protocol (``models.experiment``) over every walk-forward fold,
logs the run to MLflow (params, config hash, feature-contract version, data partitions, per-fold metrics,
out-of-sample predictions, plots) and refits the most-chosen configuration on all complete data minus the
embargo (the pickled model of the run: what the registry issue promotes). Its lake value is the out-of-sample
predictions frame.
"""

import json
import tempfile
import time
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl

from quantmm_assets.core.evaluation import calibration_table, expected_calibration_error, fold_metrics
from quantmm_assets.core.evaluation_plots import plot_calibration, plot_cumulative_pnl
from quantmm_assets.core.evaluation_report import markdown_table
from quantmm_assets.core.folds import FoldSpec
from quantmm_assets.defs.model_inputs import load_model_data
from quantmm_assets.models.experiment import Experiment, refit_final, walk_forward
from quantmm_assets.models.grids import grid_for
from quantmm_assets.models.registry import BACKBONES
from quantmm_assets.models.variants import VARIANTS
from quantmm_resources.lake import LakeLayout, LakeResource
from quantmm_resources.mlflow_tracking import MlflowTracking

backbone_partitions = dg.StaticPartitionsDefinition(sorted(BACKBONES))


class TrainConfig(dg.Config):
    """What a training run covers; the fold spec comes from ``walk_forward_folds``."""

    horizons: list[str] = ["1h", "4h", "1d", "7d"]
    variants: list[str] = list(VARIANTS)
    row_stride: int = 1  # keep every k-th 5m row per symbol (the labels overlap anyway)
    overrides_json: str = "{}"  # {"backbone": {"param": value}} applied over the default grid
    random_seed: int = 7
    refit: bool = True

    def overrides(self, backbone: str) -> dict[str, Any]:
        try:
            parsed = json.loads(self.overrides_json or "{}")
        except json.JSONDecodeError as exc:
            raise ValueError(f"overrides_json is not valid JSON: {exc}") from exc
        if not isinstance(parsed, dict):
            raise ValueError("overrides_json must be a JSON object {backbone: {param: value}}")
        return parsed.get(backbone, {})


def fold_spec(lake: LakeLayout) -> FoldSpec:
    """Return the spec ``walk_forward_folds`` wrote beside its output."""
    return FoldSpec.from_plain(lake.fold_spec())


def _per_fold_metrics(metrics: pl.DataFrame) -> pl.DataFrame:
    """Mean over symbols of the headline metrics per (variant, fold, horizon)."""
    cols = ["sharpe", "rank_ic", "ic", "hit_rate", "mae", "turnover", "max_drawdown"]
    return (
        metrics.group_by("variant", "fold", "horizon")
        .agg([pl.col(c).mean() for c in cols])
        .sort("variant", "fold", "horizon")
    )


def _log_run(mlflow: MlflowTracking, exp: Experiment, metrics: pl.DataFrame, tmp: Path) -> None:
    """Log the per-fold metrics, validation curves, predictions and plots of ``exp`` to the active run."""
    for r in _per_fold_metrics(metrics).iter_rows(named=True):
        values = {f"{r['variant']}.{r['horizon']}.{k}": r[k] for k in r if k not in ("variant", "fold", "horizon")}
        mlflow.log_metrics(values, step=int(r["fold"]))
    for rec in exp.folds:
        mlflow.log_metrics({f"fit_seconds.{v}": s for v, s in rec.fit_seconds.items()}, step=rec.fold)
        for step, loss in rec.diagnostics.get("full", {}).get("val_curve", []):
            mlflow.log_metrics({f"fold{rec.fold}.val_loss": loss}, step=int(step))
    exp.predictions.write_parquet(tmp / "oos_predictions.parquet")
    cal = calibration_table(exp.predictions)
    cal.write_csv(tmp / "calibration.csv")
    for path in (
        tmp / "oos_predictions.parquet",
        tmp / "calibration.csv",
        plot_cumulative_pnl(exp.predictions, tmp / "cumulative_pnl.png"),
        plot_calibration(cal, tmp / "calibration.png"),
    ):
        mlflow.log_file(Path(path), "evaluation")


def _summary(exp: Experiment, metrics: pl.DataFrame) -> dict[str, Any]:
    full = metrics.filter(pl.col("variant") == "full")
    by_h = full.group_by("horizon").agg(pl.col("sharpe", "rank_ic", "mae").mean()).sort("horizon")
    return {
        "n_configs": exp.n_configs,
        "chosen_params": exp.chosen_params(),
        "folds": [
            {
                "fold": r.fold,
                "params": r.params,
                "inner_scores": r.inner_scores,
                "fit_seconds": r.fit_seconds,
                "n_train": r.n_train,
                "n_test": r.n_test,
                "improved": r.diagnostics.get("full", {}).get("improved"),
            }
            for r in exp.folds
        ],
        "full_by_horizon": by_h.to_dicts(),
    }


@dg.asset(
    partitions_def=backbone_partitions,
    group_name="models",
    # every backbone reads every materialized partition of the matrix and labels
    deps=[
        dg.AssetDep(a, partition_mapping=dg.AllPartitionMapping())
        for a in ("feature_matrix_main", "labels_multi_horizon")
    ],
    io_manager_key="lake_io_manager",
    kinds={"python", "mlflow"},
    description="One backbone through the one protocol: nested tuning on the inner purged k-fold, every "
    "walk-forward fold, the ablations (full / no_text / no_macro / event_window), an MLflow run with its "
    "metrics, predictions and plots, and the refit on all complete data minus the embargo. Value: the "
    "out-of-sample predictions.",
)
def trained_backbones(
    context: dg.AssetExecutionContext,
    config: TrainConfig,
    walk_forward_folds: pl.DataFrame,
    lake: LakeResource,
    mlflow: MlflowTracking,
) -> dg.Output:
    backbone = context.partition_key
    started = time.perf_counter()
    inputs = load_model_data(lake, tuple(config.horizons), config.row_stride)
    spec = fold_spec(lake)
    grid = grid_for(backbone, config.overrides(backbone), config.random_seed)
    context.log.info(f"{backbone}: {inputs.data.n} rows, {len(grid)} configuration(s), variants {config.variants}")
    tags = {"backbone": backbone, "feature_contract": inputs.contract_version, "fold_spec": spec.spec_hash()}
    with mlflow.run(backbone, tags=tags) as run, tempfile.TemporaryDirectory() as tmp:
        exp = walk_forward(
            backbone, grid, inputs.data, walk_forward_folds, inputs.symbols, tuple(config.variants), context.log.info
        )
        metrics = fold_metrics(exp.predictions)
        chosen = exp.chosen_params()
        model_params = BACKBONES[backbone](**chosen).get_params()
        mlflow.log_params(
            {
                **{f"model.{k}": v for k, v in model_params.items()},
                "backbone": backbone,
                "config_hash": BACKBONES[backbone](**chosen).config_hash(),
                "n_configs": exp.n_configs,
                "feature_contract_version": inputs.contract_version,
                **{f"data.{k}": v for k, v in inputs.partitions.items()},
                **spec.to_params(),
                "horizons": ",".join(config.horizons),
                "row_stride": config.row_stride,
            }
        )
        _log_run(mlflow, exp, metrics, Path(tmp))
        summary = _summary(exp, metrics)
        if config.refit:
            model, rows = refit_final(backbone, chosen, inputs.data, spec)
            mlflow.log_pickle(model, "model/backbone.pkl")
            summary["refit"] = {"n_train": len(rows.train), "config_hash": model.config_hash()}
        summary |= {"mlflow_run_id": run.info.run_id, "seconds": round(time.perf_counter() - started, 1)}
    lake.write_run_summary(backbone, summary)
    table = _per_fold_metrics(metrics).filter(pl.col("variant") == "full")
    return dg.Output(
        exp.predictions,
        metadata={
            "mlflow_run_id": summary["mlflow_run_id"],
            "n_configs": exp.n_configs,
            "chosen_params": dg.MetadataValue.json(chosen),
            "seconds": summary["seconds"],
            "oos_rows": exp.predictions.height,
            "per_fold_full": dg.MetadataValue.md(markdown_table(table)),
            "ece": dg.MetadataValue.md(markdown_table(expected_calibration_error(calibration_table(exp.predictions)))),
        },
    )
