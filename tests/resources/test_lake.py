"""The lake API: the one owner of partition files, side files and reports."""

import json
from pathlib import Path

import polars as pl
import pytest

from quantmm_resources.lake import Lake, LakeResource


def test_partition_layout(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    assert lake.partition_file("market_bars_5m", "2025-01-02|BTCUSDT") == (
        tmp_path / "market_bars_5m" / "date=2025-01-02" / "symbol=BTCUSDT" / "data.parquet"
    )
    assert lake.partition_file("macro_series", "2025-01-02") == tmp_path / "macro_series/date=2025-01-02/data.parquet"
    assert lake.partition_file("trained_backbones", "ridge") == tmp_path / "trained_backbones/ridge/data.parquet"
    assert lake.partition_file("walk_forward_folds") == tmp_path / "walk_forward_folds/data.parquet"


def test_reads_what_exists_and_says_what_to_materialize(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    assert not lake.has("feature_matrix_main")
    with pytest.raises(ValueError, match="no feature_matrix_main in the lake"):
        lake.files("feature_matrix_main")
    # a raw asset with no partition reads as its empty schema; another asset as no columns
    assert "ts_available" in lake.read_partitions("funding_rates", ["2025-01-01|BTCUSDT"]).columns
    assert lake.read_partitions("market_features", ["2025-01-01|BTCUSDT"]).width == 0
    frame = pl.DataFrame({"a": [1, 2]})
    path = lake.partition_file("x", "2025-01-01|BTCUSDT")
    path.parent.mkdir(parents=True)
    frame.write_parquet(path)
    assert lake.has("x") and lake.asset_names() == ["x"]
    got = lake.read_partitions("x", ["2025-01-01|BTCUSDT", "2025-01-02|BTCUSDT"])
    assert got.equals(frame)
    assert lake.scan("x").collect().equals(frame)


def test_side_files_name_the_asset_that_writes_them(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    with pytest.raises(ValueError, match="materialize walk_forward_folds first"):
        lake.fold_spec()
    with pytest.raises(ValueError, match="materialize feature_matrix_main first"):
        lake.feature_contract()
    lake.write_fold_spec({"n_folds": 3})
    lake.write_feature_contract({"version": "v1", "columns": ["a"], "latent_dim": 8})
    assert lake.fold_spec() == {"n_folds": 3} and lake.feature_contract()["version"] == "v1"
    assert lake.run_summaries() == {}
    lake.write_run_summary("ridge", {"n_configs": 2})
    lake.write_run_summary("lightgbm", {"n_configs": 4})
    assert lake.run_summaries() == {"lightgbm": {"n_configs": 4}, "ridge": {"n_configs": 2}}
    # the summaries and side files live beside the asset's partitions, never among them
    assert lake.asset_names() == []
    assert lake.report_file("report.md").parent == lake.report_dir() == tmp_path / "backbone_report"
    assert lake.reports_dir() == tmp_path.parent / "reports"


def test_the_resource_is_the_same_api(tmp_path: Path) -> None:
    resource = LakeResource(base_dir=str(tmp_path))
    resource.write_fold_spec({"n_folds": 2})
    assert Lake(tmp_path).fold_spec() == {"n_folds": 2}
    assert resource.root == Lake(tmp_path).root == tmp_path


def test_bar_span_reads_the_perp_bars_by_default(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from quantmm_resources.lake_views import bar_span

    lake = Lake(tmp_path)
    assert bar_span(lake) is None
    path = lake.partition_file("market_bars_5m", "2025-01-01|BTCUSDT")
    path.parent.mkdir(parents=True)
    t0, t1 = datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 1, 1, 1, tzinfo=UTC)
    pl.DataFrame({"ts_event": [t0, t1], "symbol": ["BTCUSDT", "ETHUSDT"], "market": ["perp", "spot"]}).write_parquet(
        path
    )
    assert bar_span(lake) == (t0, t0, ["BTCUSDT"])
    assert bar_span(lake, market=None) == (t0, t1, ["BTCUSDT", "ETHUSDT"])


def test_the_report_is_written_whole_into_the_report_folder(tmp_path: Path) -> None:
    from matplotlib.figure import Figure

    lake = Lake(tmp_path)
    fig = Figure()
    fig.add_subplot().plot([0, 1], [1, 0])
    paths = lake.write_report({"ranking": [{"rank": 1}]}, "# Backbone comparison\n", {"cumulative_pnl.png": fig})
    assert [p.name for p in paths] == ["report.json", "report.md", "cumulative_pnl.png"]
    assert all(p.parent == lake.report_dir() for p in paths)
    assert json.loads(lake.report_file("report.json").read_text()) == {"ranking": [{"rank": 1}]}
    assert lake.report_file("cumulative_pnl.png").read_bytes()[:4] == b"\x89PNG"
    assert sorted(p.name for p in lake.report_dir().iterdir()) == sorted(p.name for p in paths)  # no temp file left
