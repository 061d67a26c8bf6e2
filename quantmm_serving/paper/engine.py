"""One step of the paper-trading loop: fills, funding, marks, then the next decision (DESIGN section 5).

The clock is the lake's bars. A step on bar ``b`` (its ``ts_event``, the bar's open; it is complete at ``b + 5m``):

1. **Fills.** Every open order (decided on an earlier bar) fills against bar ``b`` through
   :func:`~quantmm_assets.core.execution.fills.fill_order`: at most its participation cap of the bar's volume, the
   rest carried in the order's ``remaining``. One bar of latency: an order decided on ``b`` first meets ``b + 5m``.
2. **Funding.** Every settlement of the lake's funding rates in ``(b, b + 5m]`` is paid or received on the position
   held after the fills, marked at the bar's close (a long pays a positive rate).
3. **Marks.** Equity = cash + positions at the bar's close.
4. **Decision** (every ``rebalance_bars`` bars, when not halted and predictions exist; a due decision on a bar
   without predictions waits for the next bar that has them): the allocator's target weights
   from the predictions' signals (the same call as ``GET /portfolio``), turned into quantities at the close, and an
   order per symbol whose weight moves by more than ``min_trade_weight`` through the execution policy of its
   dominant horizon bucket. A decision replaces the unfilled rest of the symbol's earlier order (an unchanged target
   re-places it: the rest carries); a halted step cancels every open order and places none.

The step's rows and the book after it are recorded in one transaction (``quantmm_resources.paper_store``): a step
already recorded is skipped, so a restart never places an order twice.
"""

from __future__ import annotations

import bisect
import json
import math
from dataclasses import asdict, dataclass, field
from datetime import datetime

import polars as pl

from quantmm_assets.core.execution.fills import Bar, FillConfig, fill_order
from quantmm_assets.core.execution.ledger import PaperBook, Settlement, settlements_in
from quantmm_assets.core.execution.policy import QTY_EPS, Book, Liquidity, Order, execute
from quantmm_assets.core.labels import BAR
from quantmm_assets.core.portfolio.allocator import AllocatorConfig, allocate
from quantmm_assets.core.portfolio.inputs import signals_frame
from quantmm_resources.paper_store import StepRecord, last_step, record_step


@dataclass(frozen=True)
class PaperConfig:
    """The paper book's settings."""

    book: str = "paper"
    initial_cash: float = 100_000.0
    rebalance_bars: int = 12  # decide on every 12th bar of the grid (hourly); fills, funding and marks every bar
    min_trade_weight: float = 0.01  # a target within this much of the current weight places no order
    allocator: AllocatorConfig = field(default_factory=AllocatorConfig)
    fills: FillConfig = field(default_factory=FillConfig)

    def describe(self) -> dict:
        return {
            "book": self.book,
            "initial_cash": self.initial_cash,
            "rebalance_bars": self.rebalance_bars,
            "min_trade_weight": self.min_trade_weight,
            "allocator": self.allocator.config_hash(),
            "fills": self.fills.config_hash(),
        }


@dataclass(frozen=True)
class MarketBar:
    """One symbol's bar at the step, with what the decision reads beside it."""

    bar: Bar
    mean_volume: float  # the expected volume of the next bar (mean of recent bars)
    funding_rate: float | None  # the newest settled rate (the expected funding of a held perpetual)


class Settlements:
    """The lake's funding settlements per symbol, in time order, for bisecting by bar (read once per range)."""

    def __init__(self, funding: pl.DataFrame, symbols: list[str]):
        self.by_symbol: dict[str, list[Settlement]] = {}
        self.skipped = 0
        if funding.is_empty():
            return
        lo, hi = funding["ts_event"].min(), funding["ts_event"].max()
        for symbol in symbols:
            found, skipped = settlements_in(funding, symbol, lo - BAR, hi)
            self.by_symbol[symbol], self.skipped = found, self.skipped + skipped
        self._times = {s: [x.ts_event for x in v] for s, v in self.by_symbol.items()}

    def between(self, symbol: str, after: datetime, until: datetime) -> list[Settlement]:
        """The settlements of ``symbol`` with ``after < ts_event <= until``."""
        times = self._times.get(symbol) if self.by_symbol else None
        if not times:
            return []
        return self.by_symbol[symbol][bisect.bisect_right(times, after) : bisect.bisect_right(times, until)]


@dataclass
class StepInputs:
    """What the loop hands one step."""

    bar_ts: datetime
    bars: dict[str, MarketBar]
    funding: Settlements  # the lake's settlements around the bar
    predictions: pl.DataFrame  # symbol, horizon, position, expected_return, cost, vol_forecast (this bar)
    returns: pl.DataFrame | None = None  # symbol, ts_event, ret: recent returns for the correlation clusters
    sources: dict[str, str] = field(default_factory=dict)  # "BTCUSDT|1h" -> "v3" | "oos:ridge" (what predicted)
    refused: list[str] = field(default_factory=list)  # the (symbol, horizon) the step could not predict, and why
    halted: str | None = None  # the kill switch, stale data or a stale model: no decision, open orders cancelled


@dataclass(frozen=True)
class OpenOrder:
    """An order still (partly) unfilled: the order, its signed remaining quantity, and its decision bar."""

    order: Order
    remaining: float
    placed_at: datetime


class PaperEngine:
    """The book, its open orders and the step function; the state is reloaded from the store's last step."""

    def __init__(self, url: str, config: PaperConfig, mode: str):
        self.url, self.config, self.mode = url, config, mode
        self.book = PaperBook(cash=config.initial_cash)
        self.open_orders: dict[str, OpenOrder] = {}
        self.marks: dict[str, float] = {}
        self.last_bar: datetime | None = None
        self.steps_since_decision = 0
        self._described = config.describe()
        previous = last_step(url, config.book)
        if previous is not None:
            self._restore(previous)

    def _restore(self, previous: dict) -> None:
        state = previous["state"]
        self.book = PaperBook(
            cash=float(state["cash"]),
            positions={s: float(q) for s, q in state["positions"].items()},
            fees=float(state["fees"]),
            funding=float(state["funding"]),
        )
        self.open_orders = {
            s: OpenOrder(Order(**o["order"]), float(o["remaining"]), datetime.fromisoformat(o["placed_at"]))
            for s, o in state["open_orders"].items()
        }
        self.marks = {s: float(m) for s, m in state["marks"].items()}
        self.last_bar = previous["bar_ts"]
        self.steps_since_decision = int(state.get("steps_since_decision", 0))

    def will_decide(self) -> bool:
        """Whether the next step decides (every ``rebalance_bars`` bars, and on the book's first bar)."""
        return self.last_bar is None or self.steps_since_decision + 1 >= self.config.rebalance_bars

    def step(self, inputs: StepInputs) -> StepRecord | None:
        """Run the step of ``inputs.bar_ts`` and record it; None when it was recorded already (a restart)."""
        if self.last_bar is not None and inputs.bar_ts <= self.last_bar:
            return None  # recorded already (the state was restored from the store's last step)
        fills = self._fill(inputs)
        funding = self._funding(inputs)
        marks = self._marks(inputs)
        orders, status = [], "held"
        if inputs.halted:
            self.open_orders, status = {}, f"halted: {inputs.halted}"
        elif self.will_decide():
            orders, status = self._decide(inputs, marks)
            # a bar without predictions (refused) does not count as a decision: the next bar with them decides
            self.steps_since_decision = 0 if not inputs.predictions.is_empty() else self.steps_since_decision + 1
        else:
            self.steps_since_decision += 1
        snap = self.book.snapshot(marks)
        state = {
            **{k: snap[k] for k in ("cash", "positions", "fees", "funding")},
            "marks": marks,
            "open_orders": {
                s: {"order": asdict(o.order), "remaining": o.remaining, "placed_at": o.placed_at.isoformat()}
                for s, o in self.open_orders.items()
            },
            "steps_since_decision": self.steps_since_decision,
            "sources": inputs.sources,
            "refused": inputs.refused,
            "config": self._described,
        }
        record = StepRecord(
            bar_ts=inputs.bar_ts,
            mode=self.mode,
            status=status,
            equity=snap["equity"],
            cash=snap["cash"],
            gross_exposure=snap["gross_exposure"],
            net_exposure=snap["net_exposure"],
            state=state,
            orders=orders,
            fills=fills,
            funding=funding,
        )
        if not record_step(self.url, self.config.book, record):
            return None
        self.last_bar = inputs.bar_ts
        return record

    # -- the parts of a step ------------------------------------------------------------------------------------
    def _fill(self, inputs: StepInputs) -> list[dict]:
        rows = []
        for symbol, held in list(self.open_orders.items()):
            market = inputs.bars.get(symbol)
            if market is None:
                continue  # no bar of the symbol at this step: the order waits
            fill = fill_order(held.order, held.remaining, market.bar, self.config.fills)
            if fill is None:
                continue
            self.book.apply_fill(fill)
            rows.append(
                {
                    "order_bar_ts": held.placed_at,
                    **{k: getattr(fill, k) for k in ("symbol", "quantity", "theoretical_price", "fill_price")},
                    "bar_ts": fill.ts_event,
                    **{k: getattr(fill, k) for k in ("slippage", "impact", "fee", "delay", "remaining")},
                }
            )
            if abs(fill.remaining) <= QTY_EPS:
                del self.open_orders[symbol]
            else:
                self.open_orders[symbol] = OpenOrder(held.order, fill.remaining, held.placed_at)
        return rows

    def _funding(self, inputs: StepInputs) -> list[dict]:
        rows = []
        for symbol in sorted(self.book.positions):
            market = inputs.bars.get(symbol)
            mark = market.bar.close if market is not None else self.marks.get(symbol)
            if mark is None:
                continue  # never marked: the symbol was never seen (cannot hold a position)
            for s in inputs.funding.between(symbol, inputs.bar_ts, inputs.bar_ts + BAR):
                quantity = self.book.position(symbol)
                payment = self.book.apply_funding(symbol, mark, s.rate)
                rows.append(
                    {
                        "symbol": symbol,
                        "settlement_ts": s.ts_event,
                        "quantity": quantity,
                        "mark_price": mark,
                        "rate": s.rate,
                        "payment": payment,
                    }
                )
        return rows

    def _marks(self, inputs: StepInputs) -> dict[str, float]:
        """Closes of the step's bars; a held symbol without a bar at this step keeps its last mark."""
        self.marks = {**self.marks, **{s: m.bar.close for s, m in inputs.bars.items()}}
        return dict(self.marks)

    def _decide(self, inputs: StepInputs, marks: dict[str, float]) -> tuple[list[dict], str]:
        if inputs.predictions.is_empty():
            why = "; ".join(inputs.refused) if inputs.refused else "no active model yet"
            return [], f"refused: no prediction for this bar ({why})"[:1000]
        equity = self.book.equity(marks)
        if not (equity > 0 and math.isfinite(equity)):
            return [], f"halted: equity {equity:.2f} is not positive"
        current = {s: q * marks[s] / equity for s, q in self.book.positions.items()}
        funding_rate = {s: m.funding_rate for s, m in inputs.bars.items()}
        signals = signals_frame(inputs.predictions, funding_rate)
        allocation = allocate(signals, current, inputs.returns, self.config.allocator)
        contributions = allocation.contributions
        orders = []
        for row in allocation.targets.iter_rows(named=True):
            symbol, target_w = row["symbol"], float(row["target"])
            market = inputs.bars.get(symbol)
            if market is None:
                continue  # no bar of the symbol now: its earlier order (if any) stands until one arrives
            self.open_orders.pop(symbol, None)  # the decision replaces the unfilled rest of the earlier order
            if abs(target_w - current.get(symbol, 0.0)) <= self.config.min_trade_weight:
                continue
            mine = contributions.filter(pl.col("symbol") == symbol)
            bucket = _dominant_bucket(mine, self.config.allocator)
            price = market.bar.close
            target_q = target_w * equity / price
            order = execute(
                target_q,
                self.book.position(symbol),
                bucket,
                Liquidity(bar_volume=market.mean_volume),
                Book(price=price, spread=market.bar.spread, volume=market.bar.volume),
                symbol=symbol,
            )
            if order is None:
                continue
            self.open_orders[symbol] = OpenOrder(order, order.quantity, inputs.bar_ts)
            weights = dict(zip(mine["horizon"], mine["weight"], strict=True))
            orders.append(
                {
                    "bar_ts": inputs.bar_ts,
                    "symbol": symbol,
                    "quantity": order.quantity,
                    "target_quantity": target_q,
                    "target_weight": target_w,
                    "policy": order.policy,
                    "bucket": bucket,
                    "limit_price": order.limit_price,
                    "reference_price": order.reference_price,
                    "participation_cap": order.participation_cap,
                    "slippage_cap_bps": order.slippage_cap_bps,
                    "contributions": json.dumps(weights),
                }
            )
        return orders, "traded" if orders else "decided"


def _dominant_bucket(contributions: pl.DataFrame, config: AllocatorConfig) -> str:
    """The bucket of the horizon with the largest absolute weight (its execution policy trades the symbol)."""
    held = contributions.filter(pl.col("horizon") != "carry").sort(pl.col("weight").abs(), descending=True)
    if held.is_empty() or held["bucket"][0] is None:
        return config.buckets.get("1d", "trend")
    return str(held["bucket"][0])
