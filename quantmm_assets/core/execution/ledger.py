"""The paper book's arithmetic: cash, positions, fills, funding and equity (DESIGN section 5).

Units: quantities in base units (signed, ``+`` long), prices in quote per base unit, cash and money in quote.

- A fill of ``q`` at ``fill_price`` with fee ``fee``: ``cash -= q * fill_price + fee``; ``position += q``.
- Funding at a settlement of rate ``r`` (a fraction of notional) on a position ``q`` marked at ``m``:
  ``payment = -q * m * r`` is added to cash (a long pays a positive rate, a short receives it; a negative rate
  reverses both).
- ``equity = cash + sum(q * mark)`` over the held symbols (``|q| > QTY_EPS``); a held symbol without a mark is an
  error, never a zero.

``equity_from_tables`` recomputes the same equity from the fills and funding tables alone, so the loop's equity
can be checked against its own records.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import polars as pl

from quantmm_assets.core.execution.fills import Fill
from quantmm_assets.core.execution.policy import QTY_EPS, check_finite, check_positive
from quantmm_assets.core.schemas import UTC_TS


@dataclass(frozen=True)
class Settlement:
    """One funding settlement of a symbol: its instant and rate (a fraction of notional)."""

    symbol: str
    ts_event: datetime
    rate: float


def funding_payment(quantity: float, mark_price: float, rate: float) -> float:
    """Return the cash change of a position at a settlement: ``-quantity * mark_price * rate``."""
    check_finite("quantity", quantity)
    check_positive("mark_price", mark_price)
    check_finite("rate", rate)
    return -float(quantity) * float(mark_price) * float(rate)


def _aware(name: str, when: datetime) -> datetime:
    if not isinstance(when, datetime) or when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {when!r}")
    return when


def settlements_in(
    funding: pl.DataFrame, symbol: str, after: datetime, until: datetime
) -> tuple[list[Settlement], int]:
    """Return the settlements of ``symbol`` with ``after < ts_event <= until`` in time order, and how many rows in
    that range were skipped for a null or NaN rate; raise on a duplicate settlement instant."""
    _aware("after", after)
    _aware("until", until)
    if after > until:
        raise ValueError(f"after {after!r} is later than until {until!r}")
    rows = (
        funding.select(
            pl.col("symbol").cast(pl.Utf8),
            pl.col("ts_event").cast(UTC_TS),
            pl.col("funding_rate").cast(pl.Float64),
        )
        .filter(
            (pl.col("symbol") == symbol)
            & (pl.col("ts_event") > pl.lit(after).cast(UTC_TS))
            & (pl.col("ts_event") <= pl.lit(until).cast(UTC_TS))
        )
        .sort("ts_event")
    )
    if rows["ts_event"].is_duplicated().any():
        raise ValueError(f"funding: duplicate settlements of {symbol!r} in ({after}, {until}]")
    usable = rows.filter(pl.col("funding_rate").is_finite())
    out = [Settlement(symbol, ts, rate) for ts, rate in usable.select("ts_event", "funding_rate").iter_rows()]
    return out, rows.height - usable.height


@dataclass
class PaperBook:
    """Cash and signed positions of the paper account, with the fees and funding paid so far (money)."""

    cash: float
    positions: dict[str, float] = field(default_factory=dict)
    fees: float = 0.0
    funding: float = 0.0

    def __post_init__(self) -> None:
        check_finite("PaperBook.cash", self.cash)
        for symbol, quantity in self.positions.items():
            check_finite(f"PaperBook.positions[{symbol!r}]", quantity)

    def position(self, symbol: str) -> float:
        """Return the position in ``symbol`` (0 when flat)."""
        return self.positions.get(symbol, 0.0)

    def apply_fill(self, fill: Fill) -> None:
        """Book a fill: ``cash -= q * fill_price + fee``; ``position += q`` (dropped when it nets to zero)."""
        check_finite("Fill.quantity", fill.quantity)
        check_positive("Fill.fill_price", fill.fill_price)
        check_finite("Fill.fee", fill.fee)
        if fill.fee < 0:
            raise ValueError(f"Fill.fee must be >= 0, got {fill.fee!r}")
        self.cash -= fill.quantity * fill.fill_price + fill.fee
        self.fees += fill.fee
        held = self.position(fill.symbol) + fill.quantity
        if abs(held) <= QTY_EPS:
            self.positions.pop(fill.symbol, None)
        else:
            self.positions[fill.symbol] = held

    def apply_funding(self, symbol: str, mark_price: float, rate: float) -> float:
        """Book a settlement on the position in ``symbol``; return the payment added to cash."""
        payment = funding_payment(self.position(symbol), mark_price, rate)
        self.cash += payment
        self.funding += payment
        return payment

    def equity(self, marks: Mapping[str, float]) -> float:
        """Return ``cash + sum(q * mark)``; raise ValueError when a held symbol has no valid mark."""
        return self.cash + _marked_value(self.positions, marks)

    def snapshot(self, marks: Mapping[str, float] | None = None) -> dict[str, Any]:
        """Return cash, positions, fees and funding paid so far, and with ``marks`` equity and gross / net exposure."""
        out: dict[str, Any] = {
            "cash": self.cash,
            "positions": dict(self.positions),
            "fees": self.fees,
            "funding": self.funding,
        }
        if marks is not None:
            values = {s: q * _mark(s, marks) for s, q in self.positions.items() if abs(q) > QTY_EPS}
            out["equity"] = self.cash + math.fsum(values.values())
            out["gross_exposure"] = math.fsum(abs(v) for v in values.values())
            out["net_exposure"] = math.fsum(values.values())
        return out


def _mark(symbol: str, marks: Mapping[str, float]) -> float:
    if symbol not in marks:
        raise ValueError(f"no mark for held symbol {symbol!r}")
    check_positive(f"mark of {symbol!r}", marks[symbol])
    return float(marks[symbol])


def _marked_value(positions: Mapping[str, float], marks: Mapping[str, float]) -> float:
    return math.fsum(q * _mark(s, marks) for s, q in positions.items() if abs(q) > QTY_EPS)


def _column(frame: pl.DataFrame, name: str, table: str) -> np.ndarray:
    if name not in frame.columns:
        raise ValueError(f"{table} table lacks column {name!r}")
    values = frame[name].cast(pl.Float64).to_numpy()
    if not np.isfinite(values).all():
        raise ValueError(f"{table} table: column {name!r} has null or non-finite values")
    return values


def net_positions(fills: pl.DataFrame) -> dict[str, float]:
    """Return the net position per symbol from a fills table (``symbol, quantity``), flat ones left out."""
    quantities = _column(fills, "quantity", "fills")
    if "symbol" not in fills.columns:
        raise ValueError("fills table lacks column 'symbol'")
    net: dict[str, float] = {}
    for symbol, quantity in zip(fills["symbol"].to_list(), quantities.tolist(), strict=True):
        net[symbol] = net.get(symbol, 0.0) + quantity
    return {s: q for s, q in net.items() if abs(q) > QTY_EPS}


def equity_from_tables(
    initial_cash: float, fills: pl.DataFrame, funding: pl.DataFrame | None, marks: Mapping[str, float]
) -> float:
    """Return the equity recomputed from the tables alone: ``initial_cash - sum(quantity * fill_price + fee)``
    over the fills ``+ sum(payment)`` over the funding table ``+ sum(q * mark)`` over the net positions."""
    check_finite("initial_cash", initial_cash)
    quantity = _column(fills, "quantity", "fills")
    spent = math.fsum((quantity * _column(fills, "fill_price", "fills") + _column(fills, "fee", "fills")).tolist())
    received = 0.0 if funding is None else math.fsum(_column(funding, "payment", "funding").tolist())
    return float(initial_cash) - spent + received + _marked_value(net_positions(fills), marks)
