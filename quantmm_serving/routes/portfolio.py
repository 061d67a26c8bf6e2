"""``GET /portfolio``: the allocator's target weight per symbol from every active horizon, with each horizon's
contribution (the paper loop sizes its orders with the same call)."""

from __future__ import annotations

import polars as pl
from fastapi import APIRouter

from quantmm_assets.core.portfolio.allocator import allocate
from quantmm_assets.core.portfolio.inputs import signals_frame
from quantmm_serving.deps import StateDep

router = APIRouter(tags=["portfolio"])


@router.get("/portfolio")
def portfolio(state: StateDep) -> dict:
    """Target weights (fractions of equity) per symbol, the constraints that bound them and each horizon's part."""
    rows, funding, returns, bars, unavailable, versions = [], {}, [], {}, {}, {}
    for symbol in state.store.snapshot.symbols():
        try:
            window, predictions = state.predict(symbol)
        except Exception as exc:  # a model failing on the bar: that symbol is unavailable, the others allocate
            unavailable[symbol] = f"the model failed on the current bar: {type(exc).__name__}: {exc}"[:300]
            continue
        if window is None or not predictions:
            unavailable[symbol] = state.window.errors.get(symbol, "no prediction for its current bar")
            continue
        bars[symbol] = window.bar_ts
        versions[symbol] = {
            "feature_contract_version": predictions[0].contract_version,
            "model_versions": {p.horizon: p.version for p in predictions},
        }
        last = window.rows.tail(1)
        funding[symbol] = last["funding_rate"][0] if "funding_rate" in last.columns else None
        returns.append(window.rows.select("symbol", "ts_event", pl.col("ret_5m").alias("ret")))
        rows += [
            {
                "symbol": p.symbol,
                "horizon": p.horizon,
                "position": p.position,
                "expected_return": p.expected_return,
                "cost": p.cost,
                "vol_forecast": p.vol_forecast,
            }
            for p in predictions
        ]
    current = state.current_weights()
    signals = signals_frame(pl.DataFrame(rows, schema=_PRED_SCHEMA), funding)
    allocation = allocate(signals, current, pl.concat(returns) if returns else None, state.allocator)
    reasons = state.degraded_reasons()
    return {
        "bars": bars,
        "models": versions,
        "allocator_config": state.allocator.config_hash(),
        "current_from": "paper book" if current else "flat (no paper positions)",
        "targets": allocation.targets.to_dicts(),
        "contributions": allocation.contributions.to_dicts(),
        "notes": allocation.notes,
        "unavailable": unavailable,
        "degraded": bool(reasons),
        "degraded_reasons": reasons,
    }


_PRED_SCHEMA = {
    "symbol": pl.Utf8,
    "horizon": pl.Utf8,
    "position": pl.Float64,
    "expected_return": pl.Float64,
    "cost": pl.Float64,
    "vol_forecast": pl.Float64,
}
