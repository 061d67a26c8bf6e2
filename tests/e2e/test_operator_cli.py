"""`quantmm bundle import`, `quantmm features` and `quantmm train` from a shell's point of view (``main``), on a
fresh home: a bundle exported from a synthetic lake whose first day is the first partition day goes through
the whole feature layer and a Ridge training to the backbone report; a blocking check that fails makes the
command exit non-zero naming the check and the partitions."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from quantmm_assets.core import labels as lab
from quantmm_assets.defs.partitions import first_partition_day
from quantmm_jobs.cli.main import main
from quantmm_jobs.cli.runs import run_features, run_raw, run_training
from quantmm_resources.environment import build_resources
from quantmm_resources.lake import Lake
from quantmm_resources.lake_views import connect_lake
from quantmm_resources.settings import get_settings

SYMBOLS = ["BTCUSDT", "ETHUSDT"]  # adjacent in the universe
# 20 training days + purge (7d, the longest label) + embargo + one 2-day test window + purge fit in 38 days
DAYS, FOLDS = 38, ["--folds", "1", "--test-days", "2", "--min-train-days", "20", "--inner-k", "2"]


def export_synthetic_bundle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, first: date, last: date, symbols) -> Path:
    """The synthetic raw layer over [first, last] x symbols in a scratch home, exported as a bundle; then a fresh
    home (hashing text encoder) for the commands under test."""
    monkeypatch.setenv("QUANTMM_HOME", str(tmp_path / "scratch"))
    get_settings.cache_clear()
    with dg.DagsterInstance.ephemeral() as scratch:
        assert all(r.success for r in run_raw(first, last, symbols, build_resources(get_settings()), scratch))
    bundle = tmp_path / "bundle"
    assert main(["bundle", "export", str(bundle)]) == 0
    monkeypatch.setenv("QUANTMM_HOME", str(tmp_path / "fresh"))
    monkeypatch.setenv("QUANTMM_TEXT_ENCODER", "hashing")  # MiniLM itself is tested in tests/resources
    get_settings.cache_clear()
    return bundle


def test_bundle_import_then_features_then_train(quantmm_home, tmp_path, monkeypatch, capsys):
    # the bundle starts on the first partition day: the text look-back clips there instead of crashing
    first = first_partition_day()
    last = first + timedelta(days=DAYS - 1)
    bundle = export_synthetic_bundle(tmp_path, monkeypatch, first, last, SYMBOLS)
    lake = tmp_path / "fresh" / "lake"

    assert main(["bundle", "import", str(bundle)]) == 0
    assert main(["features", *FOLDS]) == 0
    out = capsys.readouterr().out
    assert f"quantmm features: {first} .. {last} x {', '.join(SYMBOLS)}" in out  # the raw lake's span by default
    con = connect_lake(lake)
    for asset in ("text_items", "feature_matrix_main", "labels_multi_horizon"):
        days = con.execute(f"select min(ts_event)::date, count(distinct symbol) from {asset}").fetchone()
        assert days == (first, len(SYMBOLS)), asset
    instance = dg.DagsterInstance.from_config(str(tmp_path / "fresh" / "dagster"))
    matrix = instance.get_materialized_partitions(dg.AssetKey("feature_matrix_main"))
    assert len(matrix) == DAYS * len(SYMBOLS) and f"{first}|BTCUSDT" in matrix
    assert (lake / "walk_forward_folds" / "data.parquet").exists()

    assert main(["train", "--backbones", "ridge", "--horizons", "1h", "--row-stride", "12"]) == 0
    out = capsys.readouterr().out
    report = json.loads((lake / "backbone_report" / "report.json").read_text())
    ranking = pl.DataFrame(report["ranking"])
    assert "ridge" in ranking["backbone"].to_list() and set(ranking["horizon"]) == {"1h"}
    assert set(ranking["symbol"]) == set(SYMBOLS)
    assert f"backbone report: {lake / 'backbone_report' / 'report.json'}" in out
    assert instance.get_materialized_partitions(dg.AssetKey("trained_backbones")) == {"ridge"}

    # The demo's path to the same point: the synthetic source straight into the scratch lake (no bundle), then the
    # same derived layer and training functions the demo calls. The shell path must give the same lake and report.
    monkeypatch.setenv("QUANTMM_HOME", str(tmp_path / "scratch"))
    get_settings.cache_clear()
    demo_settings = get_settings()
    with dg.DagsterInstance.ephemeral() as scratch:
        resources = build_resources(demo_settings)
        fold_config = {"n_folds": 1, "test_days": 2, "min_train_days": 20, "inner_k": 2}
        assert all(r.success for r in run_features(first, last, SYMBOLS, resources, scratch, fold_config=fold_config))
        training = {"horizons": ["1h"], "row_stride": 12}
        assert all(r.success for r in run_training(["ridge"], resources, scratch, training))
    demo_lake, shell_lake = Lake(demo_settings.lake_dir), Lake(lake)
    keys = ["symbol", "ts_event"]
    demo_matrix = demo_lake.scan("feature_matrix_main").collect().sort(keys)
    shell_matrix = shell_lake.scan("feature_matrix_main").collect().sort(keys)
    assert demo_matrix.height > 0 and demo_matrix.equals(shell_matrix)
    assert demo_lake.feature_contract() == shell_lake.feature_contract()
    demo_report = json.loads(demo_lake.report_file("report.json").read_text())
    assert demo_report["ranking"] == report["ranking"]


def test_failed_blocking_check_exits_non_zero_naming_check_and_partitions(quantmm_home, tmp_path, monkeypatch, capsys):
    first = date(2025, 1, 6)
    bundle = export_synthetic_bundle(tmp_path, monkeypatch, first, first + timedelta(days=1), ["BTCUSDT"])
    assert main(["bundle", "import", str(bundle)]) == 0
    real = lab.labels_multi_horizon

    def leaky(*args, **kwargs):  # a planted bug: labels stamped known 5 minutes before t + h
        return real(*args, **kwargs).with_columns(pl.col("ts_available") - timedelta(minutes=5))

    monkeypatch.setattr(lab, "labels_multi_horizon", leaky)
    assert main(["features"]) == 1
    err = capsys.readouterr().err
    assert "labels_multi_horizon:label_alignment" in err
    assert f"over partitions {first}|BTCUSDT...{first + timedelta(days=1)}|BTCUSDT" in err
    assert "known at" in err  # its findings: the labels stamped too early
    lake = tmp_path / "fresh" / "lake"
    assert not (lake / "walk_forward_folds").exists()  # the blocking check stopped the run before the folds
