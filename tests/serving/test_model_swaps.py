"""Alias moves reach the app without a failed request; a registry that cannot be read keeps the last versions
serving (and says so); a feature-contract change makes the app not ready; promotion over HTTP is the gated one."""

from __future__ import annotations

import shutil
import threading
from concurrent.futures import ThreadPoolExecutor

import polars as pl
import pytest
from fastapi.testclient import TestClient

from quantmm_resources.registry import ModelRegistry, history
from quantmm_resources.registry.gated_promotion import GATES
from quantmm_resources.registry.promotion import promote, rollback
from quantmm_serving.deps import get_instance
from quantmm_serving.main import build_state, create_app
from tests.assets.test_promotion_function import plant
from tests.serving_world import served_world

pytestmark = pytest.mark.xdist_group("serving")
ALICE = {"Authorization": "Bearer tok-alice"}


def _app(tmp_path, **settings_update):
    world, home = served_world(tmp_path)
    settings = world.settings(home).model_copy(update=settings_update)
    state = build_state(settings, world.registry(home))
    return world, state, create_app(settings, state)


def test_alias_moves_swap_in_under_concurrent_requests_with_no_failed_request(tmp_path):
    world, state, app = _app(tmp_path)
    registry, ops = state.store.registry, state.settings.resolved_ops_url
    name = "quantmm.BTCUSDT.1h"
    seen, failures, stop = set(), [], threading.Event()
    with TestClient(app) as client:

        def hammer() -> None:
            while not stop.is_set():
                r = client.get("/predict/BTCUSDT")
                if r.status_code != 200:
                    failures.append((r.status_code, r.text))
                else:
                    seen.add(r.json()["model_versions"]["1h"])

        with ThreadPoolExecutor(4) as pool:
            workers = [pool.submit(hammer) for _ in range(4)]
            try:  # promote v2, roll back to v1, promote v2 again: each swapped in by the poller's tick
                for _ in range(3):
                    before = state.store.snapshot.active[("BTCUSDT", "1h")].version
                    promote(registry, ops, name, "2", "carol", "swap test", {}, before)
                    state.tick(force_aliases=True)
                    assert state.store.snapshot.active[("BTCUSDT", "1h")].version == "2"
                    rollback(registry, ops, name, "carol", "swap test")
                    state.tick(force_aliases=True)
                    assert state.store.snapshot.active[("BTCUSDT", "1h")].version == "1"
            finally:
                stop.set()
            for w in workers:
                w.result()
    assert failures == []
    assert seen == {"1", "2"}  # requests were answered by both versions while they moved
    assert state.store.swaps == 6


def test_a_registry_that_cannot_be_read_keeps_the_last_versions_serving_and_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # one refused connection is enough to know
    _world, state, app = _app(tmp_path)
    with TestClient(app) as client:
        assert not client.get("/predict/BTCUSDT").json()["degraded"]
        state.store.registry = ModelRegistry(
            tracking_uri="http://127.0.0.1:1",
            artifact_root=str(tmp_path / "x"),  # a tracking server that is down
        )
        state.tick(force_aliases=True)
        body = client.get("/predict/BTCUSDT").json()
        assert body["model_versions"] == {"1h": "1", "4h": "1"}
        assert body["degraded"] and body["degraded_reasons"][0].startswith("registry unreachable since")
        assert "serving the versions loaded before" in body["degraded_reasons"][0]
        health = client.get("/health").json()
        assert health["status"] == "degraded" and health["models"]["quantmm.BTCUSDT.1h"] == "1"
        assert "quantmm_registry_errors_total 1.0" in client.get("/metrics").text


def test_a_feature_contract_change_makes_the_app_not_ready_naming_the_contract_it_expects(tmp_path):
    world, home = served_world(tmp_path)
    own_lake = tmp_path / "lake"
    target = own_lake.resolve()
    own_lake.unlink()
    shutil.copytree(target, own_lake)  # this test writes a contract: its own lake
    settings = world.settings(home)
    state = build_state(settings, world.registry(home))
    with TestClient(create_app(settings, state), raise_server_exceptions=False) as client:
        assert client.get("/ready").status_code == 200
        state.lake.write_feature_contract({**state.lake.feature_contract(), "version": "new-contract-7"})
        state._contract = None  # the app re-reads the contract every feature poll: now
        ready = client.get("/ready")
        assert ready.status_code == 503
        body = ready.json()
        assert body == {
            "ready": False,
            "reasons": [body["reasons"][0]],
            "expected_feature_contract": world.contract,
            "lake_feature_contract": "new-contract-7",
        }
        assert f"the active models expect contract {world.contract}" in body["reasons"][0]
        refused = client.get("/predict/BTCUSDT")
        assert refused.status_code == 503 and "feature contract changed" in refused.json()["detail"]


def test_promote_over_http_is_the_gated_promotion_and_the_ledger_names_the_operator(tmp_path, instance):
    _world, state, app = _app(tmp_path)
    app.dependency_overrides[get_instance] = lambda: instance
    with TestClient(app) as client:
        plant(instance, "2", failing="model_gate")
        refused = client.post("/registry/BTCUSDT/1h/promote", json={"reason": "try"}, headers=ALICE)
        assert refused.status_code == 409 and "model_gate" in refused.json()["detail"]
        plant(instance, "2")
        done = client.post("/registry/BTCUSDT/1h/promote", json={"reason": "gates passed"}, headers=ALICE)
        assert done.status_code == 200, done.text
        assert done.json() | {"ledger_id": None} == {
            "model": "quantmm.BTCUSDT.1h",
            "action": "promote",
            "from_version": "1",
            "to_version": "2",
            "operator": "alice",
            "ledger_id": None,
        }
        assert client.get("/predict/BTCUSDT").json()["model_versions"]["1h"] == "2"  # swapped in at once
        back = client.post(
            "/registry/BTCUSDT/1h/rollback", json={"reason": "regret"}, headers={"Authorization": "Bearer tok-bob"}
        )
        assert back.status_code == 200 and back.json()["to_version"] == "1" and back.json()["operator"] == "bob"
        assert client.get("/predict/BTCUSDT").json()["model_versions"]["1h"] == "1"
        ledger = client.get("/registry/history", params={"symbol": "BTCUSDT", "horizon": "1h"}).json()
        assert [(r["action"], r["operator"], r["to_version"]) for r in ledger[:2]] == [
            ("rollback", "bob", "1"),
            ("promote", "alice", "2"),
        ]
        assert history(state.settings.resolved_ops_url, "quantmm.BTCUSDT.1h").height == 3  # + the fixture's
        registry = state.store.registry
        assert registry.alias_map() == {n: registry.aliases(n) for n in registry.registered_names()}
        listed = {r["model"]: r for r in client.get("/registry/models").json()}
        assert listed["quantmm.BTCUSDT.1h"]["served_version"] == "1"
        assert listed["quantmm.BTCUSDT.1h"]["gates"] == dict.fromkeys(GATES, "passed")
        assert listed["quantmm.ETHUSDT.4h"]["gated_version"] is None
    assert pl.DataFrame(ledger).height == 3


def test_a_version_failing_on_the_bar_answers_503_with_the_reason_not_a_500(tmp_path, monkeypatch):
    _world, state, app = _app(tmp_path)
    with TestClient(app, raise_server_exceptions=False) as client:
        version = state.store.snapshot.active[("BTCUSDT", "1h")]

        def broken(data, idx):
            raise FloatingPointError("the heads overflowed")

        monkeypatch.setattr(version.backbone, "predict", broken)
        answer = client.get("/predict/BTCUSDT")
        assert answer.status_code == 503
        assert (
            answer.json()["detail"]
            == "BTCUSDT: the model failed on the current bar: FloatingPointError: the heads overflowed"
        )
        # one pooled refit serves every symbol here (shared object): the whole answer says so, the app stays up
        every = client.get("/predict").json()
        assert every["predictions"] == [] and set(every["unavailable"]) == {"BTCUSDT", "ETHUSDT"}
        assert client.get("/health").status_code == 200


def test_over_the_in_flight_limit_the_app_sheds_load_with_503_and_retry_after(tmp_path):
    from quantmm_serving.middleware import LoadShedding

    async def slow_app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    shedding = LoadShedding(slow_app, limit=2)
    sent = []

    async def send(message):
        sent.append(message)

    import asyncio

    shedding.in_flight = 2  # two requests being worked on
    asyncio.run(shedding({"type": "http", "path": "/predict/BTCUSDT"}, None, send))
    assert sent[0]["status"] == 503 and (b"retry-after", b"1") in sent[0]["headers"]
    assert b"overloaded: 2 requests in flight (limit 2)" in sent[1]["body"]
    sent.clear()
    asyncio.run(shedding({"type": "http", "path": "/health"}, None, send))  # health is always answered
    assert sent[0]["status"] == 200
    shedding.in_flight = 1
    sent.clear()
    asyncio.run(shedding({"type": "http", "path": "/predict/BTCUSDT"}, None, send))
    assert sent[0]["status"] == 200 and shedding.in_flight == 1
