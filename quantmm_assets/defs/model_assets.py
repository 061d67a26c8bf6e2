"""Model assets: ``trained_backbones`` (one partition per backbone) and the ``backbone_report`` across them.

``trained_backbones`` runs the one experiment protocol (``models.experiment``) over every walk-forward fold,
evaluates it under the run's ``SignalConfig`` (``core.evaluation``), refits the most-chosen configuration on all
complete data minus the embargo (the pickled model of the run: what the registry issue promotes) and hands the run
to the ``MlflowTracking`` resource (params, config hash, signal config, feature-contract version, data partitions,
per-fold metrics, out-of-sample predictions, plots, the refit). Its lake value is the out-of-sample predictions.
"""

import json
import time
from typing import Any

import dagster as dg
import polars as pl

from quantmm_assets.core.evaluation.metrics import calibration_table, expected_calibration_error, fold_metrics
from quantmm_assets.core.evaluation.report import markdown_table, per_fold_means
from quantmm_assets.core.folds import FoldSpec
from quantmm_assets.core.signal import SignalConfig
from quantmm_assets.models.experiment import refit_final, walk_forward
from quantmm_assets.models.grids import grid_for
from quantmm_assets.models.registry import BACKBONES
from quantmm_assets.models.variants import VARIANTS
from quantmm_resources.lake import LakeLayout, LakeResource
from quantmm_resources.mlflow_tracking import MlflowTracking
from quantmm_resources.model_inputs import load_model_data

backbone_partitions = dg.StaticPartitionsDefinition(sorted(BACKBONES))


class TrainConfig(dg.Config):
    """What a training run covers and the signal it is evaluated under; the fold spec comes from
    ``walk_forward_folds``."""

    horizons: list[str] = ["1h", "4h", "1d", "7d"]
    variants: list[str] = list(VARIANTS)
    row_stride: int = 1  # keep every k-th 5m row per symbol (the labels overlap anyway)
    overrides_json: str = "{}"  # {"backbone": {"param": value}} applied over the default grid
    random_seed: int = 7
    refit: bool = True
    signal_score_threshold: dict[str, float] = {}  # per horizon; a horizon left out: 0
    signal_confidence_threshold: dict[str, float] = {}  # per horizon; a horizon left out: 0.5

    def signal_config(self) -> SignalConfig:
        """Return the run's :class:`SignalConfig` (DESIGN section 3)."""
        return SignalConfig(dict(self.signal_score_threshold), dict(self.signal_confidence_threshold))

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
    signal = config.signal_config()
    grid = grid_for(backbone, config.overrides(backbone), config.random_seed)
    context.log.info(f"{backbone}: {inputs.data.n} rows, {len(grid)} configuration(s), variants {config.variants}")
    tags = {"backbone": backbone, "feature_contract": inputs.contract_version, "fold_spec": spec.spec_hash()}
    with mlflow.run(backbone, tags=tags) as run:
        exp = walk_forward(
            backbone, grid, inputs.data, walk_forward_folds, inputs.symbols, tuple(config.variants), context.log.info
        )
        metrics = fold_metrics(exp.predictions, signal)
        summary = exp.summary(metrics)
        model, rows = refit_final(backbone, exp.chosen_params(), inputs.data, spec) if config.refit else (None, None)
        params = {
            **exp.run_params(),
            "feature_contract_version": inputs.contract_version,
            **{f"data.{k}": v for k, v in inputs.partitions.items()},
            **spec.to_params(),
            "horizons": ",".join(config.horizons),
            "row_stride": config.row_stride,
        }
        mlflow.log_backbone_run(params, signal, per_fold_means(metrics), exp.curves(), exp.predictions, model)
        if model is not None:
            summary["refit"] = {"n_train": len(rows.train), "config_hash": model.config_hash()}
        summary |= {
            "signal_config": signal.record(),
            "mlflow_run_id": run.info.run_id,
            "seconds": round(time.perf_counter() - started, 1),
        }
    lake.write_run_summary(backbone, summary)
    table = per_fold_means(metrics).filter(pl.col("variant") == "full")
    return dg.Output(
        exp.predictions,
        metadata={
            "mlflow_run_id": summary["mlflow_run_id"],
            "n_configs": exp.n_configs,
            "chosen_params": dg.MetadataValue.json(exp.chosen_params()),
            "signal_config": signal.config_hash(),
            "seconds": summary["seconds"],
            "oos_rows": exp.predictions.height,
            "per_fold_full": dg.MetadataValue.md(markdown_table(table)),
            "ece": dg.MetadataValue.md(markdown_table(expected_calibration_error(calibration_table(exp.predictions)))),
        },
    )
