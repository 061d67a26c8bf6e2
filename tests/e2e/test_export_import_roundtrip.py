"""The synthetic raw layer exported as a bundle and imported into a fresh home gives back the same rows;
the readiness audit asset reports on what the lake holds."""

from datetime import date
from pathlib import Path

import dagster as dg
import polars as pl

from quantmm_assets.defs.readiness import readiness_audit
from quantmm_jobs.cli.bundle_import import import_bundle
from quantmm_jobs.cli.main import main
from quantmm_jobs.cli.runs import run_raw
from quantmm_resources.environment import build_resources
from quantmm_resources.lake_views import connect_lake
from quantmm_resources.settings import get_settings

START, END = date(2025, 2, 3), date(2025, 2, 5)
SYMBOLS = ["BTCUSDT", "ETHUSDT"]  # adjacent in the universe: a range run covers what lies between
ASSETS = [
    "market_bars_5m",
    "funding_rates",
    "open_interest",
    "derivatives_metrics",
    "macro_series",
    "social_posts_raw",
    "social_comments_raw",
]


def snapshot(lake) -> dict[str, pl.DataFrame]:
    con = connect_lake(lake)
    return {a: con.sql(f"select * exclude (source) from {a} order by all").pl() for a in ASSETS}


def test_export_then_import_round_trips_every_raw_asset(quantmm_home, tmp_path, monkeypatch, instance):
    runs = run_raw(START, END, SYMBOLS, build_resources(get_settings(), source="synthetic"), instance)
    assert all(r.success for r in runs)
    before = snapshot(quantmm_home / "lake")
    assert all(len(v) for v in before.values())

    bundle = tmp_path / "exported"
    assert main(["bundle", "export", str(bundle)]) == 0

    monkeypatch.setenv("QUANTMM_HOME", str(tmp_path / "second_home"))
    get_settings.cache_clear()
    with dg.DagsterInstance.ephemeral() as second:
        imported = import_bundle(bundle, instance=second)
    assert all(r.success for r in imported)
    after = snapshot(tmp_path / "second_home" / "lake")
    for asset in ASSETS:
        assert after[asset].equals(before[asset]), asset


def test_readiness_audit_asset_reports_coverage(quantmm_home, instance):
    resources = build_resources(get_settings(), source="synthetic")
    run_raw(START, END, SYMBOLS, resources, instance)
    res = dg.materialize(
        [readiness_audit],
        resources=resources,
        instance=instance,
        run_config={"ops": {"readiness_audit": {"config": {"mode": "research"}}}},
    )
    assert res.success
    md = res.asset_materializations_for_node("readiness_audit")[0].metadata
    plot = md["coverage_plot"].value
    assert plot.endswith("readiness_research.png") and Path(plot).stat().st_size > 5_000
    assert md["mode"].value == "research" and md["ready"].value is False  # 8 of 10 symbols never ingested
    first, last = (date.fromisoformat(x) for x in md["window"].value.split(" .. "))
    assert first == START  # research mode: from the earliest day in the lake to yesterday
    days = (last - first).days + 1
    table = pl.read_parquet(quantmm_home / "lake/readiness_audit/data.parquet")
    cov = dict(table.select("kind", "coverage").iter_rows())
    assert cov["social_posts"] == round(3 / days, 4)
    assert cov["perp_bars_5m"] == round(3 * len(SYMBOLS) / (days * 10), 4)
