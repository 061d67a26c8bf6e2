"""The allocator's inputs from predictions: the signals frame (with the expected funding of each horizon) and the
recent returns its correlation clusters read. One function for serving and the paper loop."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

import polars as pl

from quantmm_assets.core.labels import BAR, HORIZONS

FUNDING_INTERVAL = timedelta(hours=8)  # Binance USDT-M perpetuals settle every 8 hours


def expected_funding(rate: float | None, horizon: str, interval: timedelta = FUNDING_INTERVAL) -> float | None:
    """The funding a long pays over ``horizon`` when the newest settled rate holds: ``rate * h / interval`` (the
    expected number of settlements in a window of length h); None when the rate is unknown."""
    if rate is None or rate != rate:
        return None
    return float(rate) * (HORIZONS[horizon] * BAR / interval)


def signals_frame(predictions: pl.DataFrame, funding_rate: Mapping[str, float | None]) -> pl.DataFrame:
    """``predictions`` (symbol, horizon, position, expected_return, cost, vol_forecast) with ``expected_funding``
    from each symbol's newest funding rate: the allocator's ``signals``."""
    rows = predictions.select("symbol", "horizon", "position", "expected_return", "cost", "vol_forecast")
    funding = [expected_funding(funding_rate.get(s), h) for s, h in zip(rows["symbol"], rows["horizon"], strict=True)]
    return rows.with_columns(pl.Series("expected_funding", funding, dtype=pl.Float64))
