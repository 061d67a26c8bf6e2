"""The baselines a backbone must beat, on the same folds and rows (issue 4): zero, momentum sign, Ridge on price.

- ``zero``: ``expected_return = 0`` (never trades; its MAE is the mean absolute return);
- ``momentum``: ``expected_return`` = the trailing return over the horizon's own length (``ret_1h`` for 1h,
  ``ret_4h`` for 4h, ``ret_1d`` for 1d and 7d): the position is the momentum sign where its size clears the cost;
- ``ridge_price``: the Ridge backbone on the price features only (``MARKET_FEATURES`` and the symbol), no text.

Confidence is 1 for the rule-based baselines (uncalibrated: the edge over the cost alone decides); vol
forecast is the trailing ``rv_1d`` scaled to the horizon.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace

import numpy as np
import polars as pl

from quantmm_assets.core.features.market import MARKET_FEATURES
from quantmm_assets.core.labels import HORIZONS
from quantmm_assets.models.data import ModelData
from quantmm_assets.models.experiment import FoldRows, fold_rows, prediction_frame
from quantmm_assets.models.protocol import Predictions
from quantmm_assets.models.ridge import RidgeBackbone

BASELINES = ("zero", "momentum", "ridge_price")
MOMENTUM_COLUMN = {"1h": "ret_1h", "4h": "ret_4h", "1d": "ret_1d", "7d": "ret_1d"}
BARS_PER_DAY = 288


def _column(data: ModelData, name: str) -> np.ndarray:
    if name not in data.feature_names:
        raise ValueError(f"baselines: feature {name!r} is not in the data")
    return np.nan_to_num(data.x[:, data.feature_names.index(name)].astype(np.float64), nan=0.0)


def _rule(data: ModelData, rows: np.ndarray, kind: str) -> dict[str, Predictions]:
    rv_1d = _column(data, "rv_1d")[rows]
    out = {}
    for h in data.horizons:
        er = np.zeros(len(rows)) if kind == "zero" else _column(data, MOMENTUM_COLUMN[h])[rows]
        zeros = np.zeros(len(rows))
        out[h] = Predictions(
            expected_return=er,
            vol_forecast=np.maximum(rv_1d * np.sqrt(HORIZONS[h] / BARS_PER_DAY), 1e-8),
            signal_confidence=np.ones(len(rows)),  # uncalibrated rules: always past the threshold
            y_base=er,
            gate=zeros,
            text_contribution=zeros,
            degraded=np.ones(len(rows), bool),
        )
    return out


def price_only(data: ModelData) -> ModelData:
    """Return ``data`` restricted to the price features."""
    keep = [j for j, n in enumerate(data.feature_names) if n in MARKET_FEATURES]
    return replace(data, x=data.x[:, keep], feature_names=tuple(data.feature_names[j] for j in keep))


def baseline_predictions(data: ModelData, folds: pl.DataFrame, symbols: dict[int, str]) -> pl.DataFrame:
    """Return the out-of-sample frames of every baseline on every walk-forward fold (variant ``full``)."""
    price = price_only(data)
    frames = []
    rows: FoldRows
    for rows in fold_rows(data, folds.filter(pl.col("fold") >= 0)):
        for kind in ("zero", "momentum"):
            frames.append(
                prediction_frame(kind, "full", rows.fold, data, rows.test, _rule(data, rows.test, kind), symbols)
            )
        ridge = RidgeBackbone(fusion_mode="none").fit(price, rows.train, rows.inner)
        frames.append(
            prediction_frame(
                "ridge_price", "full", rows.fold, price, rows.test, ridge.predict(price, rows.test), symbols
            )
        )
    return pl.concat(frames)


def frozen_baseline_config() -> dict:
    """The baseline configuration the model gate compares against (the comparator rules and Ridge on price): what
    ``frozen_baseline`` freezes with its sha256, so that a change to it is a deliberate, visible act."""
    return {
        "rules": ["zero", "momentum"],
        "momentum_column": MOMENTUM_COLUMN,
        "ridge_price": {
            "backbone": RidgeBackbone.name,
            "params": RidgeBackbone(fusion_mode="none").get_params(),
            "features": sorted(MARKET_FEATURES),
        },
    }


def frozen_baseline_sha256(config: dict | None = None) -> str:
    """The sha256 of ``config`` (default: :func:`frozen_baseline_config`) as sorted, compact JSON."""
    text = json.dumps(config or frozen_baseline_config(), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()
