"""The paper loop over HTTP: its status and PnL, and the kill switch (mutating calls need a bearer token)."""

from __future__ import annotations

import polars as pl
from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from quantmm_assets.core.execution.attribution import horizon_pnl, symbol_pnl
from quantmm_resources.paper_store import halt_state, read, set_halt
from quantmm_serving.deps import OperatorDep, SettingsDep, StateDep
from quantmm_serving.paper.run import summarize
from quantmm_serving.records import records

router = APIRouter(prefix="/paper", tags=["paper"])


class SwitchRequest(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)
    book: str = Field(default="paper", min_length=1, max_length=64)


@router.get("/status")
def status(settings: SettingsDep, book: str = "paper") -> dict:
    """Equity, PnL with fees, slippage, impact and funding apart, the step statuses and the kill switch."""
    ops = settings.resolved_ops_url
    return {**summarize(ops, book), "kill_switch": halt_state(ops, book)}


@router.get("/pnl")
def pnl(settings: SettingsDep, state: StateDep, book: str = "paper") -> dict:
    """Paper PnL by symbol, by horizon and by bucket, with fees, slippage, impact and funding apart in each."""
    ops = settings.resolved_ops_url
    steps, fills, funding, orders = (read(ops, t, book) for t in ("steps", "fills", "funding", "orders"))
    by_symbol = symbol_pnl(steps, fills, funding)
    by_horizon = horizon_pnl(steps, fills, orders, state.allocator.buckets, funding)
    by_bucket = by_horizon.group_by("bucket").agg(pl.exclude("symbol", "horizon", "bucket").sum()).sort("bucket")
    return {
        "book": book,
        "steps": steps.height,
        "by_symbol": records(by_symbol),
        "by_horizon": records(by_horizon),
        "by_bucket": records(by_bucket),
        "totals": records(by_symbol.select(pl.exclude("symbol").sum()))[0] if by_symbol.height else {},
    }


@router.post("/kill")
async def kill(body: SwitchRequest, operator: OperatorDep, settings: SettingsDep) -> dict:
    """Engage the kill switch: the loop's next step cancels open orders and places none until resumed."""
    await run_in_threadpool(set_halt, settings.resolved_ops_url, body.book, True, body.reason, operator)
    return {"book": body.book, "halted": True, "operator": operator, "reason": body.reason}


@router.post("/resume")
async def resume(body: SwitchRequest, operator: OperatorDep, settings: SettingsDep) -> dict:
    """Release the kill switch."""
    await run_in_threadpool(set_halt, settings.resolved_ops_url, body.book, False, body.reason, operator)
    return {"book": body.book, "halted": False, "operator": operator, "reason": body.reason}
