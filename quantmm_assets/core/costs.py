"""Round-trip trading cost of a position held for one horizon (DESIGN section 3: ``cost_h``).

The cost is charged once, where a position is taken; it is never subtracted from the label ``ret_h``.
All rates are fractions of notional unless the field name says ``bps``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any

import polars as pl

BPS = 1e-4


@dataclass(frozen=True)
class CostConfig:
    """Cost model parameters, written into every run's params.

    ``fee_bps`` and ``slippage_bps`` are per side (defaults: Binance USDT-M taker fee, one bp slippage);
    ``impact_coef`` multiplies the Corwin-Schultz spread proxy (a fraction) per side; ``turnover_coef``
    scales the round trip; ``horizon_coef_bps_per_day`` is a holding cost per day held.
    """

    fee_bps: float = 4.0
    slippage_bps: float = 1.0
    impact_coef: float = 0.5
    turnover_coef: float = 1.0
    horizon_coef_bps_per_day: float = 0.0

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if value < 0:
                raise ValueError(f"CostConfig.{name} must be >= 0, got {value}")

    def as_params(self, prefix: str = "cost.") -> dict[str, Any]:
        """Return the fields and the config hash as a flat dict (keys ``{prefix}{field}``, ``{prefix}hash``)."""
        params: dict[str, Any] = {f"{prefix}{k}": v for k, v in asdict(self).items()}
        params[f"{prefix}hash"] = self.config_hash()
        return params

    def config_hash(self) -> str:
        """Return the first 12 hex digits of the sha256 of the fields as sorted JSON."""
        text = json.dumps({k: float(v) for k, v in asdict(self).items()}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


def round_trip_cost(spread: pl.Expr, horizon: timedelta, cfg: CostConfig) -> pl.Expr:
    """Return the round-trip cost (a fraction) of a position held for ``horizon``.

    ``turnover_coef * 2 * (fee + slippage + impact_coef * spread) + horizon_coef_bps_per_day * 1e-4 * days``,
    fee and slippage converted from bps to fractions, ``spread`` the Corwin-Schultz proxy (a fraction).
    A null (or NaN) spread counts as 0 impact: the cost is then fee + slippage (+ holding) only.
    """
    per_side = (cfg.fee_bps + cfg.slippage_bps) * BPS + cfg.impact_coef * spread.cast(pl.Float64).fill_nan(
        None
    ).fill_null(0.0)
    days = horizon / timedelta(days=1)
    return (cfg.turnover_coef * 2.0 * per_side + cfg.horizon_coef_bps_per_day * BPS * days).cast(pl.Float64)
