"""The fill simulator (DESIGN section 5): an order fills against the bar after its decision bar.

Units: quantities in base units (signed, ``+`` buys), prices in quote per base unit, money in quote, spreads and
participations as fractions, names ending in ``_bps`` in basis points (1 bp = 1e-4). ``side`` is +1 (buy) or -1.

Per bar, for the order's still-unfilled ``remaining``:

- **Participation cap**: ``q = min(|remaining|, participation_cap * bar.volume)``; a bar of zero volume fills nothing.
- **Market order** (``limit_price`` None): the base price is ``bar.open``.
  ``half_spread = s / 2`` with ``s`` the fill bar's Corwin-Schultz spread, or the order's ``default_spread`` where
  it is unknown; ``participation = q / bar.volume``;
  ``impact_bps = impact_coef_bps * sqrt(participation)`` (a square-root law: 0 at 0, growing with participation).
  **Slippage cap**: when ``half_spread * 1e4 + impact_bps > slippage_cap_bps`` the fill shrinks to the largest
  participation within it, ``((slippage_cap_bps - half_spread * 1e4) / impact_coef_bps) ** 2``; nothing fills
  when the half spread alone exceeds the cap, or reaches it while any fill has impact (``impact_coef_bps > 0``).
  ``fill_price = open * (1 + side * (half_spread + impact_bps * 1e-4))``;
  ``slippage = q * open * half_spread`` and ``impact = q * open * impact_bps * 1e-4`` (money);
  ``fee = taker_fee_bps * 1e-4 * q * fill_price``.
- **Passive order** (a limit at the touch): fills only when the bar trades through the limit (buy: ``bar.low <
  limit``; sell: ``bar.high > limit``), at the limit (no price improvement on a gap), with no slippage and no
  impact; ``fee = maker_fee_bps * 1e-4 * q * limit``.
- ``delay = side * q * (base - reference_price)`` (money; ``base`` is the open, or the limit), the move between the
  decision close and the fill bar's price: the one bar of latency (negative when it helped). So, exactly,
  ``side * q * (fill_price - theoretical_price) = delay + slippage + impact``.
- ``remaining`` after the fill is ``remaining - side * q`` and carries to the next bar (a partial fill).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from typing import Any

import polars as pl

from quantmm_assets.core.execution.policy import (
    QTY_EPS,
    Order,
    check_finite,
    check_non_negative,
    check_positive,
    spread_or_none,
)
from quantmm_assets.core.schemas import UTC_TS

BPS = 1e-4


@dataclass(frozen=True)
class Bar:
    """The bar an order fills against: OHLC, volume (base units) and its spread proxy (a fraction; None unknown)."""

    ts_event: datetime
    open: float
    high: float
    low: float
    close: float
    volume: float
    spread: float | None

    def __post_init__(self) -> None:
        for name in ("open", "high", "low", "close"):
            check_positive(f"Bar.{name}", getattr(self, name))
        if self.low > self.high:
            raise ValueError(f"Bar.low {self.low!r} is above Bar.high {self.high!r}")
        check_non_negative("Bar.volume", self.volume)
        spread_or_none("Bar.spread", self.spread)


@dataclass(frozen=True)
class FillConfig:
    """Fill costs: taker and maker fees (bps of notional) and the impact coefficient (bps at participation 1).

    ``impact_bps = impact_coef_bps * sqrt(participation)``: the default costs 3.16 bps at 10% of a bar's volume.
    """

    taker_fee_bps: float = 4.0
    maker_fee_bps: float = 2.0
    impact_coef_bps: float = 10.0

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            check_non_negative(f"FillConfig.{name}", value)

    def as_params(self, prefix: str = "fill.") -> dict[str, Any]:
        """Return the fields and the config hash as a flat dict (keys ``{prefix}{field}``, ``{prefix}hash``)."""
        params: dict[str, Any] = {f"{prefix}{k}": v for k, v in asdict(self).items()}
        params[f"{prefix}hash"] = self.config_hash()
        return params

    def config_hash(self) -> str:
        """Return the first 12 hex digits of the sha256 of the fields as sorted JSON."""
        text = json.dumps({k: float(v) for k, v in asdict(self).items()}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Fill:
    """What one bar filled: quantity (signed), prices, the cost parts (money) and the signed ``remaining``."""

    symbol: str
    ts_event: datetime
    quantity: float
    theoretical_price: float
    fill_price: float
    slippage: float
    impact: float
    fee: float
    remaining: float
    delay: float = 0.0


def impact_bps(participation: float, config: FillConfig) -> float:
    """Return the impact in bps of filling ``participation`` (a fraction) of a bar's volume."""
    return config.impact_coef_bps * math.sqrt(participation)


def _capped_quantity(q: float, volume: float, half_spread_bps: float, cap_bps: float, config: FillConfig) -> float:
    """Return ``q`` shrunk so that half spread + impact stays within ``cap_bps`` (0 when the half spread exceeds it)."""
    if half_spread_bps > cap_bps:
        return 0.0
    if half_spread_bps + impact_bps(q / volume, config) <= cap_bps:
        return q
    room = (cap_bps - half_spread_bps) / config.impact_coef_bps  # impact_coef_bps > 0 here, or impact would be 0
    return min(q, room * room * volume)


def fill_order(order: Order, remaining: float, bar: Bar, config: FillConfig) -> Fill | None:
    """Fill what ``bar`` allows of ``remaining`` (signed, same side as the order); None when nothing fills."""
    check_finite("remaining", remaining)
    if abs(remaining) <= QTY_EPS:
        return None
    if (remaining > 0) != (order.quantity > 0):
        raise ValueError(f"remaining {remaining!r} is on the other side of the order's {order.quantity!r}")
    if abs(remaining) > abs(order.quantity) * (1 + 1e-9):
        raise ValueError(f"remaining {remaining!r} exceeds the order's {order.quantity!r}")
    side = order.side
    q = min(abs(remaining), order.participation_cap * bar.volume)
    if q <= 0:
        return None
    if order.limit_price is not None:
        limit = order.limit_price
        if not (bar.low < limit if side > 0 else bar.high > limit):
            return None
        base, price, slippage, impact = limit, limit, 0.0, 0.0
        fee = config.maker_fee_bps * BPS * q * price
    else:
        spread = spread_or_none("Bar.spread", bar.spread)
        half_spread = (order.default_spread if spread is None else spread) / 2.0
        q = _capped_quantity(q, bar.volume, half_spread / BPS, order.slippage_cap_bps, config)
        if q <= 0:
            return None
        impact_frac = impact_bps(q / bar.volume, config) * BPS
        base = bar.open
        price = base * (1.0 + side * (half_spread + impact_frac))
        slippage, impact = q * base * half_spread, q * base * impact_frac
        fee = config.taker_fee_bps * BPS * q * price
    left = remaining - side * q
    if abs(left) <= QTY_EPS * max(1.0, abs(remaining)):
        left = 0.0
    return Fill(
        symbol=order.symbol,
        ts_event=bar.ts_event,
        quantity=side * q,
        theoretical_price=order.reference_price,
        fill_price=price,
        slippage=slippage,
        impact=impact,
        fee=fee,
        remaining=left,
        delay=side * q * (base - order.reference_price),
    )


FILL_SCHEMA: dict[str, pl.DataType] = {
    "symbol": pl.Utf8(),
    "ts_event": UTC_TS,
    "quantity": pl.Float64(),
    "theoretical_price": pl.Float64(),
    "fill_price": pl.Float64(),
    "slippage": pl.Float64(),
    "impact": pl.Float64(),
    "fee": pl.Float64(),
    "remaining": pl.Float64(),
    "delay": pl.Float64(),
}


def fills_frame(fills: Iterable[Fill]) -> pl.DataFrame:
    """Return the fills as a table with ``FILL_SCHEMA`` (one row per fill, in the given order)."""
    names = [f.name for f in fields(Fill)]
    rows = [tuple(getattr(fill, name) for name in names) for fill in fills]
    return pl.DataFrame(rows, schema=FILL_SCHEMA, orient="row")
