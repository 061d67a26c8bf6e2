"""Run the paper loop: ``replay`` steps through a historical range quickly; ``live`` steps on the newest complete bar.

Both feed the same :class:`~quantmm_serving.paper.engine.PaperEngine` (allocator, execution policy, fills, funding)
from the lake: bars and funding rates from the raw assets, the spread proxy, newest funding rate and recent
returns from ``feature_matrix_main``. Replay predicts in batch (:mod:`quantmm_serving.paper.replay`); live predicts
the current bar with the active versions exactly as the app does. The kill switch, stale data (the newest bar older
than ``feature_staleness_minutes``) and a stale model (trained on data older than ``model_max_age_days``) halt a live
step: it records the book, cancels open orders and places none.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

from quantmm_assets.core.execution.fills import Bar
from quantmm_assets.core.labels import BAR
from quantmm_resources.environment import build_resources
from quantmm_resources.lake import Lake, LakeLayout
from quantmm_resources.paper_store import halt_state, read
from quantmm_resources.settings import QuantmmSettings
from quantmm_serving.feature_window import FeatureWindow, SymbolWindow
from quantmm_serving.inference import predict_versions
from quantmm_serving.model_store import ModelStore
from quantmm_serving.paper.engine import MarketBar, PaperConfig, PaperEngine, Settlements, StepInputs
from quantmm_serving.paper.replay import replay_predictions

VOLUME_BARS = 12  # the expected volume of the next bar: the mean of the last hour's bars
RETURN_WINDOW = timedelta(days=1)  # the recent returns of the correlation clusters


@dataclass(frozen=True)
class Market:
    """The lake's rows of a range: per bar and symbol the bar and its decision inputs; the settlements; returns."""

    bars: dict[datetime, dict[str, MarketBar]]
    funding: Settlements
    returns: pl.DataFrame


def _dated(lake: LakeLayout, asset: str, symbols: list[str], first: datetime, last: datetime) -> pl.DataFrame:
    lo, hi = first.date().isoformat(), last.date().isoformat()
    keys = [
        k for k in lake.partition_keys(asset) if k.split("|")[1:] and k.split("|")[1] in symbols and lo <= k[:10] <= hi
    ]
    return lake.read_partitions(asset, keys)


def load_market(lake: LakeLayout, symbols: list[str], start: datetime, end: datetime) -> Market:
    """Read the bars, funding and matrix rows of ``[start, end]`` (with the look-back the decisions need)."""
    lookback = max(VOLUME_BARS * BAR, RETURN_WINDOW)
    bars = _dated(lake, "market_bars_5m", symbols, start - lookback, end)
    if "market" in bars.columns:
        bars = bars.filter(pl.col("market") == "perp")
    bars = bars.sort("symbol", "ts_event").with_columns(
        mean_volume=pl.col("volume").rolling_mean(VOLUME_BARS, min_samples=1).over("symbol")
    )
    matrix = _dated(lake, "feature_matrix_main", symbols, start - lookback, end)
    wanted = [c for c in ("cs_spread_1h", "funding_rate", "ret_5m") if c in matrix.columns]
    side = matrix.select("symbol", "ts_event", *wanted) if matrix.height else pl.DataFrame()
    if side.height:
        bars = bars.join(side, on=["symbol", "ts_event"], how="left")
    in_range = bars.filter((pl.col("ts_event") >= start) & (pl.col("ts_event") <= end))
    by_bar: dict[datetime, dict[str, MarketBar]] = {}
    for r in in_range.iter_rows(named=True):
        spread = r.get("cs_spread_1h")
        bar = Bar(
            r["ts_event"], r["open"], r["high"], r["low"], r["close"], r["volume"], spread if spread == spread else None
        )
        by_bar.setdefault(r["ts_event"], {})[r["symbol"]] = MarketBar(
            bar, float(r["mean_volume"]), r.get("funding_rate")
        )
    funding = _dated(lake, "funding_rates", symbols, start - timedelta(days=1), end + timedelta(days=1))
    funding = (
        funding.select("symbol", "ts_event", "funding_rate")
        if funding.height
        else pl.DataFrame(schema={"symbol": pl.Utf8, "ts_event": pl.Datetime("us", "UTC"), "funding_rate": pl.Float64})
    )
    returns = side.select("symbol", "ts_event", pl.col("ret_5m").alias("ret")) if "ret_5m" in wanted else pl.DataFrame()
    return Market(by_bar, Settlements(funding, symbols), returns)


class RecentReturns:
    """The recent returns of the correlation clusters at a bar: a slice of the range's returns sorted by time."""

    def __init__(self, returns: pl.DataFrame):
        self.frame = returns.sort("ts_event") if returns.height else returns
        self._us = self.frame["ts_event"].dt.epoch("us").to_numpy() if returns.height else None

    def at(self, bar_ts: datetime) -> pl.DataFrame | None:
        if self._us is None:
            return None
        hi = int(np.searchsorted(self._us, _us(bar_ts), side="right"))
        lo = int(np.searchsorted(self._us, _us(bar_ts - RETURN_WINDOW), side="right"))
        return self.frame.slice(lo, hi - lo)


def _us(ts: datetime) -> int:
    return int(ts.timestamp() * 1_000_000)


def run_replay(
    settings: QuantmmSettings,
    start: datetime,
    end: datetime,
    config: PaperConfig | None = None,
    symbols: list[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Replay ``[start, end]``: batch predictions, then one engine step per bar; return the summary."""
    config = config or PaperConfig(book="replay")
    t0 = time.perf_counter()
    lake, registry = Lake(settings.lake_dir), build_resources(settings)["registry"]
    ops = settings.resolved_ops_url
    symbols = symbols or list(settings.universe().symbols)
    engine = PaperEngine(ops, config, "replay")
    if engine.last_bar is not None and engine.last_bar >= end:  # the range was replayed already: nothing to do
        recorded = read(ops, "steps", config.book).filter(pl.col("bar_ts").is_between(start, end))
        return {
            **summarize(ops, config.book),
            "steps_run": 0,
            "steps_already_recorded": recorded.height,
            "seconds": {"total": round(time.perf_counter() - t0, 2)},
        }
    if engine.last_bar is not None and start > engine.last_bar + BAR:
        raise ValueError(
            f"paper book {config.book!r} ends at {engine.last_bar:%Y-%m-%d %H:%M}; a replay from "
            f"{start:%Y-%m-%d %H:%M} would leave a gap (open orders filling across it, funding unpaid): replay "
            f"into a new book (--book), or from {engine.last_bar + BAR:%Y-%m-%d %H:%M}"
        )
    predicted = replay_predictions(lake, registry, ops, symbols, start, end)
    why_refused = [f"{k}: {v}" for k, v in sorted(predicted.refused.items())]
    market = load_market(lake, symbols, start, end)
    per_bar = {k[0]: v for k, v in predicted.frame.partition_by("ts_event", as_dict=True).items()}
    t_predict = time.perf_counter() - t0
    recent = RecentReturns(market.returns)
    done = skipped = 0
    empty = predicted.frame.clear()
    halted = halt_state(ops, config.book)
    for i, bar_ts in enumerate(sorted(market.bars)):
        if engine.last_bar is not None and bar_ts <= engine.last_bar:
            skipped += 1  # recorded already (a restart): nothing to build
            continue
        if i % 500 == 0:
            halted = halt_state(ops, config.book)
            if progress:
                progress(f"paper replay: bar {i + 1} of {len(market.bars)} ({bar_ts:%Y-%m-%d %H:%M})")
        preds = per_bar.get(bar_ts, empty)
        inputs = StepInputs(
            bar_ts=bar_ts,
            bars=market.bars[bar_ts],
            funding=market.funding,
            predictions=preds,
            returns=recent.at(bar_ts) if engine.will_decide() else None,
            sources=dict(zip(preds["symbol"] + "|" + preds["horizon"], preds["source"], strict=True)),
            refused=why_refused if preds.is_empty() else [],
            halted=_halt_reason(halted),
        )
        if engine.step(inputs) is None:
            skipped += 1
        else:
            done += 1
    summary = summarize(ops, config.book)
    return {
        **summary,
        "steps_run": done,
        "steps_already_recorded": skipped,
        "predictions": predicted.frame.height,
        "sources": predicted.sources,
        "refused": predicted.refused,
        "seconds": {"predict_and_read": round(t_predict, 2), "total": round(time.perf_counter() - t0, 2)},
    }


def _halt_reason(state: dict | None) -> str | None:
    if state and state["halted"]:
        return f"kill switch engaged by {state['operator']}: {state['reason']}"
    return None


def run_live_step(settings: QuantmmSettings, config: PaperConfig | None = None, now: datetime | None = None) -> dict:
    """Step every bar from the book's last step to the newest complete bar of the lake (at most a day of them: a
    longer gap steps its last day and says so), each with the active versions on that bar; return what it did."""
    config = config or PaperConfig()
    now = now or datetime.now(UTC)
    lake, registry, ops = Lake(settings.lake_dir), build_resources(settings)["registry"], settings.resolved_ops_url
    store = ModelStore(registry)
    store.refresh()
    snap = store.snapshot
    symbols = snap.symbols() or list(settings.universe().symbols)
    window = FeatureWindow(lake)
    window.refresh(symbols)
    newest = max((w.bar_ts for s in symbols if (w := window.current(s)) is not None), default=None)
    if newest is None:
        return {"status": "nothing to do: no feature rows in the lake"}
    engine = PaperEngine(ops, config, "live")
    if engine.last_bar is not None and engine.last_bar >= newest:
        return {"status": f"bar {newest:%Y-%m-%d %H:%M} was stepped already", "bar_ts": newest, "orders": 0}
    first = newest - (CATCH_UP_BARS - 1) * BAR
    gap = None
    if engine.last_bar is not None and engine.last_bar + BAR < first:
        gap = f"{(first - engine.last_bar) // BAR - 1} bars after {engine.last_bar:%Y-%m-%d %H:%M} were not stepped"
    start = max(first, engine.last_bar + BAR) if engine.last_bar is not None else newest
    market = load_market(lake, symbols, start, newest)
    halted = _live_halt(settings, ops, config.book, snap, newest, now)
    recent = RecentReturns(market.returns)
    done = []
    for bar_ts in sorted(b for b in market.bars if b >= start):
        rows, sources, refused = _live_predictions(snap, window, bar_ts)
        record = engine.step(
            StepInputs(
                bar_ts=bar_ts,
                bars=market.bars[bar_ts],
                funding=market.funding,
                predictions=pl.DataFrame(rows) if rows else pl.DataFrame(),
                returns=recent.at(bar_ts) if engine.will_decide() else None,
                sources=sources,
                refused=refused,
                halted=halted,
            )
        )
        if record is not None:
            done.append(record)
    if not done:
        return {"status": f"no bar to step up to {newest:%Y-%m-%d %H:%M}", "bar_ts": newest, "orders": 0}
    last = done[-1]
    return {
        "status": last.status,
        "bar_ts": last.bar_ts,
        "bars_stepped": len(done),
        "equity": last.equity,
        "orders": sum(len(r.orders) for r in done),
        **({"gap": gap} if gap else {}),
    }


CATCH_UP_BARS = 288  # a live step catches up at most a day of bars


def _live_predictions(snap, window: FeatureWindow, bar_ts: datetime) -> tuple[list[dict], dict, list[str]]:
    """The active versions' predictions of ``bar_ts`` (the rows of each symbol's window up to it), what made them,
    and the symbols that could not be predicted, with why."""
    rows, sources, refused = [], {}, []
    for symbol in snap.symbols():
        held = window.current(symbol)
        upto = held.rows.filter(pl.col("ts_event") <= bar_ts) if held is not None else None
        if upto is None or upto.height == 0 or upto["ts_event"][-1] != bar_ts:
            refused.append(f"{symbol}: no feature row at {bar_ts:%Y-%m-%d %H:%M}")
            continue
        versions = [snap.active[(symbol, h)] for h in snap.horizons(symbol)]
        try:
            predicted = predict_versions(SymbolWindow(symbol, upto, ()), versions)
        except Exception as exc:  # one symbol's model failing refuses that symbol, not the step
            refused.append(f"{symbol}: the model failed: {type(exc).__name__}: {exc}"[:300])
            continue
        for p in predicted:
            rows.append(
                {k: getattr(p, k) for k in ("symbol", "horizon", "position", "expected_return", "cost", "vol_forecast")}
            )
            sources[f"{symbol}|{p.horizon}"] = f"v{p.version}"
    return rows, sources, refused


def _live_halt(settings: QuantmmSettings, ops: str, book: str, snap, newest: datetime, now: datetime) -> str | None:
    """Why a live step must not trade: the kill switch, stale data, a stale model (None: it may)."""
    halted = _halt_reason(halt_state(ops, book))
    if halted is None and now - (newest + BAR) > timedelta(minutes=settings.feature_staleness_minutes):
        halted = f"stale data: the newest bar closed at {newest + BAR:%Y-%m-%d %H:%M} UTC"
    max_age = timedelta(days=settings.model_max_age_days)
    old = [v.name for v in snap.active.values() if v.trained_until and now - v.trained_until > max_age]
    if halted is None and old:
        halted = f"stale model: {old} trained on data older than {settings.model_max_age_days:g} days"
    return halted


def summarize(ops_url: str, book: str) -> dict:
    """Equity, PnL and its parts (fees, slippage, impact, funding) of a book from its tables."""
    steps, fills, funding = (read(ops_url, what, book) for what in ("steps", "fills", "funding"))
    if steps.is_empty():
        return {"book": book, "steps": 0}
    first_equity = steps["equity"][0]
    return {
        "book": book,
        "steps": steps.height,
        "first_bar": steps["bar_ts"][0],
        "last_bar": steps["bar_ts"][-1],
        "equity": steps["equity"][-1],
        "pnl": steps["equity"][-1] - first_equity,
        "fees": float(fills["fee"].sum()) if fills.height else 0.0,
        "slippage": float(fills["slippage"].sum()) if fills.height else 0.0,
        "impact": float(fills["impact"].sum()) if fills.height else 0.0,
        "funding": float(funding["payment"].sum()) if funding.height else 0.0,
        "fills": fills.height,
        "orders": read(ops_url, "orders", book).height,
        "statuses": dict(steps.group_by(pl.col("status").str.split(":").list.first()).len().iter_rows()),
    }
