"""``finetune_sensor``: when a candidate fails the model gate, train a fine-tune attempt, then gate it again.

Per ``candidate_models`` partition (symbol x horizon), from its latest materialization and its ``model_gate`` result:

- the gate *failed* (not "insufficient evidence": more tuning cannot create evidence) and the candidate was
  ``<backbone>`` or attempt ``k`` < ``MAX_ATTEMPTS``: request ``train_job`` for partition ``<backbone>~ft<k+1>``
  (the attempt's grid, chosen by the inner purged k-fold only: ``models.finetune``), unless it is materialized;
- that attempt is materialized after the failed candidate run: request ``candidates_job`` for the partition, which
  gates again with every configuration tried (the attempts included) counted in the bootstrap;
- after ``MAX_ATTEMPTS`` nothing more is asked: the skip reason says so.

Run keys name the model version, so a request is made once. Stopped by default.
"""

from __future__ import annotations

import dagster as dg

from quantmm_assets.core.labels import HORIZONS
from quantmm_assets.defs.partitions import partition_symbols
from quantmm_assets.models.finetune import MAX_ATTEMPTS, attempt_key, parse_key
from quantmm_jobs.model_jobs import candidates_job, train_job
from quantmm_resources.registry.gated_promotion import CANDIDATE_ASSET, gate_status, partition_key

TRAINED = dg.AssetKey("trained_backbones")


def _latest_storage_id(instance: dg.DagsterInstance, key: dg.AssetKey, partition: str) -> int | None:
    ids = instance.get_latest_storage_id_by_partition(key, dg.DagsterEventType.ASSET_MATERIALIZATION, {partition})
    return ids.get(partition)


def finetune_decisions(instance: dg.DagsterInstance, symbol: str, horizon: str) -> tuple[list[dg.RunRequest], str]:
    """The requests for one (symbol, horizon) and one line saying why (or why none)."""
    status = gate_status(instance, symbol, horizon)
    label = f"{status.model_name}"
    report = status.reports.get("model_gate", {})
    if status.version is None or status.checks.get("model_gate") != "failed" or report.get("verdict") != "fail":
        return [], f"{label}: no failed model gate"
    backbone, _ = parse_key(str(report["candidate"]))
    key = str(partition_key(symbol, horizon))
    candidate_id = _latest_storage_id(instance, CANDIDATE_ASSET, key) or 0
    done = {k: _latest_storage_id(instance, TRAINED, attempt_key(backbone, k)) for k in range(1, MAX_ATTEMPTS + 1)}
    tags = {"quantmm/finetune_of": f"{label}@{status.version}"}
    newer = [k for k, sid in done.items() if sid is not None and sid > candidate_id]
    if newer:  # an attempt trained after this candidate run: gate again, counting it
        request = dg.RunRequest(
            run_key=f"regate:{label}:{status.version}", job_name=candidates_job.name, partition_key=key, tags=tags
        )
        return [request], f"{label}: gate again with {attempt_key(backbone, max(newer))}"
    todo = [k for k, sid in done.items() if sid is None]
    if not todo:
        return [], f"{label} v{status.version}: failed after {MAX_ATTEMPTS} fine-tune attempts of {backbone}: none more"
    nxt = attempt_key(backbone, todo[0])
    request = dg.RunRequest(
        run_key=f"finetune:{label}:{status.version}:{nxt}",
        job_name=train_job.name,
        partition_key=nxt,
        tags=tags | {"quantmm/finetune_attempt": nxt},
    )
    return [request], f"{label} v{status.version}: train {nxt}"


@dg.sensor(
    name="finetune_sensor",
    jobs=[train_job, candidates_job],
    minimum_interval_seconds=600,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="On a failed model gate: a fine-tune attempt (at most 2, models.finetune), then the gate again.",
)
def finetune_sensor(context: dg.SensorEvaluationContext):
    requests, lines = [], []
    for symbol in partition_symbols():
        for horizon in HORIZONS:
            found, why = finetune_decisions(context.instance, symbol, horizon)
            requests += found
            if found or "no failed" not in why:
                lines.append(why)
    if requests:
        return dg.SensorResult(run_requests=requests)
    return dg.SkipReason("; ".join(lines) or "no candidate failed its model gate")


@dg.asset_sensor(
    asset_key=dg.AssetKey("backbone_report"),
    job=candidates_job,
    name="candidates_sensor",
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="After each backbone_report (e.g. a retrain the sensors asked for): register and gate the candidate "
    "of every symbol x horizon the report covers (one candidates_job run per partition).",
)
def candidates_sensor(context: dg.SensorEvaluationContext, asset_event: dg.EventLogEntry):
    materialization = asset_event.asset_materialization
    metadata = materialization.metadata if materialization else {}
    symbols = [s for s in str(getattr(metadata.get("symbols"), "value", "")).split(", ") if s]
    horizons = [h for h in str(getattr(metadata.get("horizons"), "value", "")).split(", ") if h]
    if not symbols or not horizons:
        return dg.SkipReason("this backbone_report names no symbol or horizon (written before the candidates sensor)")
    return [
        dg.RunRequest(
            run_key=f"candidates:{asset_event.run_id}:{asset_event.timestamp}:{partition_key(s, h)}",
            partition_key=str(partition_key(s, h)),
            tags={"quantmm/after_report": str(asset_event.run_id)[:8]},
        )
        for s in symbols
        for h in horizons
    ]
