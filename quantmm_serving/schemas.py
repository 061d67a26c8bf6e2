"""Request and response bodies of the HTTP API (separate request and response models)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class HorizonSignal(BaseModel):
    """One horizon's prediction and its signal (DESIGN section 3) for the bar the response names."""

    horizon: str
    model: str
    model_version: str
    expected_return: float
    signal_confidence: float
    vol_forecast: float
    cost: float = Field(description="cost_h: the round-trip cost of holding the horizon, from the bar's spread proxy")
    side: int = Field(description="sign(expected_return)")
    edge: float | None = Field(description="|expected_return| - cost_h")
    score: float | None = Field(description="edge / max(vol_forecast, eps)")
    position: float = Field(description="side when edge > 0 and score and confidence clear the thresholds, else 0")
    action: str = Field(description="buy | sell | flat")
    score_threshold: float
    confidence_threshold: float
    signal_config: str = Field(description="hash of the version's SignalConfig")
    gate: float = Field(description="the fusion gate in [0, 1]")
    text_contribution: float
    text_missing: bool = Field(description="no text in the bar: the prediction is the base model's")


class SymbolPrediction(BaseModel):
    symbol: str
    bar_ts: datetime = Field(description="ts_event of the feature row predicted from")
    feature_contract_version: str
    model_versions: dict[str, str]
    horizons: list[HorizonSignal]
    degraded: bool
    degraded_reasons: list[str]


class AllPredictions(BaseModel):
    predictions: list[SymbolPrediction]
    unavailable: dict[str, str] = Field(description="symbols with an active model and no answer, with the reason")
    degraded: bool
    degraded_reasons: list[str]


class HealthBody(BaseModel):
    status: str  # ok | degraded
    degraded: bool
    degraded_reasons: list[str]
    models: dict[str, str]
    shadow_models: dict[str, str]
    bars: dict[str, datetime]
    prediction_log_pending: int
    notes: list[str]


class ReadyBody(BaseModel):
    ready: bool
    reasons: list[str]
    expected_feature_contract: str | None
    lake_feature_contract: str | None


class PromoteRequest(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)
    version: str | None = Field(
        default=None, max_length=32, description="the gated version meant (default: the one gated)"
    )


class RollbackRequest(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)


class LedgerMove(BaseModel):
    model: str
    action: str
    from_version: str | None
    to_version: str | None
    operator: str
    ledger_id: int | None
