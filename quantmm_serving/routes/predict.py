"""``GET /predict/{symbol}`` and ``GET /predict``: every horizon's prediction and signal on the current bar."""

from __future__ import annotations

import math
from dataclasses import fields
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from quantmm_assets.core.labels import HORIZONS
from quantmm_serving.deps import StateDep
from quantmm_serving.inference import HorizonPrediction
from quantmm_serving.schemas import AllPredictions, HorizonSignal, SymbolPrediction
from quantmm_serving.state import ServingState

router = APIRouter(tags=["predict"])


def _signal(p: HorizonPrediction) -> HorizonSignal:
    """The response of one prediction: everything from the version that made it (one snapshot, even mid-swap)."""
    values = {f.name: getattr(p, f.name) for f in fields(p)}  # the response's own fields are picked by name
    return HorizonSignal(
        **values
        | {
            "model_version": p.version,
            "side": int(math.copysign(1, p.expected_return)) if p.expected_return else 0,
            "edge": p.edge if math.isfinite(p.edge) else None,
            "score": p.score if math.isfinite(p.score) else None,
        }
    )


def answer(state: ServingState, symbol: str, horizons: list[str] | None = None) -> SymbolPrediction:
    """The prediction of one symbol; HTTPException 404 / 503 when it has no answer."""
    snap = state.store.snapshot
    if symbol not in snap.symbols():
        served = snap.symbols()
        raise HTTPException(
            status_code=404,
            detail=f"unknown symbol {symbol!r}: no active model answers for it (served: {served or 'none yet'})",
        )
    try:
        window, predictions = state.predict(symbol, horizons)
    except Exception as exc:  # a version failing on the bar is an outage of that answer, not a server error
        raise HTTPException(
            status_code=503, detail=f"{symbol}: the model failed on the current bar: {type(exc).__name__}: {exc}"[:500]
        ) from exc
    if window is None or not predictions:
        health = state.health()
        why = health.not_ready or state.degraded_reasons(symbol) or ["no active model of the requested horizons"]
        raise HTTPException(status_code=503, detail=f"{symbol}: no prediction: {'; '.join(why)}")
    reasons = state.degraded_reasons(symbol)
    return SymbolPrediction(
        symbol=symbol,
        bar_ts=window.bar_ts,
        feature_contract_version=predictions[0].contract_version,
        model_versions={p.horizon: p.version for p in predictions},
        horizons=[_signal(p) for p in predictions],
        degraded=bool(reasons),
        degraded_reasons=reasons,
    )


@router.get("/predict/{symbol}", response_model=SymbolPrediction)
def predict_symbol(
    symbol: str,
    state: StateDep,
    horizon: Annotated[list[str] | None, Query(description="horizons to answer (default: every active one)")] = None,
) -> SymbolPrediction:
    """Every active horizon's expected return, confidence, vol forecast and signal for the symbol's current bar."""
    served = state.store.snapshot.symbols()
    symbol = symbol.upper() if symbol.upper() in served else symbol
    if horizon:
        unknown = [h for h in horizon if h not in HORIZONS]
        if unknown:
            raise HTTPException(status_code=422, detail=f"unknown horizon {unknown}: one of {list(HORIZONS)}")
        active = state.store.snapshot.horizons(symbol)
        if symbol in served and (absent := [h for h in horizon if h not in active]):
            raise HTTPException(
                status_code=404, detail=f"{symbol}: no active model of horizon {absent} (active: {active})"
            )
    return answer(state, symbol, horizon)


@router.get("/predict", response_model=AllPredictions)
def predict_all(state: StateDep) -> AllPredictions:
    """:func:`predict_symbol` for every symbol with an active model."""
    out, unavailable = [], {}
    for symbol in state.store.snapshot.symbols():
        try:
            out.append(answer(state, symbol))
        except HTTPException as exc:
            unavailable[symbol] = str(exc.detail)
    reasons = state.degraded_reasons()
    return AllPredictions(predictions=out, unavailable=unavailable, degraded=bool(reasons), degraded_reasons=reasons)
