"""Registry endpoints: list, history (the promotion ledger), promote a gated candidate, roll back.

Promotion goes through the one gated promotion function (``quantmm_resources.registry.gated_promotion``), as the
job and the CLI do; mutating calls need a bearer token, and the ledger records the operator it names.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from fastapi.concurrency import run_in_threadpool

from quantmm_resources.registry import history
from quantmm_resources.registry.gated_promotion import (
    GATES,
    gate_status,
    promote_candidate,
    rollback_active,
)
from quantmm_resources.registry.promotion import AliasMoveFailed
from quantmm_serving.deps import InstanceDep, OperatorDep, SettingsDep, StateDep, valid_horizon
from quantmm_serving.schemas import LedgerMove, PromoteRequest, RollbackRequest

router = APIRouter(prefix="/registry", tags=["registry"])


@router.get("/models")
def list_models(state: StateDep, instance: InstanceDep) -> list[dict]:
    """Per registered (symbol, horizon): its aliases, the version served, and the gate verdict of its candidate."""
    registry, snap, rows = state.store.registry, state.store.snapshot, []
    for name in registry.registered_names():
        _, symbol, horizon = name.split(".", 2)
        aliases = registry.aliases(name)
        status = gate_status(instance, symbol, horizon)
        served = snap.active.get((symbol, horizon))
        rows.append(
            {
                "model": name,
                "aliases": aliases,
                "served_version": served.version if served else None,
                "gated_version": status.version,
                "gates": {g: status.checks.get(g, "not run") for g in GATES},
                "promotable": status.passed and aliases.get("candidate") == status.version,
            }
        )
    return rows


@router.get("/history")
def ledger(settings: SettingsDep, symbol: str | None = None, horizon: str | None = None) -> list[dict]:
    """The promotion ledger (newest first), of one model when symbol and horizon are given."""
    if (symbol is None) != (horizon is None):
        raise HTTPException(status_code=422, detail="give both symbol and horizon, or neither")
    name = f"quantmm.{symbol}.{valid_horizon(horizon)}" if symbol and horizon else None
    return history(settings.resolved_ops_url, name).to_dicts()


@router.post("/{symbol}/{horizon}/promote", response_model=LedgerMove)
async def promote(
    symbol: str,
    horizon: str,
    body: PromoteRequest,
    operator: OperatorDep,
    state: StateDep,
    settings: SettingsDep,
    instance: InstanceDep,
) -> LedgerMove:
    """Promote the gated candidate of (symbol, horizon); 409 when a gate did not pass or another move won."""
    await _known(state, symbol, valid_horizon(horizon))
    done = await _move(
        state,
        promote_candidate,
        instance,
        state.store.registry,
        settings.resolved_ops_url,
        symbol,
        horizon,
        operator,
        body.reason,
        body.version,
    )
    return _ledger_row(settings.resolved_ops_url, symbol, horizon, done["ledger_id"])


@router.post("/{symbol}/{horizon}/rollback", response_model=LedgerMove)
async def rollback(
    symbol: str, horizon: str, body: RollbackRequest, operator: OperatorDep, state: StateDep, settings: SettingsDep
) -> LedgerMove:
    """Make the previously active version of (symbol, horizon) active again (a ledger row of its own)."""
    await _known(state, symbol, valid_horizon(horizon))
    ledger_id = await _move(
        state, rollback_active, state.store.registry, settings.resolved_ops_url, symbol, horizon, operator, body.reason
    )
    return _ledger_row(settings.resolved_ops_url, symbol, horizon, ledger_id)


async def _move(state, move, *args):
    """Run a promotion or rollback (409 when refused or raced, 502 when the aliases did not follow the ledger), then
    swap the new version in now (the poller would within its interval)."""
    try:
        done = await run_in_threadpool(move, *args)
    except ValueError as exc:  # PromotionRefused, PromotionConflict, nothing to roll back
        raise HTTPException(status_code=409, detail=str(exc)) from exc
    except AliasMoveFailed as exc:
        raise HTTPException(status_code=502, detail=str(exc)) from exc
    await run_in_threadpool(state.tick, True)
    return done


def _ledger_row(ops_url: str, symbol: str, horizon: str, ledger_id: int) -> LedgerMove:
    """The ledger row the move wrote."""
    ledger = history(ops_url, f"quantmm.{symbol}.{horizon}")
    row = ledger.filter(ledger["id"] == ledger_id).row(0, named=True)
    return LedgerMove(
        model=row["model_name"],
        action=row["action"],
        from_version=row["from_version"],
        to_version=row["to_version"],
        operator=row["operator"],
        ledger_id=row["id"],
    )


async def _known(state, symbol: str, horizon: str) -> None:
    """404 for a model the registry does not hold."""
    name = f"quantmm.{symbol}.{horizon}"
    names = await run_in_threadpool(state.store.registry.registered_names)
    if name not in names:
        raise HTTPException(status_code=404, detail=f"no registered model {name} (registered: {names or 'none'})")
