"""Model assets: ``trained_backbones`` (one partition per backbone) and the ``backbone_report`` across them.

``trained_backbones`` runs the one experiment protocol (``models.experiment``) over every walk-forward fold,
evaluates it under the run's ``SignalConfig`` (``core.evaluation``), refits the most-chosen configuration on all
complete data minus the embargo (the pickled model of the run: what the registry issue promotes) and hands the run
to the ``MlflowTracking`` resource (params, config hash, signal config, feature-contract version, data partitions,
per-fold metrics, out-of-sample predictions, plots, the refit). Its lake value is the out-of-sample predictions.
"""

import json
import time
from datetime import UTC, datetime
from typing import Any

import dagster as dg
import polars as pl

from quantmm_assets.core.evaluation.metrics import calibration_table, expected_calibration_error, fold_metrics
from quantmm_assets.core.evaluation.report import markdown_table, per_fold_means
from quantmm_assets.core.folds import FoldSpec
from quantmm_assets.core.signal import SignalConfig
from quantmm_assets.defs.training_lineage import label_cost_configs, lineage_document, vouched_inputs
from quantmm_assets.models.experiment import refit_final, walk_forward
from quantmm_assets.models.finetune import all_keys, grid_for_key, parse_key
from quantmm_assets.models.variants import VARIANTS
from quantmm_resources.lake import LakeLayout, LakeResource
from quantmm_resources.mlflow_tracking import MlflowTracking
from quantmm_resources.model_inputs import LakeModelData, load_model_data

# each backbone and its fine-tune attempts (``<backbone>~ft<k>``, models.finetune)
backbone_partitions = dg.StaticPartitionsDefinition(all_keys())


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
    # partitions no passing run vouches for: "refuse" to train (naming them), or "exclude" them and record which
    unvouched_partitions: str = "refuse"

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
    pool="quantmm_models",  # training, registration and promotion never run at once (dagster.yaml: limit 1)
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
    key = context.partition_key
    backbone, attempt = parse_key(key)
    started = time.perf_counter()
    vouched = vouched_inputs(context.instance, lake, config.unvouched_partitions)
    if vouched.excluded:
        context.log.warning(
            f"{backbone}: {len(vouched.excluded)} partition(s) left out (not vouched for by a passing run): "
            f"{', '.join(vouched.excluded[:10])}{' ...' if len(vouched.excluded) > 10 else ''}"
        )
    inputs = load_model_data(lake, tuple(config.horizons), config.row_stride, vouched.partitions)
    spec = fold_spec(lake)
    signal = config.signal_config()
    grid = grid_for_key(key, config.overrides(backbone), config.random_seed)
    context.log.info(f"{key}: {inputs.data.n} rows, {len(grid)} configuration(s), variants {config.variants}")
    tags = {"backbone": backbone, "feature_contract": inputs.contract_version, "fold_spec": spec.spec_hash()}
    tags |= {"finetune_attempt": str(attempt)}
    with mlflow.run(key, tags=tags) as run:
        exp = walk_forward(
            backbone, grid, inputs.data, walk_forward_folds, inputs.symbols, tuple(config.variants), context.log.info
        )
        exp.predictions = exp.predictions.with_columns(backbone=pl.lit(key))  # an attempt is a configuration of its own
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
        lineage = lineage_document(
            backbone=key,
            train_config=config.model_dump(),
            model_params=exp.run_params(),
            signal=signal,
            contract_version=inputs.contract_version,
            text_encoder=inputs.partitions["text_encoder"],
            fold_spec={k: str(v) for k, v in spec.to_params().items()},
            fold_spec_hash=spec.spec_hash(),
            window=_window(inputs, rows),
            inputs=vouched,
            cost_configs=label_cost_configs(context.instance, vouched.vouches),
        )
        lineage_hash = mlflow.log_lineage(lineage)
        if model is not None:
            summary["refit"] = {"n_train": len(rows.train), "config_hash": model.config_hash()}
        summary |= {
            "signal_config": signal.record(),
            "mlflow_run_id": run.info.run_id,
            "lineage_hash": lineage_hash,
            "partitions_excluded": vouched.excluded,
            "seconds": round(time.perf_counter() - started, 1),
        }
    lake.write_run_summary(key, summary)
    table = per_fold_means(metrics).filter(pl.col("variant") == "full")
    return dg.Output(
        exp.predictions,
        metadata={
            "mlflow_run_id": summary["mlflow_run_id"],
            "lineage_hash": lineage_hash,
            "partitions_read": len(vouched.partitions),
            "partitions_excluded": len(vouched.excluded),
            "checks_compared": dg.MetadataValue.json(vouched.compared()),
            "n_configs": exp.n_configs,
            "chosen_params": dg.MetadataValue.json(exp.chosen_params()),
            "signal_config": signal.config_hash(),
            "seconds": summary["seconds"],
            "oos_rows": exp.predictions.height,
            "per_fold_full": dg.MetadataValue.md(markdown_table(table)),
            "ece": dg.MetadataValue.md(markdown_table(expected_calibration_error(calibration_table(exp.predictions)))),
        },
    )


def _window(inputs: LakeModelData, refit_rows) -> dict[str, str]:
    """The data span read and the refit's training rows' span (UTC)."""
    window = {"first_date": inputs.partitions["first_date"], "last_date": inputs.partitions["last_date"]}
    if refit_rows is not None and len(refit_rows.train):
        t = inputs.data.t[refit_rows.train]
        window |= {"refit_start": str(_utc(int(t.min()))), "refit_end": str(_utc(int(t.max())))}
    return window


def _utc(us: int) -> datetime:
    return datetime.fromtimestamp(us / 1e6, UTC)
