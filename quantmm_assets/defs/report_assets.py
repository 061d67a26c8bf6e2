"""``backbone_report``: one table ranking the trained backbones and the baselines per symbol and horizon.

It reads every materialized ``trained_backbones`` partition (the out-of-sample predictions) and the run summaries
beside them, adds the baselines (zero, momentum sign, Ridge on price) on the same folds and rows, builds the report
(``core.evaluation.report.build_report``, under the run's ``SignalConfig``) and writes it as JSON and Markdown with
its plots into the lake's report folder (the lake API), into the materialization metadata and, through the
``MlflowTracking`` resource, into an MLflow run.
"""

import time
from pathlib import Path

import dagster as dg
import polars as pl

from quantmm_assets.core.evaluation.report import build_report
from quantmm_assets.defs.candidates import baseline_file
from quantmm_assets.defs.model_assets import TrainConfig, trained_backbones
from quantmm_assets.models.baselines import baseline_predictions
from quantmm_assets.models.finetune import all_keys
from quantmm_resources.lake import LakeResource, write_atomic
from quantmm_resources.mlflow_tracking import MlflowTracking
from quantmm_resources.model_inputs import load_model_data


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
    trained = lake.read_partitions("trained_backbones", all_keys())  # fine-tune attempts are contenders too
    if trained.is_empty():
        raise ValueError("backbone_report: no trained_backbones partition is materialized")
    horizons = tuple(h for h in config.horizons if h in set(trained["horizon"].unique().to_list()))
    inputs = load_model_data(lake, horizons, config.row_stride)
    baselines = baseline_predictions(inputs.data, walk_forward_folds, inputs.symbols)
    write_atomic(baselines, baseline_file(lake))  # candidate_models compares each candidate with them
    predictions = pl.concat([trained, baselines.select(trained.columns)])
    summaries = lake.run_summaries()
    n_configs = {b: int(s["n_configs"]) for b, s in summaries.items()}
    n_configs |= dict.fromkeys(baselines["backbone"].unique().to_list(), 1)
    signal = config.signal_config()
    report = build_report(predictions, n_configs, signal=signal)
    files = lake.write_report(report.doc, report.markdown, report.figures)
    mlflow.log_report(files, signal)
    backbones = sorted(trained["backbone"].unique().to_list())
    context.log.info(f"backbone_report: {len(backbones)} backbones + baselines in {time.perf_counter() - started:.1f}s")
    return dg.MaterializeResult(
        metadata={
            "backbones": ", ".join(backbones),
            # what candidate_models can register after this report (the candidates sensor reads them)
            "symbols": ", ".join(sorted(trained["symbol"].unique().to_list())),
            "horizons": ", ".join(horizons),
            "signal_config": signal.config_hash(),
            "report": dg.MetadataValue.md(report.markdown),
            # report_json, report_md, cumulative_pnl, calibration
            **{_metadata_key(p): dg.MetadataValue.path(str(p)) for p in files},
        }
    )


def _metadata_key(path: Path) -> str:
    return path.stem if path.suffix == ".png" else path.name.replace(".", "_")


MODEL_ASSETS = [trained_backbones, backbone_report]
