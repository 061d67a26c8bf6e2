"""Ingest to promotion and rollback through Dagster, on the embedded default (SQLite) and on PostgreSQL.

The demo's second world (``quantmm_jobs.cli.demo_strong``: one synthetic symbol over 120 days whose planted signal
is strong enough to pass the gates) runs the whole path: raw layer, features with their leakage checks, labels,
folds, two backbones, the candidate with its three blocking gates, a promotion, a second gated version, its
promotion and a rollback. The PostgreSQL flow puts the Dagster instance, the MLflow tracking and registry store and
the operational store (ledger) in databases of their own, created here and dropped afterwards.
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import mlflow
import polars as pl
import psycopg
import pytest
from fastapi.testclient import TestClient

from quantmm_assets.core.execution.ledger import equity_from_tables
from quantmm_jobs.cli.demo_strong import STRONG_SYMBOL, run_strong_world
from quantmm_jobs.cli.runs import instance_for
from quantmm_resources.environment import build_resources
from quantmm_resources.opstore import engine_for
from quantmm_resources.paper_store import read
from quantmm_resources.prediction_log import read_predictions
from quantmm_resources.registry import history
from quantmm_resources.registry.gated_promotion import GATES, gate_status
from quantmm_resources.settings import get_settings
from quantmm_serving.main import create_app

PG = "postgresql://postgres@127.0.0.1:5432"


@pytest.fixture
def postgres_stores(monkeypatch):
    """Three databases (Dagster, MLflow, operational store) pointed at through the settings' variables."""
    try:
        admin = psycopg.connect(f"{PG}/postgres", autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL not reachable on 127.0.0.1:5432: {exc}")
    names = {k: f"quantmm_flow_{k}_{uuid.uuid4().hex[:10]}" for k in ("dagster", "mlflow", "ops")}
    for name in names.values():
        admin.execute(f'CREATE DATABASE "{name}"')
    monkeypatch.setenv("DAGSTER_PG_URL", f"postgresql+psycopg2://postgres@127.0.0.1:5432/{names['dagster']}")
    monkeypatch.setenv("QUANTMM_MLFLOW_TRACKING_URI", f"postgresql+psycopg://postgres@127.0.0.1:5432/{names['mlflow']}")
    monkeypatch.setenv("QUANTMM_OPS_URL", f"{PG}/{names['ops']}")
    yield names
    engine_for.cache_clear()
    for name in names.values():
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


def _flow(stores: str) -> None:
    get_settings.cache_clear()
    settings = get_settings().model_copy(update={"text_encoder": "hashing"})
    assert run_strong_world(settings)
    strong = settings.model_copy(update={"home": settings.home / "strong-signal"})
    instance = instance_for(strong)
    if stores == "postgres":
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert strong.resolved_mlflow_uri.startswith("postgresql") and strong.resolved_ops_url.startswith("postgresql")
    registry = build_resources(strong)["registry"]
    name = registry.model_name(STRONG_SYMBOL, "1h")
    status = gate_status(instance, STRONG_SYMBOL, "1h")
    assert status.passed and status.version == "2" and set(status.checks) == set(GATES)
    assert status.reports["model_gate"]["verdict"] == "pass"
    ledger = history(strong.resolved_ops_url, name)
    assert ledger["action"].to_list() == ["rollback", "promote", "promote"]
    assert ledger["to_version"].to_list() == ["1", "2", "1"]
    assert registry.aliases(name) == {"candidate": "2", "active": "1", "previous": "2"}
    mlflow.set_tracking_uri(strong.resolved_mlflow_uri)
    mlflow.set_registry_uri(strong.resolved_mlflow_uri)
    active_run = mlflow.pyfunc.load_model(f"models:/{name}@active").metadata.run_id
    assert active_run == registry.versions(name)[0]["run_id"]  # the rollback restored version 1
    lineage = registry.lineage(name, "1")
    assert lineage["partitions_read"] > 0 and not lineage["partitions_excluded"]
    assert lineage["checks_compared"]["feature_matrix_main.asof_alignment"] > 0
    _served_and_paper_traded(strong, name)


def _served_and_paper_traded(strong, name: str) -> None:
    """The app serves the active version; the demo's paper replay is in the store, and the endpoints agree with it."""
    ops = strong.resolved_ops_url
    steps, fills, funding = (read(ops, t, "demo") for t in ("steps", "fills", "funding"))
    assert steps.height >= 4 * 288 and fills.height > 0  # some days replayed, and it traded
    for step in steps.gather(list(range(0, steps.height, 97))).iter_rows(named=True):
        marks = json.loads(step["state"])["marks"]
        done = fills.filter(pl.col("bar_ts") <= step["bar_ts"])
        paid = funding.filter(pl.col("settlement_ts") <= step["bar_ts"] + timedelta(minutes=5))
        assert equity_from_tables(100_000.0, done, paid, marks) == pytest.approx(step["equity"], rel=1e-12)
    sources = {s for st in steps["state"] for s in json.loads(st)["sources"].values()}
    assert sources and all(s.startswith(("oos:", "v")) for s in sources)  # never a version that saw the bar
    with TestClient(create_app(strong)) as client:
        served = client.get(f"/predict/{STRONG_SYMBOL}").json()
        assert served["model_versions"] == {"1h": "1"} and served["horizons"][0]["model"] == name
        pnl = client.get("/paper/pnl", params={"book": "demo"}).json()
        assert pnl["totals"]["net"] == pytest.approx(steps["equity"][-1] - 100_000.0, abs=1e-6)
        assert pnl["totals"]["fees"] == pytest.approx(fills["fee"].sum())
        assert pnl["totals"]["funding"] == pytest.approx(funding["payment"].sum() if funding.height else 0.0)
        assert client.get("/paper/status", params={"book": "demo"}).json()["steps"] == steps.height
        assert client.get("/ready").status_code == 200
        logged = read_predictions(ops)  # the demo's served prediction and the bar's shadow/active log rows
        health = {r["role"]: r for r in client.get("/monitoring/multimodal").json()["rows"] if r["horizon"] == "1h"}
        assert health["active"]["n"] == logged.filter(pl.col("role") == "active").height > 0


def test_ingest_to_promotion_and_rollback_on_the_embedded_default(quantmm_home):
    _flow("sqlite")


@pytest.mark.postgres
def test_ingest_to_promotion_and_rollback_on_postgres(quantmm_home, postgres_stores):
    _flow("postgres")
