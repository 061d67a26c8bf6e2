"""The code location loads; the graph is what the docs say (keys, partitions, checks, dependencies)."""

import os
import subprocess
import sys

import dagster as dg

from quantmm_jobs.definitions import defs
from quantmm_resources.environment import ensure_dagster_home
from quantmm_resources.settings import get_settings

RAW = [
    "derivatives_metrics",
    "funding_rates",
    "macro_series",
    "market_bars_5m",
    "open_interest",
    "social_comments_raw",
    "social_posts_raw",
]
# Snapshot of the graph: a change of assets or edges shows as a diff here.
GRAPH = {
    "derivatives_metrics": [],
    "funding_rates": [],
    "macro_series": [],
    "market_bars_5m": [],
    "open_interest": [],
    "social_comments_raw": [],
    "social_posts_raw": [],
    "readiness_audit": RAW,
    "market_features": ["market_bars_5m"],
    "derivatives_features": ["derivatives_metrics", "funding_rates", "market_bars_5m", "open_interest"],
    "macro_features": ["macro_series"],
    "text_items": ["social_comments_raw", "social_posts_raw"],
    "text_bucket_features": ["text_items"],
    "text_latents": ["text_items"],
    "feature_matrix_main": [
        "derivatives_features",
        "macro_features",
        "market_features",
        "text_bucket_features",
        "text_latents",
    ],
    "labels_multi_horizon": ["funding_rates", "market_bars_5m", "market_features"],
    "walk_forward_folds": ["labels_multi_horizon"],
    "trained_backbones": ["feature_matrix_main", "labels_multi_horizon", "walk_forward_folds"],
    "backbone_report": ["trained_backbones", "walk_forward_folds"],
    "frozen_baseline": [],
    "active_models": ["candidate_models"],
    "candidate_models": ["backbone_report", "frozen_baseline", "walk_forward_folds"],
}
DERIVED_CHECKS = {
    "market_features": {"asof_alignment"},
    "derivatives_features": {"asof_alignment"},
    "macro_features": {"asof_alignment"},
    "text_items": {"asof_alignment"},
    "text_bucket_features": {"asof_alignment"},
    "text_latents": {"asof_alignment"},
    "feature_matrix_main": {"asof_alignment", "truncation_invariance"},
    "labels_multi_horizon": {"label_alignment"},
    "walk_forward_folds": {"fold_hygiene"},
}


def test_definitions_load_and_validate():
    repo = defs.get_repository_def()
    graph = repo.asset_graph
    got = {
        k.to_user_string(): sorted(p.to_user_string() for p in graph.get(k).parent_keys)
        for k in graph.get_all_asset_keys()
    }
    assert got == GRAPH


def test_raw_assets_are_partitioned_with_at_least_three_checks():
    repo = defs.get_repository_def()
    graph = repo.asset_graph
    for name in RAW:
        node = graph.get(dg.AssetKey(name))
        pdef = node.partitions_def
        if name in ("macro_series", "social_posts_raw", "social_comments_raw"):
            assert isinstance(pdef, dg.DailyPartitionsDefinition), name
        else:
            assert isinstance(pdef, dg.MultiPartitionsDefinition), name
            assert {d.name for d in pdef.partitions_defs} == {"date", "symbol"}
        checks = [c for c in graph.asset_check_keys if c.asset_key == node.key]
        assert len(checks) >= 3, name
        assert node.backfill_policy == dg.BackfillPolicy.single_run()


def test_dagster_cli_validates_the_workspace(quantmm_home):
    env = {**os.environ, "DAGSTER_HOME": str(ensure_dagster_home(get_settings()))}
    out = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-m", "quantmm_jobs.definitions"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_core_never_imports_dagster_fastapi_or_resources():
    code = (
        "import sys, pkgutil, importlib, quantmm_assets.core as c, quantmm_assets.models as m\n"
        "for pkg in (c, m):\n"
        "    for mod in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.'):\n"
        "        importlib.import_module(mod.name)\n"
        "bad = [n for n in sys.modules if n.split('.')[0] in ('dagster', 'fastapi', 'quantmm_resources')]\n"
        "print(bad); sys.exit(1 if bad else 0)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


def test_every_derived_asset_has_blocking_leakage_checks_and_declared_lookbacks():
    graph = defs.get_repository_def().asset_graph
    for name, expected in DERIVED_CHECKS.items():
        checks = {c for c in graph.asset_check_keys if c.asset_key == dg.AssetKey(name)}
        assert {c.name for c in checks} == expected, name
        assert all(graph.get_check_spec(c).blocking for c in checks), name
    # look-backs go through TimeWindowPartitionMapping on the date dimension
    node = graph.get(dg.AssetKey("market_features"))
    mapping = node.partition_mappings[dg.AssetKey("market_bars_5m")]
    date_map = mapping.downstream_mappings_by_upstream_dimension["date"].partition_mapping
    assert isinstance(date_map, dg.TimeWindowPartitionMapping) and date_map.start_offset == -2
    for raw in ("market_bars_5m", "funding_rates"):  # the labels read 8 days ahead (and the funding a day back)
        labels = graph.get(dg.AssetKey("labels_multi_horizon")).partition_mappings[dg.AssetKey(raw)]
        window = labels.downstream_mappings_by_upstream_dimension["date"].partition_mapping
        assert (window.start_offset, window.end_offset) == (-1, 8), raw
