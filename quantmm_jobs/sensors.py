"""Sensors of the model layer: retrain when enough new data arrived or the live predictions drifted; alert on
failed runs.

Both retraining sensors target ``train_job``, stopped by default (turn them on in the UI), skip while a
``train_job`` run is queued or in progress, and ask for training the same way (:func:`train_requests`):
``trained_backbones`` trains one backbone per run, so a trigger is one RunRequest per partition of the job (one per
backbone; one request if the job is unpartitioned), all with the trigger's tags (``quantmm/train_trigger`` and why)
and one run key per partition. Each run ranks every materialized backbone again in ``backbone_report``, so the
runs should go one at a time (a concurrency pool shared by the model assets, or a run-queue limit of 1 on the
``quantmm/train_trigger`` tag).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Protocol

import dagster as dg
import numpy as np

from quantmm_assets.core.evaluation.metrics import horizon_seconds
from quantmm_assets.core.monitoring.drift import DriftDecision, drift_decision, thin_to_horizon
from quantmm_assets.defs.partitions import partition_symbols
from quantmm_assets.models.finetune import SEPARATOR
from quantmm_jobs.model_jobs import train_job
from quantmm_jobs.schedules import ACTIVE, RANGE_END, RANGE_START
from quantmm_resources.alerts import alert_webhook, post_alert
from quantmm_resources.opstore import OperationalStore
from quantmm_resources.prediction_log import logged_series, read_predictions

log = logging.getLogger(__name__)

FEATURE_ASSET = dg.AssetKey("feature_matrix_main")
TRAINED_ASSET = dg.AssetKey("trained_backbones")
# New complete feature_matrix_main partitions that ask for a retrain: this many days x the universe's symbols.
MIN_NEW_DAYS = 7
TRIGGER_TAG = "quantmm/train_trigger"
ALERT_WEBHOOK_ENV = "QUANTMM_ALERT_WEBHOOK"


def _train_busy(instance: dg.DagsterInstance) -> dg.SkipReason | None:
    runs = instance.get_runs(filters=dg.RunsFilter(job_name=train_job.name, statuses=ACTIVE), limit=1)
    return dg.SkipReason(f"a {train_job.name} run ({runs[0].run_id[:8]}) is queued or in progress") if runs else None


def train_requests(context: dg.SensorEvaluationContext, run_key: str, tags: dict[str, str]) -> list[dg.RunRequest]:
    """One RunRequest of ``train_job`` per partition (backbone) of the job as the code location defines it."""
    repo = context.repository_def
    job = repo.get_job(train_job.name) if repo is not None and repo.has_job(train_job.name) else None
    if job is None or job.partitions_def is None:
        return [dg.RunRequest(run_key=run_key, tags=tags)]
    keys = job.partitions_def.get_partition_keys(dynamic_partitions_store=context.instance)
    keys = [k for k in keys if SEPARATOR not in k]  # the backbones; their fine-tune attempts have a sensor of their own
    return [dg.RunRequest(run_key=f"{run_key}:{k}", partition_key=k, tags=tags) for k in keys]


# ---------------------------------------------------------------------------------------------- new partitions


def _day(partition_key: str) -> date | None:
    try:
        return date.fromisoformat(partition_key.split("|", 1)[0])
    except ValueError:
        return None


def new_complete_partitions(instance: dg.DagsterInstance, today: date) -> tuple[list[str], int | None]:
    """The complete (dated before ``today``) ``feature_matrix_main`` partitions materialized after the latest
    ``trained_backbones`` materialization (all of them if it never was), sorted, and that materialization's
    storage id. A re-materialized old partition counts: its data changed."""
    latest = instance.fetch_materializations(TRAINED_ASSET, limit=1).records
    after = latest[0].storage_id if latest else None
    keys = instance.get_materialized_partitions(FEATURE_ASSET, after_cursor=after)
    return sorted(k for k in keys if (d := _day(k)) is not None and d < today), after


@dg.sensor(
    name="new_partitions_sensor",
    job=train_job,
    minimum_interval_seconds=600,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description=f"Retrain when at least {MIN_NEW_DAYS} days x symbols of new complete feature_matrix_main "
    "partitions were materialized since the latest trained_backbones materialization (one request per backbone; "
    "retried at most daily while no training succeeds).",
)
def new_partitions_sensor(context: dg.SensorEvaluationContext):
    today = datetime.now(UTC).date()
    keys, after = new_complete_partitions(context.instance, today)
    required = MIN_NEW_DAYS * len(partition_symbols())
    since = f"trained_backbones materialization {after}" if after is not None else "ever (never trained)"
    if len(keys) < required:
        return dg.SkipReason(
            f"{len(keys)} new complete feature_matrix_main partitions since {since}; {required} needed "
            f"({MIN_NEW_DAYS} days x {len(partition_symbols())} symbols)"
        )
    if skip := _train_busy(context.instance):
        return skip
    tags = {
        TRIGGER_TAG: "new_partitions",
        "quantmm/new_partitions": str(len(keys)),
        "quantmm/new_partition_range": f"{keys[0]}..{keys[-1]}",
    }
    context.log.info(f"{len(keys)} new complete partitions ({keys[0]}..{keys[-1]}) since {since}: retraining")
    # one request per training generation and day: a failed training is asked again the next day
    return train_requests(context, f"new_partitions:{after or 0}:{today}", tags)


# ---------------------------------------------------------------------------------------------- prediction drift


class ReferenceSource(Protocol):
    """What the drift sensor needs of the model registry (the ``registry`` resource)."""

    def reference_predictions(self, name: str, version: str) -> tuple[np.ndarray, np.ndarray]:
        """A version's reference predictions of expected_return: (bar timestamps in epoch us, values)."""
        ...


def model_name(symbol: str, horizon: str) -> str:
    return f"quantmm.{symbol}.{horizon}"


def active_versions(url: str) -> list[tuple[str, str, str, datetime, datetime]]:
    """(symbol, horizon, version, first and last logged bar_ts) of the version each (symbol, horizon) logged as
    active most recently."""
    series = logged_series(url, role="active")
    if series.is_empty():
        return []
    latest = series.sort("last_bar_ts", "first_bar_ts").group_by("symbol", "horizon", maintain_order=True).last()
    columns = ("symbol", "horizon", "model_version", "first_bar_ts", "last_bar_ts")
    return [tuple(r) for r in latest.sort("symbol", "horizon").select(columns).rows()]


def reference_of(registry: ReferenceSource, name: str, version: str) -> tuple[np.ndarray, np.ndarray]:
    """A version's reference as (ts_us, values) from ``registry.reference_predictions``; a registry whose
    ``reference_predictions`` returns the values alone is asked its ``reference_series`` (ts_us, values) instead.
    A reference without timestamps (all negative) cannot be thinned to the horizon: an error."""
    got = registry.reference_predictions(name, version)
    if not (isinstance(got, tuple) and len(got) == 2) and hasattr(registry, "reference_series"):
        got = registry.reference_series(name, version)
    if not (isinstance(got, tuple) and len(got) == 2):
        raise TypeError(f"the registry's reference of {name} version {version} is not (ts_us, values)")
    ts, values = np.asarray(got[0], dtype=np.int64), np.asarray(got[1], dtype=np.float64)
    if ts.size and (ts < 0).all():
        raise ValueError(f"the reference of {name} version {version} has no timestamps: it cannot be thinned")
    return ts, values


def check_series(
    url: str, registry: ReferenceSource, symbol: str, horizon: str, version: str, first: datetime, last: datetime
) -> DriftDecision:
    """The drift decision of one active version: its live predictions since first logged (``first``) against its
    reference. The decision compares at most half the thinned reference's length of the newest live predictions,
    so only that window of the log is read (a long-lived version's whole log need not be)."""
    ref_ts, ref_values = reference_of(registry, model_name(symbol, horizon), version)
    n_ref = thin_to_horizon(ref_ts, ref_values, horizon)[0].size
    since = max(first, last - timedelta(seconds=horizon_seconds(horizon) * (n_ref // 2 + 1)))
    live = read_predictions(url, symbol=symbol, horizon=horizon, role="active", version=version, since=since)
    live_ts = live["bar_ts"].dt.epoch("us").to_numpy()
    return drift_decision(ref_ts, ref_values, live_ts, live["expected_return"].to_numpy(), horizon)


def _series_key(symbol: str, horizon: str, version: str) -> str:
    return f"{symbol}.{horizon}@{version}"


def _load_cursor(cursor: str | None) -> dict[str, str]:
    """Drifted series already requested: {"SYMBOL.h@version": day requested}."""
    if not cursor:
        return {}
    try:
        return dict(json.loads(cursor).get("requested", {}))
    except (ValueError, AttributeError):
        return {}


@dg.sensor(
    name="prediction_drift_sensor",
    job=train_job,
    minimum_interval_seconds=3600,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Retrain when the live predictions of an active version drift from its reference distribution "
    "(PSI over one prediction per horizon window, above a threshold calibrated on the reference); once per "
    "drifted version.",
)
def prediction_drift_sensor(
    context: dg.SensorEvaluationContext, opstore: OperationalStore, registry: dg.ResourceParam[ReferenceSource]
):
    requested = _load_cursor(context.cursor)
    checked: list[str] = []
    drifted: list[tuple[str, DriftDecision]] = []
    active: set[str] = set()
    for symbol, horizon, version, first, last in active_versions(opstore.url):
        key = _series_key(symbol, horizon, version)
        active.add(key)
        try:
            decision = check_series(opstore.url, registry, symbol, horizon, version, first, last)
        except Exception as exc:  # one series' failure (e.g. no reference) must not blind the others
            context.log.warning(f"{key}: not checked: {type(exc).__name__}: {exc}")
            checked.append(f"{key} (not checked: {type(exc).__name__}: {exc})")
            continue
        context.log.info(f"{key}: {decision.reason}")
        if decision.drifted and key in requested:
            checked.append(f"{key} (drifted, retrain requested on {requested[key]})")
        elif decision.drifted:
            drifted.append((key, decision))
        else:
            checked.append(f"{key} ({decision.reason})")
    requested = {k: v for k, v in requested.items() if k in active}  # versions no longer active are forgotten
    if not drifted:
        reason = f"no new drift in {len(checked)} series: " + "; ".join(checked) if checked else "no active series"
        return dg.SensorResult(skip_reason=reason, cursor=json.dumps({"requested": requested}, sort_keys=True))
    if skip := _train_busy(context.instance):  # asked again once the run ends (the cursor is left as it is)
        names = ", ".join(k for k, _ in drifted)
        return dg.SensorResult(skip_reason=f"drift in {names}, but {skip.skip_message}", cursor=context.cursor)
    today = datetime.now(UTC).date().isoformat()
    drifted.sort(key=lambda kd: kd[0])
    names = [k for k, _ in drifted]
    tags = {
        TRIGGER_TAG: "prediction_drift",
        "quantmm/drifted": ",".join(names),
        "quantmm/drift_psi": ",".join(f"{k}={d.psi:.3f}>{d.threshold:.3f}" for k, d in drifted),
    }
    requests = train_requests(context, f"prediction_drift:{today}:{'+'.join(names)}", tags)
    requested |= dict.fromkeys(names, today)
    return dg.SensorResult(run_requests=requests, cursor=json.dumps({"requested": requested}, sort_keys=True))


# ---------------------------------------------------------------------------------------------- failure alerts


def _root_cause(error) -> str:
    """The innermost error message of a step failure (Dagster wraps the user's exception)."""
    if error is None:
        return "failed"
    while error.cause is not None:
        error = error.cause
    return error.message.strip()[:1000]


def failure_payload(
    run: dg.DagsterRun, step_failures: Sequence[dg.DagsterEvent], message: str | None = None
) -> dict[str, object]:
    """The JSON alert of a failed run: job, run id, partition, each failed step with its root error, a text line."""
    steps = [{"step": e.step_key, "error": _root_cause(e.step_failure_data.error)} for e in step_failures]
    span = [run.tags[k] for k in (RANGE_START, RANGE_END) if k in run.tags]
    partition = run.tags.get("dagster/partition") or "..".join(span)
    where = f" at {steps[0]['step']}: {steps[0]['error']}" if steps else (f": {message}" if message else "")
    return {
        "text": f"quantmm: {run.job_name} run {run.run_id[:8]} failed{where}",
        "job": run.job_name,
        "run_id": run.run_id,
        "partition": partition or None,
        "steps": steps,
        "message": message,
        "tags": {k: v for k, v in run.tags.items() if k.startswith("quantmm/")},
    }


@dg.run_failure_sensor(
    name="failure_alert_sensor",
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=f"Log every failed run (job, run id, failing step and error); POST it as JSON to "
    f"${ALERT_WEBHOOK_ENV} when set.",
)
def failure_alert_sensor(context: dg.RunFailureSensorContext) -> None:
    payload = failure_payload(context.dagster_run, context.get_step_failure_events(), context.failure_event.message)
    context.log.error(str(payload["text"]))
    url = alert_webhook()
    if url and not post_alert(url, payload):
        context.log.warning(f"the alert of run {context.dagster_run.run_id[:8]} was not delivered")


MODEL_SENSORS = [new_partitions_sensor, prediction_drift_sensor, failure_alert_sensor]
