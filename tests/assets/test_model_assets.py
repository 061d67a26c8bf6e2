"""trained_backbones and backbone_report through Dagster on a small synthetic lake, with MLflow behind them."""

from __future__ import annotations

import json
import pickle
from datetime import timedelta
from pathlib import Path

import mlflow
import numpy as np
import polars as pl
import pytest
from synthetic_models import DIM, SYMBOLS, synthetic_frames
from vouching import vouch

from quantmm_assets.core.features.matrix import feature_contract
from quantmm_assets.core.signal import SignalConfig
from quantmm_assets.defs.matrix_assets import walk_forward_folds
from quantmm_assets.defs.model_assets import trained_backbones
from quantmm_assets.defs.report_assets import backbone_report
from quantmm_assets.defs.training_lineage import vouched_inputs
from quantmm_assets.models.baselines import frozen_baseline_sha256
from quantmm_jobs.cli.runs import run_candidates, run_partitions, run_selection
from quantmm_resources.environment import build_resources
from quantmm_resources.lake import Lake
from quantmm_resources.model_inputs import load_model_data
from quantmm_resources.provenance import canonical_hash
from quantmm_resources.registry import promote
from quantmm_resources.registry.gated_promotion import GATES, gate_status
from quantmm_resources.settings import get_settings

# One worker runs the whole module: its tests share the 70-day synthetic world of one process.
pytestmark = pytest.mark.xdist_group("model-assets")
FOLDS = {"n_folds": 2, "test_days": 10, "min_train_days": 30, "purge_days": 1.0, "embargo_days": 1.0, "inner_k": 2}
TRAINING = {
    "horizons": ["1h", "4h"],
    "variants": ["full", "no_text"],
    "overrides_json": json.dumps({}),
    "signal_score_threshold": {"4h": 0.25},
}
SIGNAL = SignalConfig(score_threshold={"4h": 0.25})


def _write_partitions(lake: Lake, asset: str, frame: pl.DataFrame) -> None:
    keyed = frame.with_columns(
        (pl.col("ts_event").dt.strftime("%Y-%m-%d") + pl.lit("|") + pl.col("symbol")).alias("_key")
    )
    for (key,), part in keyed.partition_by("_key", as_dict=True, include_key=False).items():
        path = lake.partition_file(asset, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        part.write_parquet(path)


@pytest.fixture
def lake_with_features(quantmm_home: Path) -> Lake:
    matrix, labels = synthetic_frames(70)
    lake = Lake(get_settings().lake_dir)
    _write_partitions(lake, "feature_matrix_main", matrix)
    _write_partitions(lake, "labels_multi_horizon", labels)
    lake.write_feature_contract(feature_contract(DIM).to_dict())
    return lake


def test_model_data_from_the_lake(lake_with_features: Lake) -> None:
    loaded = load_model_data(lake_with_features, ("1h", "4h"))
    assert set(loaded.symbols.values()) == set(SYMBOLS)
    assert loaded.latent_dim == DIM and loaded.data.text_mask.any()
    assert loaded.data.label_ok.mean() > 0.9
    strided = load_model_data(lake_with_features, ("1h",), row_stride=24)  # every second hour
    assert 0.4 < strided.data.n / loaded.data.n < 0.6
    with pytest.raises(ValueError, match="row_stride"):
        load_model_data(lake_with_features, ("1h",), row_stride=0)


def test_trained_backbone_and_report(lake_with_features: Lake, instance) -> None:
    resources = build_resources(get_settings())
    vouch(instance, lake_with_features)
    folds = run_selection([walk_forward_folds], resources, instance, FOLDS)
    assert folds.success and all(v == "passed" for v in folds.checks.values()), folds.checks
    (run,) = run_partitions([trained_backbones], ["ridge"], resources, instance, TRAINING)
    assert run.success

    lake = lake_with_features
    pred = pl.read_parquet(lake.partition_file("trained_backbones", "ridge"))
    assert set(pred["variant"]) == {"full", "no_text"} and set(pred["horizon"]) == {"1h", "4h"}
    assert set(pred["fold"]) == {0, 1} or pred["fold"].n_unique() == 2
    assert pred.filter(pl.col("variant") == "no_text")["degraded"].all()
    summary = lake.run_summaries()["ridge"]
    assert summary["n_configs"] == 2 and summary["refit"]["n_train"] > 0

    mlflow.set_tracking_uri(get_settings().resolved_mlflow_uri)
    logged = mlflow.get_run(summary["mlflow_run_id"])
    params = logged.data.params
    assert params["feature_contract_version"] == feature_contract(DIM).version
    assert params["data.text_encoder"].startswith("unpinned")  # this lake's matrix was written without text_latents
    assert params["backbone"] == "ridge" and len(params["config_hash"]) == 12
    assert "folds.hash" in params and params["data.symbols"] == ",".join(sorted(SYMBOLS, key=list(SYMBOLS).index))
    assert any(k.startswith("full.1h.rank_ic") for k in logged.data.metrics)
    assert SignalConfig.from_params(params) == SIGNAL and params["signal.config_hash"] == SIGNAL.config_hash()
    lineage = mlflow.artifacts.load_dict(f"runs:/{logged.info.run_id}/lineage.json")
    assert logged.data.tags["lineage_hash"] == canonical_hash(lineage) == summary["lineage_hash"]
    assert lineage["backbone"] == "ridge" and lineage["feature_contract_version"] == feature_contract(DIM).version
    assert lineage["signal_config"] == SIGNAL.record() and lineage["fold_spec_hash"] == params["folds.hash"]
    assert (
        lineage["partitions_read"] == len(lake.partition_keys("feature_matrix_main"))
        and not lineage["partitions_excluded"]
    )
    assert lineage["cost_configs"] == []  # the labels were written straight into this lake, not by a labels run
    assert {"git_commit", "git_dirty", "config_hash", "window", "mode", "fusion_mode"} <= set(lineage)
    assert lineage["checks_compared"]["feature_matrix_main.asof_alignment"] == 40
    read = [p for p in lineage["partitions"] if p["asset"] == "feature_matrix_main"]
    assert len(read) == lineage["partitions_read"] and all(p["run_id"] == "" for p in read)  # runless vouches
    assert summary["signal_config"]["signal.config_hash"] == SIGNAL.config_hash()
    artifacts = {a.path for a in mlflow.artifacts.list_artifacts(run_id=logged.info.run_id, artifact_path="evaluation")}
    assert {"evaluation/oos_predictions.parquet", "evaluation/cumulative_pnl.png"} <= artifacts
    local = mlflow.artifacts.download_artifacts(run_id=logged.info.run_id, artifact_path="model/backbone.pkl")
    model = pickle.loads(Path(local).read_bytes())
    data = load_model_data(lake, ("1h", "4h")).data
    out = model.predict(data, np.arange(10))
    assert np.isfinite(out["1h"].expected_return).all()

    report = run_selection([backbone_report], resources, instance, TRAINING)
    assert report.success
    doc = json.loads(lake.report_file("report.json").read_text())
    ranked = {r["backbone"] for r in doc["ranking"]}
    assert {"ridge", "zero", "momentum", "ridge_price"} <= ranked
    assert doc["n_configs"]["ridge"] == 2
    markdown = lake.report_file("report.md").read_text()
    assert markdown.startswith("# Backbone comparison") and "4h: score > 0.25 and confidence > 0.5" in markdown
    assert SignalConfig.from_params(doc["signal_config"]) == SIGNAL

    # the candidates: one registered version per (symbol, horizon), gated by three blocking checks
    symbol = SYMBOLS[0]
    (frozen, *candidates) = run_candidates([symbol], ["1h", "4h"], resources, instance)
    assert frozen.success and all(r.success for r in candidates), [r.errors for r in candidates]
    for run in candidates:
        assert set(run.checks) == {f"candidate_models:{g}" for g in GATES}
        assert run.checks["candidate_models:leakage_gate"] == "passed"  # runless vouches, 40 rows compared each
    registry = resources["registry"]
    name = registry.model_name(symbol, "1h")
    assert registry.aliases(name)["candidate"] == "1" and "active" not in registry.aliases(name)
    status = gate_status(instance, symbol, "1h")
    assert status.version == "1" and set(status.reports) == set(GATES)
    assert status.reports["model_gate"]["candidate"] == "ridge"
    assert registry.gate_reports(name, "1", "model_gate") == status.reports["model_gate"]
    lineage = registry.lineage(name, "1")
    assert lineage["symbol"] == symbol and lineage["frozen_baseline_sha256"] == frozen_baseline_sha256()
    ts, values = registry.reference_series(name, "1")
    oos = pred.filter((pl.col("variant") == "full") & (pl.col("symbol") == symbol) & (pl.col("horizon") == "1h"))
    assert values.size == oos.height and (ts > 0).all()

    # an active version trained before both test windows joins the comparators (it predicts them with its refit)
    first_test = (
        pl.read_parquet(lake.partition_file("walk_forward_folds")).filter(pl.col("role") == "test")["start"].min()
    )
    early = lineage | {"window": lineage["window"] | {"refit_end": str(first_test - timedelta(days=2))}}
    refit = resources["mlflow"].load_pickle(logged.info.run_id)  # the ridge refit
    newest = [k for k in lake.partition_keys("feature_matrix_main") if k.endswith(f"|{symbol}")][-1]
    example = lake.read_partitions("feature_matrix_main", [newest]).drop("ts_available").head(3)
    contract = lake.feature_contract()
    names = [n for n in contract["columns"] if n != "symbol_code"]
    v2 = registry.register_candidate(
        refit, symbol, "1h", SIGNAL, contract["version"], names, DIM, early, np.zeros(3), example
    )
    promote(registry, get_settings().resolved_ops_url, name, v2, "test", "setup: an early active version", None, None)
    (again,) = run_candidates([symbol], ["1h"], resources, instance)[1:]
    assert again.success
    report = gate_status(instance, symbol, "1h").reports["model_gate"]
    comparator = next(c for c in report["criteria"] if c["name"] == "comparator")
    assert set(comparator["detail"]["total_pnl"]) == {"zero", "momentum", "ridge_price", "active"}


def test_training_refuses_partitions_no_passing_run_vouches_for(lake_with_features: Lake, instance) -> None:
    resources = build_resources(get_settings())
    vouch(instance, lake_with_features)
    assert run_selection([walk_forward_folds], resources, instance, FOLDS).success
    # a partition written after the vouching runs: no run vouches for it
    keys = lake_with_features.partition_keys("feature_matrix_main")
    last = keys[-1]
    stray = last.replace(last[:10], "2031-01-01")
    for asset in ("feature_matrix_main", "labels_multi_horizon"):
        source = lake_with_features.partition_file(asset, last)
        target = lake_with_features.partition_file(asset, stray)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(source.read_bytes())
    (refused,) = run_partitions([trained_backbones], ["ridge"], resources, instance, TRAINING)
    assert not refused.success
    (error,) = refused.errors.values()
    assert "training refused: 2 partition(s)" in error and f"feature_matrix_main {stray}: never materialized" in error
    inputs = vouched_inputs(instance, lake_with_features, "exclude")
    assert inputs.excluded == [stray] and stray not in inputs.partitions and len(inputs.partitions) == len(keys)
    with pytest.raises(ValueError, match="unvouched_partitions must be one of"):
        vouched_inputs(instance, lake_with_features, "ignore")


def test_a_fine_tune_attempt_is_a_configuration_of_its_own(lake_with_features: Lake, instance) -> None:
    resources = build_resources(get_settings())
    vouch(instance, lake_with_features)
    assert run_selection([walk_forward_folds], resources, instance, FOLDS).success
    runs = run_partitions([trained_backbones], ["ridge", "ridge~ft1"], resources, instance, TRAINING)
    assert all(r.success for r in runs)
    attempt = pl.read_parquet(lake_with_features.partition_file("trained_backbones", "ridge~ft1"))
    assert set(attempt["backbone"]) == {"ridge~ft1"}
    summary = lake_with_features.run_summaries()["ridge~ft1"]
    assert [f["params"]["alpha"] for f in summary["folds"]][0] in (3000.0, 10000.0)  # the attempt's grid
    assert run_selection([backbone_report], resources, instance, TRAINING).success
    (_, run) = run_candidates([SYMBOLS[0]], ["1h"], resources, instance)
    assert run.success
    report = gate_status(instance, SYMBOLS[0], "1h").reports["model_gate"]
    assert report["n_configurations"] == 2  # both configurations tried count in the selection-aware bootstrap
