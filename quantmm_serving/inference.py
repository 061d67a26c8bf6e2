"""One symbol's predictions on its current bar: every horizon's version run on the bar's model input, and the signal.

The signal is the one of ``core/signal.py`` (the evaluation's): ``cost_h`` is ``core.costs.round_trip_cost`` of the
bar's ``cs_spread_1d`` feature under the version's cost config (exactly the labels' ``cost``), ``edge``, ``score``
and the position from the version's ``SignalConfig``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import polars as pl

from quantmm_assets.core.costs import round_trip_cost
from quantmm_assets.core.labels import BAR, HORIZONS
from quantmm_assets.core.signal import edge, score, signal
from quantmm_serving.feature_window import SymbolWindow
from quantmm_serving.model_store import LoadedVersion


@dataclass(frozen=True)
class HorizonPrediction:
    """One version's prediction for the current bar, with its signal."""

    symbol: str
    horizon: str
    bar_ts: datetime
    model: str
    version: str
    expected_return: float
    vol_forecast: float
    signal_confidence: float
    cost: float
    edge: float
    score: float
    position: float
    action: str
    gate: float
    text_contribution: float
    text_missing: bool
    signal_config: str
    score_threshold: float
    confidence_threshold: float
    contract_version: str

    def log_row(self, role: str) -> dict:
        """The row of the prediction log."""
        return {
            "symbol": self.symbol,
            "horizon": self.horizon,
            "bar_ts": self.bar_ts,
            "model_version": self.version,
            "role": role,
            "expected_return": self.expected_return,
            "signal_confidence": self.signal_confidence,
            "vol_forecast": self.vol_forecast,
            "position": self.position,
            "cost": self.cost,
            "gate": self.gate,
            "text_contribution": self.text_contribution,
            "text_missing": self.text_missing,
        }


def horizon_delta(horizon: str) -> timedelta:
    return HORIZONS[horizon] * BAR


def bar_cost(window: SymbolWindow, version: LoadedVersion) -> float:
    """``cost_h`` of the current bar: the labels' round-trip cost of its ``cs_spread_1d`` (null: no impact)."""
    spread = window.rows["cs_spread_1d"][-1] if "cs_spread_1d" in window.rows.columns else None
    expr = round_trip_cost(pl.lit(spread, pl.Float64), horizon_delta(version.horizon), version.cost)
    return float(pl.select(expr).item())


def _finite(x: float) -> float:
    return float(x) if math.isfinite(float(x)) else float("nan")


def predict_bar(window: SymbolWindow, version: LoadedVersion) -> HorizonPrediction:
    """Run ``version`` on the window's current bar and derive its signal."""
    return predict_versions(window, [version])[0]


def predict_versions(window: SymbolWindow, versions: list[LoadedVersion]) -> list[HorizonPrediction]:
    """Run every version on the window's current bar (one ``predict`` per distinct backbone: the versions of one
    refit registered for several horizons share it) and derive each signal; in the order of ``versions``."""
    heads: dict[int, dict] = {}
    for version in versions:
        if id(version.backbone) not in heads:
            meta = version.meta
            data = window.model_input(tuple(meta["feature_names"]), tuple(meta["horizons"]), int(meta["latent_dim"]))
            heads[id(version.backbone)] = version.backbone.predict(data, window.last_index(data))
    return [_with_signal(window, v, heads[id(v.backbone)][v.horizon]) for v in versions]


def _with_signal(window: SymbolWindow, version: LoadedVersion, pred) -> HorizonPrediction:
    er, vol, conf = (float(getattr(pred, k)[0]) for k in ("expected_return", "vol_forecast", "signal_confidence"))
    cost = window.cached(("cost", version.horizon, version.cost), lambda: bar_cost(window, version))
    position = float(signal(er, cost, vol, conf, version.horizon, version.signal)[()])
    return HorizonPrediction(
        symbol=version.symbol,
        horizon=version.horizon,
        bar_ts=window.bar_ts,
        model=version.name,
        version=version.version,
        expected_return=er,
        vol_forecast=vol,
        signal_confidence=conf,
        cost=cost,
        edge=_finite(edge(er, cost)[()]),
        score=_finite(score(er, cost, vol, version.signal.eps)[()]),
        position=position,
        action=action_of(position),
        gate=float(np.asarray(pred.gate)[0]),
        text_contribution=float(np.asarray(pred.text_contribution)[0]),
        text_missing=bool(np.asarray(pred.degraded)[0]),
        signal_config=version.signal.config_hash(),
        score_threshold=version.signal.thresholds(version.horizon)[0],
        confidence_threshold=version.signal.thresholds(version.horizon)[1],
        contract_version=version.contract_version,
    )


def action_of(position: float) -> str:
    """``buy`` / ``sell`` / ``flat`` of a signal position."""
    return "buy" if position > 0 else "sell" if position < 0 else "flat"
