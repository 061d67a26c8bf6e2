"""A run over partitions before the data begins (empty by design, before a listing) does not stop the pipeline,
and its leakage checks say they compared nothing instead of passing."""

import dagster as dg

from quantmm_assets.defs.feature_assets import market_features
from quantmm_assets.defs.text_assets import text_items
from quantmm_jobs.cli.runs import graph_with
from quantmm_resources.environment import build_resources
from quantmm_resources.settings import get_settings


def test_partitions_without_data_succeed_and_their_checks_compared_nothing(quantmm_home, instance):
    resources = build_resources(get_settings(), source="synthetic")
    run = dg.materialize(
        graph_with([market_features, text_items]),
        selection=[market_features, text_items],
        partition_key="2025-03-06|BTCUSDT",  # nothing was ingested: every upstream partition reads as no rows
        resources=resources,
        instance=instance,
    )
    assert run.success
    evaluations = run.get_asset_check_evaluations()
    assert {e.asset_key.to_user_string() for e in evaluations} == {"market_features", "text_items"}
    for e in evaluations:
        assert not e.passed and e.severity == dg.AssetCheckSeverity.WARN
        assert e.metadata["nothing_compared"].value is True and e.description.startswith("compared nothing")
