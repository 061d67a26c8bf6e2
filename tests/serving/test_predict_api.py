"""The prediction API on a served world (tests/serving_world.py): answers, parity with training and evaluation, the
prediction log with the shadow candidate, and the bad-input answers."""

from __future__ import annotations

from datetime import UTC, datetime

import mlflow
import numpy as np
import polars as pl
import pytest
from fastapi.testclient import TestClient

from quantmm_assets.core.evaluation.metrics import PREDICTION_SCHEMA, trading_steps
from quantmm_assets.core.signal import signal
from quantmm_resources.prediction_log import read_predictions
from quantmm_resources.registry import to_model_input
from quantmm_serving.feature_window import SymbolWindow
from quantmm_serving.inference import predict_bar
from quantmm_serving.main import build_state, create_app
from tests.serving_world import HORIZONS, SERVED, SIGNAL, served_world

pytestmark = pytest.mark.xdist_group("serving")


@pytest.fixture
def served(tmp_path):
    world, home = served_world(tmp_path)
    settings = world.settings(home)
    state = build_state(settings, world.registry(home))
    with TestClient(create_app(settings, state), raise_server_exceptions=False) as client:
        yield world, state, client


def test_predict_names_the_bar_the_contract_and_the_versions_and_applies_the_one_signal(served):
    world, _state, client = served
    body = client.get("/predict/BTCUSDT").json()
    newest = world.matrix.filter(pl.col("symbol") == "BTCUSDT")["ts_event"].max()
    assert body["bar_ts"].replace("Z", "+00:00") == newest.isoformat()
    assert body["feature_contract_version"] == world.contract
    assert body["model_versions"] == {"1h": "1", "4h": "1"} and not body["degraded"]
    for h in body["horizons"]:
        er, cost, vol, conf = h["expected_return"], h["cost"], h["vol_forecast"], h["signal_confidence"]
        assert h["edge"] == pytest.approx(abs(er) - cost)
        assert h["score"] == pytest.approx((abs(er) - cost) / max(vol, 1e-8))
        assert h["position"] == signal(er, cost, vol, conf, h["horizon"], SIGNAL)[()]
        assert h["action"] == {1.0: "buy", -1.0: "sell", 0.0: "flat"}[h["position"]]
        assert (h["score_threshold"], h["confidence_threshold"]) == SIGNAL.thresholds(h["horizon"])
        assert 0.0 <= h["gate"] <= 1.0
    every = client.get("/predict").json()
    assert [p["symbol"] for p in every["predictions"]] == list(SERVED) and every["unavailable"] == {}
    only = client.get("/predict/ETHUSDT", params={"horizon": "4h"}).json()
    assert [h["horizon"] for h in only["horizons"]] == ["4h"]


def _steps_of(world, symbol: str, horizon: str, predicted: pl.DataFrame) -> pl.DataFrame:
    labels = world.labels.filter((pl.col("symbol") == symbol) & (pl.col("horizon") == horizon))
    frame = predicted.join(labels.select("ts_event", "ret", "rv", "cost", "funding"), on="ts_event", how="inner")
    frame = frame.with_columns(
        backbone=pl.lit("ridge"),
        variant=pl.lit("full"),
        fold=pl.lit(0, pl.Int64),
        symbol=pl.lit(symbol),
        horizon=pl.lit(horizon),
    )
    return trading_steps(frame.select(list(PREDICTION_SCHEMA)), horizon, SIGNAL)


def test_parity_the_served_row_prediction_and_position_are_training_s_and_the_evaluation_s(served):
    """For bars in the lake: the app's feature row is feature_matrix_main's row, its expected_return the registered
    model's batch prediction (loaded through MLflow), and its position the evaluation's trading step."""
    world, state, _client = served
    for symbol in SERVED:
        lake_rows = world.matrix.filter(pl.col("symbol") == symbol).sort("ts_event")
        live = state.window.current(symbol).rows  # what the app read from the lake's partition files
        assert live.tail(1).select(lake_rows.columns).equals(lake_rows.tail(1))
        for horizon in HORIZONS:
            version = state.store.snapshot.active[(symbol, horizon)]
            mlflow.set_registry_uri(state.store.registry.tracking_uri)
            model = mlflow.pyfunc.load_model(f"models:/quantmm.{symbol}.{horizon}@active")
            columns = ["symbol", "ts_event", "symbol_code", *world.names]
            batch = model.predict(to_model_input(lake_rows.select(columns), world.contract))
            predicted = pl.DataFrame(
                {
                    "ts_event": lake_rows["ts_event"],
                    **{
                        c: batch[c].to_numpy()
                        for c in (
                            "expected_return",
                            "vol_forecast",
                            "signal_confidence",
                            "y_base",
                            "gate",
                            "text_contribution",
                        )
                    },
                    "degraded": batch["degraded"].to_numpy(),
                }
            )
            steps = _steps_of(world, symbol, horizon, predicted)
            assert steps.height >= 20
            for step in steps.gather(np.linspace(0, steps.height - 1, 6).astype(int)).iter_rows(named=True):
                upto = lake_rows.filter(pl.col("ts_event") <= step["ts_event"]).tail(288)
                window = SymbolWindow(symbol, upto, ())
                served_row = window.rows.tail(1)
                assert served_row.equals(lake_rows.filter(pl.col("ts_event") == step["ts_event"]))
                got = predict_bar(window, version)
                assert got.bar_ts == step["ts_event"]
                assert got.expected_return == pytest.approx(step["expected_return"], rel=1e-12, abs=1e-15)
                assert got.cost == pytest.approx(step["cost"], rel=1e-12)
                assert got.position == step["position"]


def test_every_bar_is_logged_once_per_version_and_role_with_the_candidate_in_shadow(served, tmp_path):
    world, state, client = served
    for _ in range(3):
        assert client.get("/predict/BTCUSDT").status_code == 200
    state.writer.flush()
    logged = read_predictions(state.settings.resolved_ops_url)
    bar = world.matrix["ts_event"].max()
    assert logged.filter(pl.col("bar_ts") != bar).is_empty()
    keys = sorted(logged.select("symbol", "horizon", "model_version", "role").iter_rows())
    expected = sorted((s, h, v, r) for s in SERVED for h in HORIZONS for v, r in (("1", "active"), ("2", "shadow")))
    assert keys == expected  # one row each: repeated requests add none; the candidate predicted in shadow
    shadow = logged.filter(pl.col("role") == "shadow")
    assert shadow["cost"].is_not_null().all() and shadow["gate"].is_between(0, 1).all()
    served_er = {h["horizon"]: h["expected_return"] for h in client.get("/predict/BTCUSDT").json()["horizons"]}
    active = logged.filter((pl.col("role") == "active") & (pl.col("symbol") == "BTCUSDT"))
    assert dict(zip(active["horizon"], active["expected_return"], strict=True)) == pytest.approx(served_er)


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "says"),
    [
        ("get", "/predict/DOGEUSDT", {}, 404, "unknown symbol 'DOGEUSDT'"),
        ("get", "/predict/BTCUSDT", {"params": {"horizon": "2h"}}, 422, "unknown horizon ['2h']"),
        ("get", "/predict/BTCUSDT", {"params": {"horizon": "1d"}}, 404, "no active model of horizon ['1d']"),
        ("post", "/registry/BTCUSDT/1h/promote", {"json": {"reason": "x"}}, 401, "Authorization: Bearer"),
        (
            "post",
            "/registry/BTCUSDT/1h/promote",
            {"json": {"reason": "x"}, "headers": {"Authorization": "Bearer nope"}},
            403,
            "unknown token",
        ),
        (
            "post",
            "/registry/BTCUSDT/2h/rollback",
            {"json": {"reason": "x"}, "headers": {"Authorization": "Bearer tok-bob"}},
            422,
            "unknown horizon '2h'",
        ),
        (
            "post",
            "/registry/BTCUSDT/1h/rollback",
            {"json": {}, "headers": {"Authorization": "Bearer tok-bob"}},
            422,
            "body.reason: Field required",
        ),
        (
            "post",
            "/registry/BTCUSDT/1h/rollback",
            {
                "content": b"x" * 70_000,
                "headers": {"Authorization": "Bearer tok-bob", "Content-Type": "application/json"},
            },
            413,
            "over the limit of 65536 bytes",
        ),
        ("get", "/registry/history", {"params": {"symbol": "BTCUSDT"}}, 422, "give both symbol and horizon"),
    ],
)
def test_bad_input_gets_a_clear_error_never_a_500(served, method, path, kwargs, status, says):
    _world, _state, client = served
    response = getattr(client, method)(path, **kwargs)
    assert response.status_code == status, response.text
    assert says in response.json()["detail"]


def test_metrics_are_prometheus_text_with_quantmm_names(served):
    _world, _state, client = served
    client.get("/predict/BTCUSDT")
    client.get("/predict/NOPE")
    text = client.get("/metrics").text
    assert 'quantmm_http_requests_total{method="GET",route="/predict/{symbol}",status="200"} 1.0' in text
    assert 'quantmm_http_requests_total{method="GET",route="/predict/{symbol}",status="404"} 1.0' in text
    assert 'quantmm_http_request_duration_seconds_bucket{le="0.015",method="GET",route="/predict/{symbol}"}' in text
    assert 'quantmm_predictions_total{horizon="1h",role="shadow",symbol="BTCUSDT"} 1.0' in text
    assert "quantmm_ready 1.0" in text and "quantmm_degraded 0.0" in text


def test_stale_features_and_an_old_model_make_every_answer_degraded(tmp_path):
    world, home = served_world(tmp_path)
    settings = world.settings(home).model_copy(update={"feature_staleness_minutes": 30.0, "model_max_age_days": 5.0})
    state = build_state(settings, world.registry(home))
    with TestClient(create_app(settings, state)) as client:
        body = client.get("/predict/BTCUSDT").json()
        assert body["degraded"]
        reasons = " | ".join(body["degraded_reasons"])
        assert "BTCUSDT: newest feature row is 2025-03-10 23:55 UTC" in reasons and "limit 30 minutes" in reasons
        assert "quantmm.BTCUSDT.1h v1 was trained on data up to 2025-03-07 23:55" in reasons
        health = client.get("/health").json()
        assert health["status"] == "degraded" and len(health["degraded_reasons"]) == 6  # 4 models + 2 symbols


def test_a_prediction_the_log_refuses_is_counted_and_named_and_never_blocks_the_others(tmp_path):
    from quantmm_serving.prediction_writer import PredictionWriter

    writer = PredictionWriter(f"sqlite:///{tmp_path / 'ops.db'}")
    bar = datetime(2025, 3, 1, tzinfo=UTC)
    row = {"symbol": "BTCUSDT", "horizon": "1h", "bar_ts": bar, "model_version": "1", "role": "active"}
    assert (
        writer.submit([{**row, "expected_return": float("nan")}, {**row, "role": "shadow", "expected_return": 0.1}])
        == 1
    )
    assert writer.flush() == 1 and writer.pending == 0 and writer.failures == 0
    assert writer.rejected == 1 and "expected_return nan" in writer.last_rejected
    assert read_predictions(writer.url)["role"].to_list() == ["shadow"]
