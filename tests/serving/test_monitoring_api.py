"""The monitoring and paper endpoints: served predictions of past bars (the app's own path) logged, then judged
against the lake's labels; the paper PnL against its ledger tables; the kill switch over HTTP."""

from __future__ import annotations

from datetime import timedelta

import polars as pl
import pytest
from fastapi.testclient import TestClient

from quantmm_resources.paper_store import halt_state, read
from quantmm_resources.prediction_log import write_predictions
from quantmm_serving.feature_window import SymbolWindow
from quantmm_serving.inference import predict_versions
from quantmm_serving.main import build_state, create_app
from quantmm_serving.paper.engine import PaperConfig
from quantmm_serving.paper.run import run_replay
from tests.serving_world import SERVED, served_world

pytestmark = pytest.mark.xdist_group("serving")
ALICE = {"Authorization": "Bearer tok-alice"}


@pytest.fixture
def monitored(tmp_path):
    """The app, with the predictions it would have served on every hourly bar of days 2-6 logged (active, shadow)."""
    world, home = served_world(tmp_path)
    settings = world.settings(home)
    state = build_state(settings, world.registry(home))
    state.tick(force_aliases=True)
    snap = state.store.snapshot
    rows = []
    for symbol in SERVED:
        lake_rows = world.matrix.filter(pl.col("symbol") == symbol).sort("ts_event")
        start = lake_rows["ts_event"][0] + timedelta(days=1)
        bars = lake_rows.filter(
            (pl.col("ts_event") >= start)
            & (pl.col("ts_event") < start + timedelta(days=5))
            & (pl.col("ts_event").dt.minute() == 0)
        )["ts_event"]
        for bar in bars:
            window = SymbolWindow(symbol, lake_rows.filter(pl.col("ts_event") <= bar).tail(288), ())
            for role, versions in (("active", snap.active), ("shadow", snap.shadow)):
                mine = [v for (s, _h), v in versions.items() if s == symbol]
                rows += [p.log_row(role) for p in predict_versions(window, mine)]
    write_predictions(settings.resolved_ops_url, pl.DataFrame(rows))
    with TestClient(create_app(settings, state)) as client:
        yield world, settings, state, client, pl.DataFrame(rows)


def test_realized_performance_counts_every_logged_prediction_and_its_completed_label(monitored):
    world, _settings, _state, client, logged = monitored
    body = client.get("/monitoring/performance").json()
    rows = {(r["horizon"], r["role"]): r for r in body["rows"]}
    labels = world.labels.filter(pl.col("complete"))
    for (horizon, role), r in rows.items():
        mine = logged.filter((pl.col("horizon") == horizon) & (pl.col("role") == role))
        realized = mine.join(
            labels.filter(pl.col("horizon") == horizon).select("symbol", pl.col("ts_event").alias("bar_ts")),
            on=["symbol", "bar_ts"],
        )
        assert r["n_predictions"] == mine.height == 2 * 5 * 24
        assert r["n_realized"] == realized.height > 0 and r["n_pending"] == mine.height - realized.height
        # one step per horizon window and symbol: 1h steps are the hourly bars, 4h every fourth
        assert r["n_steps"] == realized.height // (1 if horizon == "1h" else 4)
        assert r["verdict"] in ("sufficient evidence", "insufficient evidence") and r["ic"] is not None
    assert set(rows) == {(h, role) for h in ("1h", "4h") for role in ("active", "shadow")}
    by_symbol = client.get("/monitoring/performance", params={"by": "symbol"}).json()["rows"]
    assert {r["symbol"] for r in by_symbol} == set(SERVED)
    assert client.get("/monitoring/performance", params={"by": "nope"}).status_code == 422


def test_calibration_vol_multimodal_shadow_and_drift_answer_with_their_evidence(monitored):
    _world, _settings, _state, client, logged = monitored
    calibration = client.get("/monitoring/calibration").json()
    assert {r["horizon"] for r in calibration["summary"]} == {"1h", "4h"}
    assert sum(r["n"] for r in calibration["reliability"] if r["horizon"] == "1h" and r["role"] == "active") == 240
    vol = {(r["horizon"], r["role"]): r for r in client.get("/monitoring/vol").json()["rows"]}
    assert vol[("1h", "active")]["n"] == 240 and 0 <= vol[("1h", "active")]["coverage_90"] <= 1
    multimodal = {(r["horizon"], r["role"]): r for r in client.get("/monitoring/multimodal").json()["rows"]}
    active_1h = logged.filter((pl.col("horizon") == "1h") & (pl.col("role") == "active"))
    assert multimodal[("1h", "active")]["text_coverage"] == pytest.approx((~active_1h["text_missing"]).mean())
    shadow = client.get("/monitoring/shadow").json()["rows"]
    assert {(r["symbol"], r["horizon"], r["active_version"], r["shadow_version"]) for r in shadow} == {
        (s, h, "1", "2") for s in SERVED for h in ("1h", "4h")
    }
    drift = client.get("/monitoring/drift").json()["rows"]
    assert {r["model"] for r in drift} == {f"quantmm.{s}.{h}" for s in SERVED for h in ("1h", "4h")}
    for r in drift:  # the drift sensor's decision: calibrated threshold, the evidence on both sides
        if r["model"].endswith("1h"):
            assert r["reason"].startswith("PSI ") and r["psi"] >= 0 and r["threshold"] > 0
            assert r["n_live_thinned"] == 120 and r["n_reference_thinned"] >= 60
        else:  # 9 days hold 54 4h windows: too few to calibrate a threshold, and the answer says so
            assert not r["drifted"] and r["reason"] == "reference too short to calibrate: 54 thinned predictions < 60"


def test_paper_endpoints_match_the_ledger_and_the_kill_switch_needs_a_token(monitored):
    world, settings, _state, client, _ = monitored
    end = world.matrix["ts_event"].max()
    run_replay(settings, end - timedelta(days=2), end, PaperConfig(book="paper"), symbols=list(SERVED))
    status = client.get("/paper/status").json()
    steps = read(settings.resolved_ops_url, "steps", "paper")
    assert status["equity"] == pytest.approx(steps["equity"][-1]) and status["steps"] == steps.height
    pnl = client.get("/paper/pnl").json()
    fills = read(settings.resolved_ops_url, "fills", "paper")
    assert pnl["totals"]["fees"] == pytest.approx(fills["fee"].sum())
    assert pnl["totals"]["net"] == pytest.approx(steps["equity"][-1] - 100_000.0, abs=1e-6)
    for part in ("price_pnl", "fees", "funding", "net"):  # the buckets add up to the book, costs and funding apart
        assert sum(r[part] for r in pnl["by_bucket"]) == pytest.approx(pnl["totals"][part], abs=1e-6)
    portfolio = client.get("/portfolio").json()
    assert portfolio["current_from"] == "paper book"
    assert client.post("/paper/kill", json={"reason": "x"}).status_code == 401
    done = client.post("/paper/kill", json={"reason": "desk review"}, headers=ALICE)
    assert done.status_code == 200 and halt_state(settings.resolved_ops_url, "paper")["operator"] == "alice"
    assert client.get("/paper/status").json()["kill_switch"]["halted"] is True
    client.post("/paper/resume", json={"reason": "reviewed"}, headers=ALICE)
    assert halt_state(settings.resolved_ops_url, "paper")["halted"] is False
