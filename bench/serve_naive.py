"""The naive server ``bench serve`` compares the app with: no state between requests.

On every ``GET /predict/{symbol}`` it reads the feature contract and the symbol's newest ``feature_matrix_main``
partition from the lake, and for each horizon loads the ``active`` version through MLflow
(``ModelRegistry.load(name, "active")``, a pyfunc) and predicts the newest row with it (with the bar's round-trip
cost, so the pyfunc also derives the position). What a first implementation without a model store or a feature
window would do; it lives in bench/, never in the product.
"""

from __future__ import annotations

import polars as pl
from fastapi import FastAPI, HTTPException

from quantmm_assets.core.costs import CostConfig, round_trip_cost
from quantmm_assets.core.labels import BAR
from quantmm_assets.core.labels import HORIZONS as BARS
from quantmm_resources.lake import Lake
from quantmm_resources.registry import ModelRegistry
from quantmm_resources.registry.pyfunc_model import to_model_input
from quantmm_resources.settings import QuantmmSettings

MATRIX = "feature_matrix_main"


def create_naive_app(settings: QuantmmSettings, horizons: list[str]) -> FastAPI:
    """A FastAPI app answering ``/predict/{symbol}`` from the registry and the lake on every request."""
    registry = ModelRegistry(tracking_uri=settings.resolved_mlflow_uri, artifact_root=str(settings.mlflow_artifacts))
    lake = Lake(settings.lake_dir)
    app = FastAPI(title="quantmm-naive")

    @app.get("/ready")
    def ready() -> dict:
        return {"ready": True}

    @app.get("/predict/{symbol}")
    def predict(symbol: str) -> dict:
        contract = str(lake.feature_contract()["version"])
        files = lake.newest_partition_files(MATRIX, symbol, 1)
        if not files:
            raise HTTPException(status_code=404, detail=f"no {MATRIX} rows of {symbol}")
        row = pl.read_parquet(files[-1]).sort("ts_event").tail(1)
        spread = row["cs_spread_1d"][0] if "cs_spread_1d" in row.columns else None
        out = {}
        for h in horizons:
            model = registry.load(registry.model_name(symbol, h), "active")
            cost = round_trip_cost(pl.lit(spread, pl.Float64), BARS[h] * BAR, CostConfig())
            frame = to_model_input(row, contract)
            frame["cost"] = float(pl.select(cost).item())
            pred = model.predict(frame).iloc[-1]
            out[h] = {
                "expected_return": float(pred["expected_return"]),
                "vol_forecast": float(pred["vol_forecast"]),
                "signal_confidence": float(pred["signal_confidence"]),
                "position": float(pred["position"]),
            }
        return {"symbol": symbol, "bar_ts": row["ts_event"][0].isoformat(), "horizons": out}

    return app
