"""The paper loop on the served world: equity recomputed from its own tables, restarts, funding at the
settlements, no look-ahead in replay, the kill switch and the stale-data halt."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from quantmm_assets.core.execution.attribution import horizon_pnl, symbol_pnl
from quantmm_assets.core.execution.fills import Bar
from quantmm_assets.core.execution.ledger import equity_from_tables
from quantmm_resources.lake import Lake
from quantmm_resources.paper_store import read, set_halt
from quantmm_resources.registry.promotion import history
from quantmm_serving.model_store import load_version
from quantmm_serving.paper.engine import MarketBar, PaperConfig, PaperEngine, Settlements, StepInputs
from quantmm_serving.paper.replay import unseen_from
from quantmm_serving.paper.run import run_live_step, run_replay
from tests.serving_world import SERVED, served_world

pytestmark = pytest.mark.xdist_group("serving")
CONFIG = PaperConfig(book="t", initial_cash=50_000.0)


@pytest.fixture
def replayed(tmp_path):
    world, home = served_world(tmp_path)
    settings = world.settings(home)
    end = world.matrix["ts_event"].max()
    summary = run_replay(settings, end - timedelta(days=3), end, CONFIG, symbols=list(SERVED))
    return world, settings, summary, (end - timedelta(days=3), end)


def test_equity_recomputed_from_the_fills_and_funding_tables_alone_matches_every_step(replayed):
    _world, settings, summary, _ = replayed
    ops = settings.resolved_ops_url
    steps, fills, funding = (read(ops, t, "t") for t in ("steps", "fills", "funding"))
    assert summary["fills"] >= 10 and funding.height >= 2  # the replay traded and held through settlements
    for step in steps.iter_rows(named=True):
        marks = json.loads(step["state"])["marks"]
        upto_fills = fills.filter(pl.col("bar_ts") <= step["bar_ts"])
        upto_funding = funding.filter(pl.col("settlement_ts") <= step["bar_ts"] + timedelta(minutes=5))
        recomputed = equity_from_tables(50_000.0, upto_fills, upto_funding, marks)
        assert recomputed == pytest.approx(step["equity"], rel=1e-12, abs=1e-6), step["bar_ts"]
    assert summary["pnl"] == pytest.approx(steps["equity"][-1] - 50_000.0)


def test_funding_is_paid_at_each_settlement_on_the_position_held(replayed):
    world, settings, _summary, (start, end) = replayed
    funding = read(settings.resolved_ops_url, "funding", "t")
    rates = world_funding(world, settings)
    for row in funding.iter_rows(named=True):
        rate = rates.filter((pl.col("symbol") == row["symbol"]) & (pl.col("ts_event") == row["settlement_ts"]))
        assert rate.height == 1 and row["rate"] == rate["funding_rate"][0]
        assert row["payment"] == pytest.approx(-row["quantity"] * row["mark_price"] * row["rate"], rel=1e-12)
        assert start < row["settlement_ts"] <= end + timedelta(minutes=5)
    settled = rates.filter((pl.col("ts_event") > start) & (pl.col("ts_event") <= end))
    held_at = {(r["symbol"], r["settlement_ts"]) for r in funding.iter_rows(named=True)}
    steps = read(settings.resolved_ops_url, "steps", "t")
    for s in settled.iter_rows(named=True):  # every settlement while a position was held was paid
        before = steps.filter(pl.col("bar_ts") < s["ts_event"]).tail(1)
        held = json.loads(before["state"][0])["positions"].get(s["symbol"], 0.0) if before.height else 0.0
        assert ((s["symbol"], s["ts_event"]) in held_at) == (abs(held) > 0), s


def world_funding(world, settings) -> pl.DataFrame:
    lake = Lake(settings.lake_dir)
    return lake.read_partitions("funding_rates", lake.partition_keys("funding_rates")).select(
        "symbol", "ts_event", "funding_rate"
    )


def test_a_replay_run_again_places_no_second_order(replayed):
    _world, settings, summary, (start, end) = replayed
    ops = settings.resolved_ops_url
    orders = read(ops, "orders", "t").height
    again = run_replay(settings, start, end, CONFIG, symbols=list(SERVED))
    assert again["steps_run"] == 0 and again["steps_already_recorded"] == summary["steps"]
    assert read(ops, "orders", "t").height == orders and read(ops, "fills", "t").height == summary["fills"]


def test_replay_never_predicts_a_bar_with_a_version_that_saw_it(replayed):
    world, settings, summary, (start, end) = replayed
    registry = world.registry(settings.home)
    for key, sources in summary["sources"].items():
        symbol, horizon = key.split("|")
        name = f"quantmm.{symbol}.{horizon}"
        assert set(sources) == {"v1"}
        since = unseen_from(load_version(registry, name, "1"), registry.lineage(name, "1"))
        steps = read(settings.resolved_ops_url, "steps", "t")
        predicted = [
            r["bar_ts"] for r in steps.iter_rows(named=True) if key in r["state"] and f'"{key}": "v1"' in r["state"]
        ]
        assert predicted and min(predicted) >= since
        assert summary["refused"][key].startswith(f"{sum(1 for r in steps['bar_ts'] if r < since)} of {steps.height}")
    assert set(history(settings.resolved_ops_url)["to_version"]) == {"1"}


def test_the_kill_switch_halts_the_loop_cancels_open_orders_and_places_none(tmp_path):
    world, home = served_world(tmp_path)
    settings = world.settings(home)
    end = world.matrix["ts_event"].max()
    start = end - timedelta(days=1)
    first = run_replay(settings, start, start + timedelta(hours=6), CONFIG, symbols=list(SERVED))
    assert first["orders"] > 0
    set_halt(settings.resolved_ops_url, "t", True, "desk review", "alice")
    halted = run_replay(settings, start, end, CONFIG, symbols=list(SERVED))
    steps = read(settings.resolved_ops_url, "steps", "t").filter(pl.col("bar_ts") > start + timedelta(hours=6))
    assert steps.height == halted["steps_run"] > 0
    assert steps["status"].str.starts_with("halted: kill switch engaged by alice: desk review").all()
    assert read(settings.resolved_ops_url, "orders", "t").height == first["orders"]
    assert all('"open_orders": {}' in s for s in steps["state"])


def test_a_live_step_halts_on_stale_data_and_trades_on_a_fresh_bar(tmp_path):
    world, home = served_world(tmp_path)
    settings = world.settings(home).model_copy(update={"feature_staleness_minutes": 30.0})
    newest = world.matrix["ts_event"].max()
    stale = run_live_step(settings, CONFIG, now=newest + timedelta(hours=2))
    assert stale["status"].startswith("halted: stale data: the newest bar closed at") and stale["orders"] == 0
    assert run_live_step(settings, CONFIG, now=newest + timedelta(minutes=6))["status"].startswith("bar ")  # stepped
    fresh_book = PaperConfig(book="fresh")
    fresh = run_live_step(settings, fresh_book, now=newest + timedelta(minutes=6))
    assert fresh["status"] in ("traded", "decided") and fresh["bar_ts"] == newest


def test_no_order_before_a_first_model_is_active(tmp_path):
    world, home = served_world(tmp_path)
    (home / "ops.db").unlink()  # no ledger
    registry = world.registry(home)
    for name in registry.registered_names():
        registry.clear_active(name)
    settings = world.settings(home)
    end = world.matrix["ts_event"].max()
    summary = run_replay(settings, end - timedelta(hours=12), end, CONFIG, symbols=list(SERVED))
    assert summary["orders"] == 0 and set(summary["statuses"]) <= {"refused", "held"}
    assert all(v == "no version was ever active" for v in summary["refused"].values())
    live = run_live_step(settings, PaperConfig(book="live"), now=end + timedelta(minutes=6))
    assert live["orders"] == 0 and "no active model yet" in live["status"]


def test_pnl_by_symbol_horizon_and_bucket_adds_up_to_the_equity_change(replayed):
    _world, settings, summary, _ = replayed
    steps, fills, funding, orders = (
        read(settings.resolved_ops_url, t, "t") for t in ("steps", "fills", "funding", "orders")
    )
    per_symbol = symbol_pnl(steps, fills, funding)
    assert per_symbol["net"].sum() == pytest.approx(summary["equity"] - 50_000.0, rel=1e-9, abs=1e-6)
    assert per_symbol["fees"].sum() == pytest.approx(summary["fees"]) and per_symbol["funding"].sum() == pytest.approx(
        summary["funding"]
    )
    per_horizon = horizon_pnl(steps, fills, orders, CONFIG.allocator.buckets, funding)
    for row in per_symbol.iter_rows(named=True):
        mine = per_horizon.filter(pl.col("symbol") == row["symbol"])
        for part in ("price_pnl", "fees", "slippage", "impact", "funding", "net"):
            assert mine[part].sum() == pytest.approx(row[part], rel=1e-9, abs=1e-6), part
    assert (per_horizon.filter(pl.col("horizon") == "1h")["fees"] > 0).any()  # costs reach the horizons
    assert set(per_horizon["horizon"]) <= {"1h", "4h", "carry", "unattributed"} and {"1h", "4h"} <= set(
        per_horizon["horizon"]
    )
    assert dict(zip(per_horizon["horizon"], per_horizon["bucket"], strict=True)).get("1h") == "mean_reversion"


def test_a_due_decision_on_a_refused_bar_waits_for_the_next_bar_with_predictions(tmp_path):
    world, home = served_world(tmp_path)
    settings = world.settings(home)
    end = world.matrix["ts_event"].max()
    # v1 predicts from end - 2d: the first 143 bars are refused, so the hourly cadence is off by one bar there
    start = end - timedelta(days=2, hours=12) + timedelta(minutes=5)
    summary = run_replay(settings, start, end, CONFIG, symbols=list(SERVED))
    steps = read(settings.resolved_ops_url, "steps", "t")
    first_predicted = next(r["bar_ts"] for r in steps.iter_rows(named=True) if json.loads(r["state"])["sources"])
    decided = steps.filter(pl.col("bar_ts") == first_predicted)["status"][0]
    assert decided in ("traded", "decided") and summary["orders"] > 0  # decided on the first bar it could
    assert steps.filter(pl.col("bar_ts") < first_predicted)["status"].str.starts_with("refused").any()


def test_a_live_step_catches_up_every_bar_since_the_book_s_last_step(tmp_path):
    world, home = served_world(tmp_path)
    settings = world.settings(home)
    newest = world.matrix["ts_event"].max()
    run_replay(settings, newest - timedelta(days=1), newest - timedelta(hours=1), PaperConfig(book="c"), list(SERVED))
    done = run_live_step(settings, PaperConfig(book="c"), now=newest + timedelta(minutes=6))
    assert done["bars_stepped"] == 12 and done["bar_ts"] == newest and "gap" not in done
    bars = read(settings.resolved_ops_url, "steps", "c")["bar_ts"]
    assert (bars.diff().drop_nulls() == timedelta(minutes=5)).all()  # no bar skipped
    assert read(settings.resolved_ops_url, "steps", "c")["mode"].tail(12).to_list() == ["live"] * 12


def _step(engine, bar_ts, volume: float, position: float):
    bar = Bar(bar_ts, 100.0, 101.0, 99.0, 100.0, volume, 0.001)
    preds = pl.DataFrame(
        {
            "symbol": ["BTCUSDT"],
            "horizon": ["1h"],
            "position": [position],
            "expected_return": [0.01 * position or 0.001],
            "cost": [0.0005],
            "vol_forecast": [0.01],
        }
    )
    return engine.step(
        StepInputs(bar_ts, {"BTCUSDT": MarketBar(bar, 1000.0, 0.0)}, Settlements(pl.DataFrame(), []), preds)
    )


def test_a_decision_to_go_flat_cancels_the_unfilled_rest_of_an_earlier_buy(tmp_path):
    engine = PaperEngine(f"sqlite:///{tmp_path / 'ops.db'}", PaperConfig(book="x", rebalance_bars=1), "replay")
    t0 = datetime(2025, 3, 1, tzinfo=UTC)
    first = _step(engine, t0, volume=0.0, position=1.0)  # decides long; nothing fills on a bar without volume
    assert len(first.orders) == 1 and first.orders[0]["quantity"] > 0
    second = _step(engine, t0 + timedelta(minutes=5), volume=0.0, position=0.0)  # decides flat: nothing to trade
    assert second.status == "decided" and second.orders == [] and engine.open_orders == {}
    third = _step(engine, t0 + timedelta(minutes=10), volume=1e6, position=0.0)
    assert third.fills == [] and engine.book.positions == {}  # the cancelled buy never fills


def test_a_version_is_unseen_from_its_refit_end_plus_the_fold_spec_embargo_or_its_longest_head(tmp_path):
    world, home = served_world(tmp_path)
    registry = world.registry(home)
    v = load_version(registry, "quantmm.BTCUSDT.1h", "1")
    end = v.trained_until
    assert v.meta["horizons"] == ["1h", "4h"]
    assert unseen_from(v, {}) == end + timedelta(days=1)  # no fold spec: a day
    assert unseen_from(v, {"fold_spec": {"folds.embargo_days": 3.0}}) == end + timedelta(days=3)
    assert unseen_from(v, {"fold_spec": {"folds.embargo_days": 0.0}}) == end + timedelta(hours=4)  # the 4h head


def test_two_loops_racing_on_one_bar_record_it_once(tmp_path):
    url = f"sqlite:///{tmp_path / 'ops.db'}"
    first = PaperEngine(url, PaperConfig(book="r", rebalance_bars=1), "replay")
    second = PaperEngine(url, PaperConfig(book="r", rebalance_bars=1), "replay")  # both loaded an empty book
    t0 = datetime(2025, 3, 1, tzinfo=UTC)
    assert _step(first, t0, volume=0.0, position=1.0) is not None
    assert _step(second, t0, volume=0.0, position=1.0) is None  # the unique (book, bar) refuses the second
    assert read(url, "orders", "r").height == 1 and read(url, "steps", "r").height == 1
