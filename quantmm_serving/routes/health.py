"""``/health`` (degraded or not, and why), ``/ready`` (able to answer) and ``/metrics`` (Prometheus)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from quantmm_serving.deps import StateDep
from quantmm_serving.schemas import HealthBody, ReadyBody

router = APIRouter(tags=["health"])


@router.get("/health", response_model=HealthBody)
def health(state: StateDep) -> HealthBody:
    """Degraded reasons (registry down, old models, stale features, failing log writes) and what is loaded."""
    reasons = state.degraded_reasons()
    snap = state.store.snapshot
    bars = {s: w.bar_ts for s in snap.symbols() if (w := state.window.current(s)) is not None}
    notes = sorted({f"{v.name} v{v.version}: {n}" for v in snap.active.values() for n in v.notes})
    return HealthBody(
        status="degraded" if reasons else "ok",
        degraded=bool(reasons),
        degraded_reasons=reasons,
        models={v.name: v.version for v in snap.active.values()},
        shadow_models={v.name: v.version for v in snap.shadow.values()},
        bars=bars,
        prediction_log_pending=state.writer.pending,
        notes=notes,
    )


@router.get("/ready", response_model=ReadyBody, responses={503: {"model": ReadyBody}})
def ready(state: StateDep):
    """200 when an active model and its features are loaded under the same feature contract; 503 naming why not."""
    h = state.health()
    body = ReadyBody(
        ready=h.ready,
        reasons=h.not_ready,
        expected_feature_contract=h.expected_contract,
        lake_feature_contract=h.lake_contract,
    )
    return body if h.ready else JSONResponse(status_code=503, content=body.model_dump())


@router.get("/metrics")
def metrics(state: StateDep) -> Response:
    """Prometheus text format."""
    state.health()  # sets the state gauges (ready, degraded, ages)
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
