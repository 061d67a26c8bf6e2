"""The model-layer sensors (quantmm_jobs/sensors.py) evaluated against a Dagster instance, an operational store on
SQLite and a stand-in registry: retrain on new complete partitions, on prediction drift; alert on failed runs."""

import json
import math
import socket
import threading
import zlib
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer

import dagster as dg
import numpy as np
import polars as pl
import pytest
from scipy.signal import lfilter

from quantmm_assets.defs.partitions import partition_symbols
from quantmm_jobs.model_jobs import MODEL_JOBS
from quantmm_jobs.sensors import (
    ALERT_WEBHOOK_ENV,
    MIN_NEW_DAYS,
    MODEL_SENSORS,
    TRIGGER_TAG,
    failure_alert_sensor,
    failure_payload,
    new_partitions_sensor,
    post_alert,
    prediction_drift_sensor,
)
from quantmm_resources.environment import build_resources
from quantmm_resources.opstore import OperationalStore
from quantmm_resources.prediction_log import write_predictions
from quantmm_resources.settings import QuantmmSettings, get_settings

STEP = timedelta(minutes=5)
PHI = 0.99  # AR(1) of the predictions on 5m steps: a 1h horizon keeps every 12th, still autocorrelated (0.89)
SCALE = 0.002
REF_START = datetime(2025, 1, 1, tzinfo=UTC)
LIVE_START = datetime(2025, 3, 10, tzinfo=UTC)


def ar1(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(n) * math.sqrt(1 - PHI**2)
    return SCALE * lfilter([1.0], [1.0, -PHI], noise, zi=[PHI * rng.standard_normal()])[0]


class StandInRegistry(dg.ConfigurableResource):
    """The one registry method the drift sensor uses: a version's reference predictions (60 days of 5m AR(1))."""

    days: int = 60
    unknown: list[str] = []

    def reference_predictions(self, name: str, version: str) -> tuple[np.ndarray, np.ndarray]:
        if name in self.unknown:
            raise KeyError(f"no registered model {name}")
        n = self.days * 288
        ts = int(REF_START.timestamp() * 1e6) + np.arange(n, dtype=np.int64) * 300_000_000
        return ts, ar1(n, zlib.crc32(f"{name}@{version}".encode()))


@pytest.fixture(scope="module")
def model_defs(tmp_path_factory) -> dg.Definitions:
    """The real asset graph with the model jobs and sensors (what definitions.py will compose)."""
    from quantmm_jobs.definitions import ASSETS

    settings = QuantmmSettings(home=tmp_path_factory.mktemp("home"))
    resources = build_resources(settings) | {"registry": StandInRegistry()}
    return dg.Definitions(assets=ASSETS, jobs=MODEL_JOBS, sensors=MODEL_SENSORS, resources=resources)


@pytest.fixture
def instance():
    with dg.instance_for_test() as inst:
        yield inst


def backbones(defs: dg.Definitions) -> list[str]:
    from quantmm_assets.models.registry import BACKBONES

    keys = defs.resolve_job_def("train_job").partitions_def.get_partition_keys()
    assert set(BACKBONES) < set(keys)  # the job's partitions hold the fine-tune attempts too
    return sorted(BACKBONES)  # a retrain asks for the backbones, never for their fine-tune attempts


def evaluate(sensor, defs, instance, cursor=None, **resources):
    with dg.build_sensor_context(instance=instance, definitions=defs, cursor=cursor, resources=resources) as ctx:
        result = sensor(ctx)
    if isinstance(result, dg.SkipReason):
        return [], result.skip_message, cursor
    if isinstance(result, dg.SensorResult):
        skip = result.skip_reason.skip_message if result.skip_reason else None
        return list(result.run_requests or []), skip, result.cursor
    return list(result), None, cursor


def start_train_run(defs, instance) -> dg.DagsterRun:
    job = defs.resolve_job_def("train_job")
    return instance.create_run_for_job(
        job_def=job, status=dg.DagsterRunStatus.STARTED, tags={"dagster/partition": "ridge"}
    )


# ---------------------------------------------------------------------------------------------- new partitions


def materialize(instance, asset: str, keys) -> None:
    for key in keys:
        instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=asset, partition=key))


def test_new_partitions_sensor_counts_complete_partitions_since_the_last_training(model_defs, instance):
    symbols = partition_symbols()
    need = MIN_NEW_DAYS * len(symbols)
    days = [f"2025-01-{d:02d}" for d in range(1, MIN_NEW_DAYS + 1)]
    keys = [f"{d}|{s}" for d in days for s in symbols]
    today = datetime.now(UTC).date().isoformat()
    materialize(instance, "feature_matrix_main", [*keys[:-1], *(f"{today}|{s}" for s in symbols)])
    requests, skip, _ = evaluate(new_partitions_sensor, model_defs, instance)
    assert not requests and skip.startswith(f"{need - 1} new complete") and f"{need} needed" in skip  # today: partial
    materialize(instance, "feature_matrix_main", keys[-1:])
    requests, _, _ = evaluate(new_partitions_sensor, model_defs, instance)
    assert sorted(r.partition_key for r in requests) == sorted(backbones(model_defs))
    first = requests[0]
    assert first.tags[TRIGGER_TAG] == "new_partitions" and first.tags["quantmm/new_partitions"] == str(need)
    assert first.tags["quantmm/new_partition_range"] == f"{min(keys)}..{max(keys)}"
    assert first.run_key.startswith("new_partitions:0:") and len({r.run_key for r in requests}) == len(requests)
    run = start_train_run(model_defs, instance)  # no second request while training runs
    requests, skip, _ = evaluate(new_partitions_sensor, model_defs, instance)
    assert not requests and "in progress" in skip
    instance.report_run_canceled(run)
    materialize(instance, "trained_backbones", ["ridge"])  # a training: the count starts again
    requests, skip, _ = evaluate(new_partitions_sensor, model_defs, instance)
    assert not requests and skip.startswith("0 new complete feature_matrix_main partitions since trained_backbones")
    materialize(instance, "feature_matrix_main", keys)  # re-materialized partitions count: their data changed
    requests, _, _ = evaluate(new_partitions_sensor, model_defs, instance)
    assert len(requests) == len(backbones(model_defs)) and not requests[0].run_key.startswith("new_partitions:0:")


# ---------------------------------------------------------------------------------------------- prediction drift


def log_series(url, symbol, version, days, start=LIVE_START, shift=0.0, role="active", seed=0) -> None:
    n = days * 288
    values = ar1(n, seed) + shift * SCALE
    write_predictions(
        url,
        pl.DataFrame(
            {
                "symbol": symbol,
                "horizon": "1h",
                "bar_ts": pl.datetime_range(start, start + (n - 1) * STEP, STEP, time_zone="UTC", eager=True),
                "model_version": version,
                "role": role,
                "expected_return": values,
            }
        ),
    )


@pytest.fixture
def opstore(tmp_path) -> OperationalStore:
    return OperationalStore(url=f"sqlite:///{tmp_path / 'ops.db'}")


def test_a_drifted_active_version_asks_for_one_retrain_once(model_defs, instance, opstore):
    url = opstore.url
    log_series(url, "BTCUSDT", "2", days=5, start=LIVE_START - timedelta(days=6), seed=1)  # no longer active
    log_series(url, "BTCUSDT", "3", days=5, shift=3.0, seed=2)  # the active version, 3 sd off its reference
    log_series(url, "BTCUSDT", "4", days=5, shift=-3.0, role="shadow", seed=3)  # shadows are never checked
    log_series(url, "ETHUSDT", "5", days=5, seed=4)
    registry = StandInRegistry()
    requests, _, cursor = evaluate(prediction_drift_sensor, model_defs, instance, opstore=opstore, registry=registry)
    assert sorted(r.partition_key for r in requests) == sorted(backbones(model_defs))
    today = datetime.now(UTC).date().isoformat()
    for r in requests:
        assert r.tags[TRIGGER_TAG] == "prediction_drift" and r.tags["quantmm/drifted"] == "BTCUSDT.1h@3"
        assert r.run_key == f"prediction_drift:{today}:BTCUSDT.1h@3:{r.partition_key}"
    assert json.loads(cursor) == {"requested": {"BTCUSDT.1h@3": today}}
    # the same drift is not asked again; the undrifted series is reported with its evidence
    requests, skip, cursor = evaluate(
        prediction_drift_sensor, model_defs, instance, cursor, opstore=opstore, registry=registry
    )
    assert not requests and f"BTCUSDT.1h@3 (drifted, retrain requested on {today})" in skip
    assert "ETHUSDT.1h@5 (PSI" in skip and "BTCUSDT.1h@2" not in skip and "@4" not in skip
    assert json.loads(cursor) == {"requested": {"BTCUSDT.1h@3": today}}


def test_undrifted_or_unchecked_series_skip_and_a_busy_trainer_defers(model_defs, instance, opstore):
    registry = StandInRegistry(unknown=["quantmm.SOLUSDT.1h"])
    requests, skip, _ = evaluate(prediction_drift_sensor, model_defs, instance, opstore=opstore, registry=registry)
    assert not requests and skip == "no active series"
    log_series(opstore.url, "ETHUSDT", "5", days=5, seed=4)
    log_series(opstore.url, "SOLUSDT", "1", days=5, shift=5.0, seed=5)  # no reference: reported, not fatal
    log_series(opstore.url, "XRPUSDT", "2", days=1, shift=5.0, seed=6)  # 24 thinned predictions: too few
    requests, skip, cursor = evaluate(prediction_drift_sensor, model_defs, instance, opstore=opstore, registry=registry)
    assert not requests and skip.startswith("no new drift in 3 series")
    assert "ETHUSDT.1h@5 (PSI" in skip and "<= threshold" in skip
    assert "SOLUSDT.1h@1 (not checked: KeyError" in skip and "XRPUSDT.1h@2 (insufficient live evidence" in skip
    log_series(opstore.url, "ADAUSDT", "7", days=5, shift=3.0, seed=7)
    run = start_train_run(model_defs, instance)
    requests, skip, kept = evaluate(
        prediction_drift_sensor, model_defs, instance, cursor, opstore=opstore, registry=registry
    )
    assert not requests and "drift in ADAUSDT.1h@7, but" in skip and "in progress" in skip and kept == cursor
    instance.report_run_canceled(run)
    requests, _, _ = evaluate(prediction_drift_sensor, model_defs, instance, cursor, opstore=opstore, registry=registry)
    assert {r.tags["quantmm/drifted"] for r in requests} == {"ADAUSDT.1h@7"}


class ValuesOnlyRegistry(StandInRegistry):
    """A registry whose reference_predictions returns the values alone, the (ts_us, values) as reference_series."""

    no_times: bool = False

    def reference_predictions(self, name: str, version: str) -> np.ndarray:
        return super().reference_predictions(name, version)[1]

    def reference_series(self, name: str, version: str) -> tuple[np.ndarray, np.ndarray]:
        ts, values = super().reference_predictions(name, version)
        return (np.full(ts.size, -1, np.int64) if self.no_times else ts), values


def test_a_registry_of_values_alone_is_asked_for_its_series_and_timestamps_are_required(model_defs, instance, opstore):
    log_series(opstore.url, "ETHUSDT", "5", days=5, shift=3.0, seed=4)
    args = (prediction_drift_sensor, model_defs, instance)
    requests, _, _ = evaluate(*args, opstore=opstore, registry=ValuesOnlyRegistry())
    assert {r.tags["quantmm/drifted"] for r in requests} == {"ETHUSDT.1h@5"}
    requests, skip, _ = evaluate(*args, opstore=opstore, registry=ValuesOnlyRegistry(no_times=True))
    assert not requests and "ETHUSDT.1h@5 (not checked: ValueError" in skip and "no timestamps" in skip


# ---------------------------------------------------------------------------------------------- failure alerts


@dg.op
def explode():
    raise ValueError("no fold spec beside walk_forward_folds")


@dg.job
def failing_job():
    explode()


@pytest.fixture
def failure_context(instance):
    result = failing_job.execute_in_process(instance=instance, raise_on_error=False, tags={"quantmm/trigger": "t"})
    assert not result.success
    return dg.build_run_status_sensor_context(
        sensor_name="failure_alert_sensor",
        dagster_event=result.get_run_failure_event(),
        dagster_instance=instance,
        dagster_run=result.dagster_run,
    ).for_run_failure()


class Hook(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self):
        Hook.received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_failure_payload_names_the_job_run_step_and_root_error(failure_context):
    run = failure_context.dagster_run
    payload = failure_payload(run, failure_context.get_step_failure_events(), failure_context.failure_event.message)
    assert payload["job"] == "failing_job" and payload["run_id"] == run.run_id and payload["partition"] is None
    (step,) = payload["steps"]
    assert step["step"] == "explode" and step["error"].startswith("ValueError: no fold spec")
    assert payload["text"] == f"quantmm: failing_job run {run.run_id[:8]} failed at explode: {step['error']}"
    assert payload["tags"] == {"quantmm/trigger": "t"}
    json.dumps(payload)  # the webhook body


def test_failure_sensor_posts_to_the_webhook_and_never_raises(failure_context, monkeypatch, caplog):
    server = HTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        Hook.received.clear()
        monkeypatch.setenv(ALERT_WEBHOOK_ENV, f"http://127.0.0.1:{server.server_port}/hooks/secret-token")
        get_settings.cache_clear()
        failure_alert_sensor(failure_context)
        (body,) = Hook.received
        assert body["job"] == "failing_job" and body["steps"][0]["step"] == "explode"
    finally:
        server.shutdown()
        server.server_close()
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    monkeypatch.setenv(ALERT_WEBHOOK_ENV, f"http://127.0.0.1:{closed}/hooks/secret-token")
    get_settings.cache_clear()
    failure_alert_sensor(failure_context)  # logged, not raised
    get_settings.cache_clear()
    assert not post_alert(f"http://127.0.0.1:{closed}/hooks/secret-token", {"text": "x"}, timeout=1)
    assert "not delivered to 127.0.0.1" in caplog.text and "secret-token" not in caplog.text
