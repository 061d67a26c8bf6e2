"""A hole in a look-back fails the run with a clear error; the data's edge reads as no rows."""

from datetime import date, timedelta

import dagster as dg

from quantmm_assets.defs.feature_assets import market_features
from quantmm_jobs.cli.runs import graph_with, run_raw
from quantmm_resources.environment import build_resources
from quantmm_resources.settings import get_settings

DAY = date(2025, 3, 6)


def test_a_raw_day_missing_inside_the_look_back_fails_and_the_edge_does_not(quantmm_home, instance):
    resources = build_resources(get_settings(), source="synthetic")
    run_raw(DAY - timedelta(days=1), DAY, ["BTCUSDT"], resources, instance, date_assets=[])
    # the look-back reaches two days before DAY: the first of them was never ingested (the edge)
    edge = dg.materialize(
        graph_with([market_features]),
        selection=[market_features],
        partition_key=f"{DAY}|BTCUSDT",
        resources=resources,
        instance=instance,
    )
    assert edge.success
    # a hole: the day before DAY disappears while days on both sides exist
    run_raw(DAY - timedelta(days=2), DAY - timedelta(days=2), ["BTCUSDT"], resources, instance, date_assets=[])
    hole = quantmm_home / f"lake/market_bars_5m/date={DAY - timedelta(days=1)}/symbol=BTCUSDT/data.parquet"
    hole.unlink()
    failed = dg.materialize(
        graph_with([market_features]),
        selection=[market_features],
        partition_key=f"{DAY}|BTCUSDT",
        resources=resources,
        instance=instance,
        raise_on_error=False,
    )
    assert not failed.success
    errors = [e.event_specific_data.error.to_string() for e in failed.all_events if e.is_failure]
    assert any("between materialized ones" in e and "2025-03-05" in e for e in errors), errors
