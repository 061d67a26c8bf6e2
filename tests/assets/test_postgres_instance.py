"""A partition materialized on a Dagster instance stored in PostgreSQL (its own database, dropped after);
the operational store on PostgreSQL through the same SQLAlchemy Core path."""

import os
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from quantmm_assets.defs.raw_assets import funding_rates, market_bars_5m
from quantmm_resources.environment import build_resources, ensure_dagster_home
from quantmm_resources.opstore import OperationalStore
from quantmm_resources.settings import get_settings

PG = "postgresql://postgres@127.0.0.1:5432"
pytestmark = pytest.mark.postgres


def test_materialize_a_partition_on_a_postgres_instance(quantmm_home, pg_database, monkeypatch):
    monkeypatch.setenv("DAGSTER_PG_URL", f"postgresql+psycopg2://postgres@127.0.0.1:5432/{pg_database}")
    monkeypatch.setenv("QUANTMM_OPS_URL", f"{PG}/{pg_database}")
    get_settings.cache_clear()
    settings = get_settings()
    home = ensure_dagster_home(settings)
    assert "postgres_url" in (Path(home) / "dagster.yaml").read_text()
    key = "2025-03-04|ETHUSDT"
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        res = dg.materialize(
            [market_bars_5m, funding_rates],
            partition_key=key,
            instance=instance,
            resources=build_resources(settings, source="synthetic"),
        )
        assert res.success
    with dg.DagsterInstance.from_config(str(home)) as reopened:  # a new process would see the same
        assert reopened.get_materialized_partitions(dg.AssetKey("market_bars_5m")) == {key}
        checks = reopened.event_log_storage.get_latest_asset_check_execution_by_key(
            [dg.AssetCheckKey(dg.AssetKey("market_bars_5m"), "ohlc_sanity")]
        )
        assert len(checks) == 1
    store = OperationalStore(url=os.environ["QUANTMM_OPS_URL"])
    assert store.engine.dialect.name == "postgresql"
    rej = pl.DataFrame({"asset": ["x"], "partition": [key], "reason": ["ohlc: test"], "raw": ["{}"]})
    store.replace_rejects("x", [key], rej)
    store.replace_rejects("x", [key], rej)
    assert store.count_rejects("x") == 1 and store.rejects("x")["reason"].to_list() == ["ohlc: test"]
