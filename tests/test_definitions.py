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
        "    for mod in pkgutil.iter_modules(pkg.__path__):\n"
        "        importlib.import_module(pkg.__name__ + '.' + mod.name)\n"
        "bad = [n for n in sys.modules if n.split('.')[0] in ('dagster', 'fastapi', 'quantmm_resources')]\n"
        "print(bad); sys.exit(1 if bad else 0)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
