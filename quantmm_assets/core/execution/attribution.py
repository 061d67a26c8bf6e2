"""Paper PnL by symbol, horizon and bucket, with fees, slippage, impact and funding apart.

Per symbol and step ``t`` (marks ``m``, the position ``q`` held at the end of a step):

- ``price_pnl_t = q_{t-1} * (m_t - m_{t-1}) + sum over the fills of step t of f_q * (m_t - f_price)``: the position's
  move at the marks, and each fill marked from its price to the step's close (the fill price already holds the
  slippage and impact, which are reported apart as well: they are inside ``price_pnl``, not added twice);
- ``fees`` and ``funding`` (the payments) come from their tables.

So, per symbol, ``price_pnl - fees + funding`` is the symbol's part of the equity change, and the parts sum to it.
A symbol's step PnL and its funding go to the horizons in the shares of the contributions of the order that built
the position held (the symbol's latest order placed before); a fill's fee, slippage and impact in the shares of
its own order; what no order explains is ``unattributed``.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping

import polars as pl

PARTS = ("price_pnl", "fees", "slippage", "impact", "funding")
ATTRIBUTION_SCHEMA = {"symbol": pl.Utf8, "horizon": pl.Utf8, "bucket": pl.Utf8, **dict.fromkeys(PARTS, pl.Float64)}


def symbol_pnl(steps: pl.DataFrame, fills: pl.DataFrame, funding: pl.DataFrame) -> pl.DataFrame:
    """Per symbol: price_pnl, fees, slippage, impact, funding and net (= price_pnl - fees + funding)."""
    price = _price_pnl_steps(steps, fills)
    totals: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for (symbol, _t), value in price.items():
        totals[symbol]["price_pnl"] += value
    for r in fills.iter_rows(named=True):
        for column, part in (("fee", "fees"), ("slippage", "slippage"), ("impact", "impact")):
            totals[r["symbol"]][part] += float(r[column])
    for r in funding.iter_rows(named=True):
        totals[r["symbol"]]["funding"] += float(r["payment"])
    rows = [
        {
            "symbol": s,
            **{k: float(v.get(k, 0.0)) for k in ("price_pnl", "fees", "slippage", "impact", "funding")},
        }
        for s, v in sorted(totals.items())
    ]
    schema = {"symbol": pl.Utf8, **dict.fromkeys(("price_pnl", "fees", "slippage", "impact", "funding"), pl.Float64)}
    frame = pl.DataFrame(rows, schema=schema)
    return frame.with_columns(net=pl.col("price_pnl") - pl.col("fees") + pl.col("funding"))


def horizon_pnl(
    steps: pl.DataFrame,
    fills: pl.DataFrame,
    orders: pl.DataFrame,
    buckets: Mapping[str, str],
    funding: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Per symbol and horizon (bucket beside it): price PnL, fees, slippage, impact, funding and net.

    Price PnL and funding go to the horizons in the shares of the order that built the position held (the symbol's
    latest order before the step or settlement); a fill's fee, slippage and impact in the shares of its own order.
    Summed over the horizons of a symbol, each part equals :func:`symbol_pnl`'s."""
    placed = orders.sort("bar_ts").select("symbol", "bar_ts", "contributions").iter_rows()
    by_symbol: dict[str, list[tuple]] = defaultdict(list)
    own: dict[tuple[str, object], dict[str, float]] = {}
    for symbol, ts, contributions in placed:
        parsed = json.loads(contributions)
        by_symbol[symbol].append((ts, parsed))
        own[(symbol, ts)] = parsed

    def held_by(symbol: str, t) -> dict[str, float]:
        return _shares(next((c for ts, c in reversed(by_symbol[symbol]) if ts < t), None))

    out: dict[tuple[str, str], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for (symbol, t), value in _price_pnl_steps(steps, fills).items():
        for horizon, share in held_by(symbol, t).items():
            out[(symbol, horizon)]["price_pnl"] += value * share
    for r in fills.iter_rows(named=True):
        for horizon, share in _shares(own.get((r["symbol"], r["order_bar_ts"]))).items():
            for column, part in (("fee", "fees"), ("slippage", "slippage"), ("impact", "impact")):
                out[(r["symbol"], horizon)][part] += float(r[column]) * share
    for r in (funding if funding is not None else pl.DataFrame()).iter_rows(named=True):
        for horizon, share in held_by(r["symbol"], r["settlement_ts"]).items():
            out[(r["symbol"], horizon)]["funding"] += float(r["payment"]) * share
    rows = [
        {
            "symbol": s,
            "horizon": h,
            "bucket": buckets.get(h, "unattributed" if h == "unattributed" else "carry"),
            **{k: float(v.get(k, 0.0)) for k in PARTS},
        }
        for (s, h), v in sorted(out.items())
    ]
    frame = pl.DataFrame(rows, schema=ATTRIBUTION_SCHEMA)
    return frame.with_columns(net=pl.col("price_pnl") - pl.col("fees") + pl.col("funding"))


def _shares(contributions: dict[str, float] | None) -> dict[str, float]:
    if not contributions:
        return {"unattributed": 1.0}
    total = sum(abs(w) for w in contributions.values())
    if total == 0:
        return {"unattributed": 1.0}
    return {h: abs(w) / total for h, w in contributions.items() if w}


def _price_pnl_steps(steps: pl.DataFrame, fills: pl.DataFrame) -> dict[tuple[str, object], float]:
    """``{(symbol, step bar): price PnL}`` from the steps' positions and marks and the fills of each step."""
    fills_at: dict[tuple[str, object], list[tuple[float, float]]] = defaultdict(list)
    for r in fills.iter_rows(named=True):
        fills_at[(r["symbol"], r["bar_ts"])].append((float(r["quantity"]), float(r["fill_price"])))
    out: dict[tuple[str, object], float] = {}
    held: dict[str, float] = {}
    marks: dict[str, float] = {}
    for bar_ts, state in steps.select("bar_ts", "state").iter_rows():
        doc = json.loads(state)
        now_marks = {s: float(m) for s, m in doc["marks"].items()}
        symbols = set(held) | {s for s, _ in fills_at if (s, bar_ts) in fills_at}
        for s in symbols:
            m = now_marks.get(s, marks.get(s))
            if m is None:
                continue
            value = held.get(s, 0.0) * (m - marks.get(s, m))
            value += sum(q * (m - p) for q, p in fills_at.get((s, bar_ts), ()))
            if value:
                out[(s, bar_ts)] = value
        held = {s: float(q) for s, q in doc["positions"].items()}
        marks.update(now_marks)
    return out
