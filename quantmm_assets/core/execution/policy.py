"""The execution policy (DESIGN section 5): turn a target position into an order the fill simulator works.

There is no real order book: the ``Book`` is the microstructure proxy at the decision bar (its close, the
Corwin-Schultz spread estimate as a fraction of price, its volume). A horizon bucket picks a policy
(``BUCKET_POLICY``): ``short_horizon`` trades at market (crosses half the spread, pays the taker fee) with a
participation cap of 10% of a bar's volume and a 25 bps cap on slippage + impact per fill; ``long_horizon`` rests
a passive limit at the touch (``price * (1 - spread / 2)`` to buy, ``price * (1 + spread / 2)`` to sell; maker fee,
no spread crossed) with a 2% participation cap and a 5 bps cap.

``execute`` places one order for the whole difference ``target - current`` (quantities in base units, signed,
``+`` buys); the per-bar cap, the slippage cap and the carrying of the rest are the fill simulator's
(``core.execution.fills``). A difference below ``max(min_order_qty, QTY_EPS)`` is dust: no order.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

QTY_EPS = 1e-12  # base units: a quantity at or below this is zero (floating-point dust)


def _finite(name: str, value: float) -> float:
    if isinstance(value, str | bytes):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a finite number, got {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return number


def check_positive(name: str, value: float) -> None:
    """Raise ValueError unless ``value`` is finite and > 0."""
    if _finite(name, value) <= 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")


def check_non_negative(name: str, value: float) -> None:
    """Raise ValueError unless ``value`` is finite and >= 0."""
    if _finite(name, value) < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")


def check_finite(name: str, value: float) -> None:
    """Raise ValueError unless ``value`` is a finite number."""
    _finite(name, value)


def spread_or_none(name: str, spread: float | None) -> float | None:
    """Return the spread proxy as a float, or None when it is unknown (None or NaN); raise when negative or infinite."""
    if spread is None:
        return None
    if isinstance(spread, str | bytes):
        raise ValueError(f"{name} must be a number or None, got {spread!r}")
    try:
        if math.isnan(float(spread)):
            return None
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number or None, got {spread!r}") from None
    check_non_negative(name, spread)
    return float(spread)


@dataclass(frozen=True)
class Book:
    """Microstructure proxy at the decision bar: close, Corwin-Schultz spread (a fraction; None/NaN unknown), volume."""

    price: float
    spread: float | None
    volume: float

    def __post_init__(self) -> None:
        check_positive("Book.price", self.price)
        spread_or_none("Book.spread", self.spread)
        check_non_negative("Book.volume", self.volume)


@dataclass(frozen=True)
class Liquidity:
    """Expected volume of the next bar (base units) and the smallest order worth placing (below it: dust)."""

    bar_volume: float
    min_order_qty: float = 0.0

    def __post_init__(self) -> None:
        check_non_negative("Liquidity.bar_volume", self.bar_volume)
        check_non_negative("Liquidity.min_order_qty", self.min_order_qty)


@dataclass(frozen=True)
class ExecutionPolicy:
    """How a horizon bucket trades: participation cap (fraction of a bar's volume), slippage + impact cap (bps per
    fill), passive (limit at the touch, maker fee) or market (crosses half the spread, taker fee), and the spread
    (a fraction) assumed where the proxy is unknown."""

    name: str
    participation_cap: float
    slippage_cap_bps: float
    passive: bool
    default_spread: float = 5e-4

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"ExecutionPolicy.name must be a non-empty string, got {self.name!r}")
        check_positive("ExecutionPolicy.participation_cap", self.participation_cap)
        if self.participation_cap > 1:
            raise ValueError(f"ExecutionPolicy.participation_cap must be <= 1, got {self.participation_cap!r}")
        check_positive("ExecutionPolicy.slippage_cap_bps", self.slippage_cap_bps)
        if not isinstance(self.passive, bool):
            raise ValueError(f"ExecutionPolicy.passive must be a bool, got {self.passive!r}")
        check_non_negative("ExecutionPolicy.default_spread", self.default_spread)


SHORT_HORIZON = ExecutionPolicy("short_horizon", participation_cap=0.10, slippage_cap_bps=25.0, passive=False)
LONG_HORIZON = ExecutionPolicy("long_horizon", participation_cap=0.02, slippage_cap_bps=5.0, passive=True)
POLICIES: dict[str, ExecutionPolicy] = {p.name: p for p in (SHORT_HORIZON, LONG_HORIZON)}
BUCKET_POLICY: dict[str, str] = {"mean_reversion": "short_horizon", "event": "short_horizon", "trend": "long_horizon"}


@dataclass(frozen=True)
class Order:
    """An order for ``quantity`` (base units, signed, ``+`` buys) under a policy's caps.

    ``limit_price`` is None for a market order; ``reference_price`` is the decision bar's close (the theoretical
    price); ``default_spread`` is the policy's spread (a fraction) for a fill bar whose proxy is unknown.
    """

    symbol: str
    quantity: float
    policy: str
    participation_cap: float
    slippage_cap_bps: float
    limit_price: float | None
    reference_price: float
    default_spread: float = 5e-4

    def __post_init__(self) -> None:
        check_finite("Order.quantity", self.quantity)
        if abs(self.quantity) <= QTY_EPS:
            raise ValueError(f"Order.quantity must be non-zero, got {self.quantity!r}")
        check_positive("Order.participation_cap", self.participation_cap)
        if self.participation_cap > 1:
            raise ValueError(f"Order.participation_cap must be <= 1, got {self.participation_cap!r}")
        check_positive("Order.slippage_cap_bps", self.slippage_cap_bps)
        if self.limit_price is not None:
            check_positive("Order.limit_price", self.limit_price)
        check_positive("Order.reference_price", self.reference_price)
        check_non_negative("Order.default_spread", self.default_spread)

    @property
    def side(self) -> int:
        """Return +1 for a buy, -1 for a sell."""
        return 1 if self.quantity > 0 else -1

    @property
    def passive(self) -> bool:
        """Return whether this is a resting limit order."""
        return self.limit_price is not None


def policy_for(
    horizon_bucket: str,
    policies: Mapping[str, ExecutionPolicy] | None = None,
    bucket_policy: Mapping[str, str] | None = None,
) -> ExecutionPolicy:
    """Return the policy of a horizon bucket; raise ValueError naming the known buckets (or policies)."""
    policies = POLICIES if policies is None else policies
    bucket_policy = BUCKET_POLICY if bucket_policy is None else bucket_policy
    if horizon_bucket not in bucket_policy:
        raise ValueError(f"unknown horizon bucket {horizon_bucket!r}; known buckets: {sorted(bucket_policy)}")
    name = bucket_policy[horizon_bucket]
    if name not in policies:
        raise ValueError(f"bucket {horizon_bucket!r} names unknown policy {name!r}; known policies: {sorted(policies)}")
    return policies[name]


def execute(
    target: float,
    current: float,
    horizon_bucket: str,
    liquidity: Liquidity,
    book: Book,
    symbol: str = "",
    policies: Mapping[str, ExecutionPolicy] | None = None,
    bucket_policy: Mapping[str, str] | None = None,
) -> Order | None:
    """Return the order that moves ``current`` to ``target`` under the bucket's policy, or None for dust.

    The order is for the whole difference; the fill simulator caps each bar's fill and carries the rest.
    A passive order's limit is the touch: ``book.price * (1 - side * spread / 2)``, the spread being the book's
    proxy, or the policy's ``default_spread`` where it is unknown.
    """
    check_finite("target", target)
    check_finite("current", current)
    policy = policy_for(horizon_bucket, policies, bucket_policy)
    quantity = float(target) - float(current)
    if abs(quantity) < max(liquidity.min_order_qty, QTY_EPS):
        return None
    spread = spread_or_none("Book.spread", book.spread)
    spread = policy.default_spread if spread is None else spread
    side = 1.0 if quantity > 0 else -1.0
    limit = book.price * (1.0 - side * spread / 2.0) if policy.passive else None
    return Order(
        symbol=symbol,
        quantity=quantity,
        policy=policy.name,
        participation_cap=policy.participation_cap,
        slippage_cap_bps=policy.slippage_cap_bps,
        limit_price=limit,
        reference_price=book.price,
        default_spread=policy.default_spread,
    )
