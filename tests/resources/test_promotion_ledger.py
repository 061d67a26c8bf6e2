"""The promotion ledger and the aliases that follow it: promote, rollback, a race of two promotions, reconcile;
on SQLite (MLflow and the ledger under tmp_path) and on PostgreSQL (each in a database of its own, dropped after)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg
import pytest
from test_model_registry import CONTRACT, World, btc_rows, build_world, new_registry, register

from quantmm_resources.opstore import engine_for
from quantmm_resources.registry import (
    AliasMoveFailed,
    ModelRegistry,
    PromotionConflict,
    current_active,
    history,
    promote,
    reconcile,
    record_promotion,
    rollback,
    to_model_input,
)
from quantmm_resources.registry import promotion as promotion_module
from tests.conftest import PG

pytestmark = pytest.mark.xdist_group("promotion_ledger")  # the module's registry is built once, on one worker
BROKEN_CALLS: list[tuple] = []


class BrokenAliases(ModelRegistry):
    """A registry whose alias moves always fail (MLflow down after the ledger commit)."""

    def move_active(self, name: str, to_version: str, previous_version: str | None) -> None:
        BROKEN_CALLS.append((name, to_version, previous_version))
        raise ConnectionError("MLflow tracking server unreachable")


@pytest.fixture(scope="module")
def world() -> World:
    return build_world()


@pytest.fixture(scope="module")
def sqlite_registry(world, tmp_path_factory) -> tuple[ModelRegistry, dict[str, list[str]]]:
    """One MLflow store with versions of BTCUSDT 1h / 4h and ETHUSDT 1h (backbones 0, 1, 0 each)."""
    registry = new_registry(tmp_path_factory.mktemp("mlflow"))
    versions = {}
    for symbol, horizon in (("BTCUSDT", "1h"), ("BTCUSDT", "4h"), ("ETHUSDT", "1h")):
        name = registry.model_name(symbol, horizon)
        versions[name] = [register(registry, world, k, symbol, horizon) for k in (0, 1, 0)]
    return registry, versions


@pytest.fixture
def ledger_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'ops.db'}"


def flow(registry: ModelRegistry, url: str, name: str, versions: list[str], world: World) -> None:
    """Promote v1, promote v2 (previous = v1), roll back to v1: every move a ledger row, the aliases following."""
    v1, v2, _ = versions
    with pytest.raises(ValueError, match="nothing to roll back"):
        rollback(registry, url, name, "alice", "no reason")
    before = datetime.now(UTC) - timedelta(seconds=1)
    first = promote(registry, url, name, v1, "alice", "gates passed", {"model_gate": "pass", "windows": 4}, None)
    assert registry.aliases(name) == {"candidate": versions[-1], "active": v1} and current_active(url, name) == v1
    row = history(url, name).row(0, named=True)
    assert row["id"] == first and (row["action"], row["from_version"], row["to_version"]) == ("promote", None, v1)
    assert (row["operator"], row["reason"]) == ("alice", "gates passed")
    assert row["gate_report"] == '{"model_gate": "pass", "windows": 4}'
    assert before <= row["recorded_at"] <= datetime.now(UTC)
    with pytest.raises(ValueError, match=f"cannot roll back: version {v1} was made active with no version active"):
        rollback(registry, url, name, "alice", "why not")
    with pytest.raises(ValueError, match=f"version {v1} is already active"):
        promote(registry, url, name, v1, "alice", "again", None, expected_from=v1)
    with pytest.raises(
        PromotionConflict, match=f"expected active version none, but the ledger's active version is {v1}"
    ):
        promote(registry, url, name, v2, "bob", "stale", None, expected_from=None)
    with pytest.raises(ValueError, match="no registered version 99"):
        promote(registry, url, name, "99", "bob", "typo", None, expected_from=v1)

    promote(registry, url, name, v2, "bob", "better after costs", {"model_gate": "pass"}, expected_from=v1)
    assert registry.aliases(name) == {"candidate": versions[-1], "active": v2, "previous": v1}

    back = rollback(registry, url, name, "carol", "v2 drifts")
    assert registry.aliases(name) == {"candidate": versions[-1], "active": v1, "previous": v2}
    assert current_active(url, name) == v1
    rows = history(url, name)
    assert rows["id"].to_list() == sorted(rows["id"].to_list(), reverse=True) and rows["id"][0] == back
    assert rows.select("action", "from_version", "to_version", "operator").rows() == [
        ("rollback", v2, v1, "carol"),
        ("promote", v1, v2, "bob"),
        ("promote", None, v1, "alice"),
    ]
    # models:/name@active loads the restored version: its run, and its predictions (v1 and v2 differ)
    active = registry.load(name, "active")
    assert active.metadata.run_id == {v["version"]: v["run_id"] for v in registry.versions(name)}[v1]
    rows = to_model_input(btc_rows(world).head(20), CONTRACT)  # name is a BTCUSDT model
    er = active.predict(rows)["expected_return"].to_numpy()
    np.testing.assert_array_equal(er, registry.load(name, v1).predict(rows)["expected_return"].to_numpy())
    assert not np.array_equal(er, registry.load(name, v2).predict(rows)["expected_return"].to_numpy())


def race(registry: ModelRegistry, url: str, name: str, contenders: tuple[str, str], base: str | None) -> None:
    """Two promotions from the same head at once: one wins, the other raises having written nothing."""
    barrier, results = threading.Barrier(2), {}
    n_rows = history(url, name).height

    def go(version: str) -> None:
        barrier.wait()
        try:
            results[version] = promote(registry, url, name, version, f"op-{version}", "race", None, base)
        except PromotionConflict as exc:
            results[version] = exc

    threads = [threading.Thread(target=go, args=(v,)) for v in contenders]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    winners = [v for v, r in results.items() if isinstance(r, int)]
    losers = [r for r in results.values() if isinstance(r, PromotionConflict)]
    assert len(winners) == 1 and len(losers) == 1, results
    assert f"the ledger's active version is {winners[0]}" in str(losers[0]) and name in str(losers[0])
    assert current_active(url, name) == winners[0] == registry.aliases(name)["active"]
    assert history(url, name).height == n_rows + 1


def test_promote_and_rollback_are_ledger_rows_the_aliases_follow(sqlite_registry, ledger_url, world) -> None:
    registry, versions = sqlite_registry
    flow(registry, ledger_url, "quantmm.BTCUSDT.1h", versions["quantmm.BTCUSDT.1h"], world)
    assert history(ledger_url).height == 3 and history(ledger_url, "quantmm.ETHUSDT.1h").is_empty()


def test_two_concurrent_promotions_one_wins(sqlite_registry, ledger_url) -> None:
    registry, versions = sqlite_registry
    name = "quantmm.BTCUSDT.4h"
    v1, v2, v3 = versions[name]
    race(registry, ledger_url, name, (v1, v2), None)  # the first promotion of a model: the head's insert
    head = current_active(ledger_url, name)
    race(registry, ledger_url, name, tuple(v for v in (v1, v2, v3) if v != head)[:2], head)  # the swap


def test_the_swap_itself_refuses_a_head_that_moved_after_the_read(ledger_url, monkeypatch) -> None:
    """A promotion that read the head before another one committed loses at the compare-and-swap."""
    name, (v1, v2, v3) = "quantmm.ETHUSDT.4h", ("1", "2", "3")  # the ledger alone: no registry needed
    record_promotion(ledger_url, name, v1, "alice", "first")
    reads = [None, "real", "real", v1]  # the pre-checks of the 1st and 3rd promotion read before the other committed

    def read(url: str, n: str) -> str | None:
        got = reads.pop(0) if reads else "real"
        return current_active(url, n) if got == "real" else got

    monkeypatch.setattr(promotion_module, "current_active", read)
    with pytest.raises(PromotionConflict, match=f"lost a race: expected active version none, .* is {v1}"):
        record_promotion(ledger_url, name, v2, "bob", "late first promotion")  # the head's insert conflicts
    record_promotion(ledger_url, name, v2, "bob", "second", expected_from=v1)
    with pytest.raises(PromotionConflict, match=f"lost a race: expected active version {v1}, .* is {v2}"):
        record_promotion(ledger_url, name, v3, "carol", "late", expected_from=v1)  # the swap hits no row
    monkeypatch.undo()
    assert history(ledger_url, name)["to_version"].to_list() == [v2, v1] and current_active(ledger_url, name) == v2


def test_reconcile_sets_the_aliases_from_the_ledger(sqlite_registry, ledger_url) -> None:
    registry, versions = sqlite_registry
    name = "quantmm.ETHUSDT.1h"
    v1, v2, v3 = versions[name]
    promote(registry, ledger_url, name, v1, "alice", "first")
    registry.move_active(name, v3, None)  # planted: the aliases disagree with the ledger
    assert reconcile(registry, ledger_url, name) == {"candidate": v3, "active": v1}

    broken = BrokenAliases(tracking_uri=registry.tracking_uri, artifact_root=registry.artifact_root)
    BROKEN_CALLS.clear()
    with pytest.raises(
        AliasMoveFailed, match=rf"ledger recorded version {v2} .* failed twice .*reconcile\(registry, url"
    ):
        promote(broken, ledger_url, name, v2, "bob", "second", {"ok": True}, expected_from=v1)
    assert len(BROKEN_CALLS) == 2 and current_active(ledger_url, name) == v2  # the ledger committed: authoritative
    assert registry.aliases(name)["active"] == v1
    assert reconcile(registry, ledger_url, name) == {"candidate": v3, "active": v2, "previous": v1}
    empty = ledger_url.rsplit("/", 1)[0] + "/empty.db"  # a ledger with no head for the model: aliases cleared
    assert reconcile(registry, empty, name) == {"candidate": v3}


@pytest.fixture
def pg_ledger_database(pg_database):
    """A second database beside ``pg_database`` (the ledger's), dropped after."""
    name = f"{pg_database}_ledger"
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield name
    engine_for(f"{PG}/{name}").dispose()
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.postgres
def test_the_same_flow_on_postgresql(world, pg_database, pg_ledger_database, tmp_path) -> None:
    registry = new_registry(tmp_path, f"postgresql+psycopg://postgres@127.0.0.1:5432/{pg_database}")
    url = f"{PG}/{pg_ledger_database}"
    name = registry.model_name("BTCUSDT", "1h")
    versions = [register(registry, world, k) for k in (0, 1, 0)]
    assert registry.aliases(name) == {"candidate": versions[-1]}
    flow(registry, url, name, versions, world)
    race(registry, url, name, (versions[1], versions[2]), versions[0])
    assert engine_for(url).dialect.name == "postgresql"
    with psycopg.connect(f"{PG}/{pg_database}") as conn:  # MLflow's own store is this PostgreSQL database
        assert conn.execute("SELECT name FROM registered_models").fetchall() == [(name,)]
        assert conn.execute("SELECT count(*) FROM model_versions").fetchone() == (3,)
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM promotion_ledger").fetchone() == (4,)
    registry.move_active(name, versions[0], None)  # planted disagreement
    head = current_active(url, name)
    assert reconcile(registry, url, name) == {"candidate": versions[-1], "active": head, "previous": versions[0]}
