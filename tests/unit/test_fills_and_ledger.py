"""The fill simulator, funding accrual and the paper book: hand-computed fills, costs, settlements and equity."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import polars as pl
import pytest

from quantmm_assets.core.execution.fills import Bar, Fill, FillConfig, fill_order, fills_frame, impact_bps
from quantmm_assets.core.execution.ledger import (
    PaperBook,
    Settlement,
    equity_from_tables,
    funding_payment,
    net_positions,
    settlements_in,
)
from quantmm_assets.core.execution.policy import Order

T0 = datetime(2025, 1, 1, tzinfo=UTC)
BAR = timedelta(minutes=5)
CFG = FillConfig()  # taker 4 bps, maker 2 bps, impact 10 bps * sqrt(participation)


def market(quantity: float, cap: float = 0.1, slip_cap: float = 25.0, ref: float = 100.0) -> Order:
    return Order("X", quantity, "short_horizon", cap, slip_cap, None, ref)


def passive(quantity: float, limit: float, cap: float = 0.02) -> Order:
    return Order("X", quantity, "long_horizon", cap, 5.0, limit, 100.0)


def bar(i: int = 1, volume: float = 50.0, spread: float | None = 0.001, o: float = 100.0, lo: float = 99.0, hi=101.0):
    return Bar(T0 + i * BAR, open=o, high=hi, low=lo, close=o, volume=volume, spread=spread)


def test_a_market_buy_fills_the_cap_then_carries_the_rest():
    order = market(10.0)
    first = fill_order(order, 10.0, bar(1, volume=50.0), CFG)
    # cap 0.1 * 50 = 5 fill; half spread 5 bps; impact 10 * sqrt(5 / 50) bps = 3.16227766 bps
    frac = 0.0005 + 10 * math.sqrt(0.1) * 1e-4
    assert first is not None
    assert first.ts_event == T0 + BAR and first.symbol == "X"
    assert first.quantity == 5.0 and first.remaining == 5.0
    assert first.theoretical_price == 100.0
    assert first.fill_price == pytest.approx(100.0816227766017, abs=1e-12)
    assert first.fill_price == pytest.approx(100 * (1 + frac), abs=1e-12)
    assert first.slippage == pytest.approx(0.25, abs=1e-12)  # 5 * 100 * 0.0005
    assert first.impact == pytest.approx(0.1581138830084, abs=1e-12)  # 5 * 100 * 3.16227766e-4
    assert first.fee == pytest.approx(4e-4 * 5 * 100.0816227766017, abs=1e-12)  # 4 bps of notional
    second = fill_order(order, first.remaining, bar(2, volume=100.0), CFG)
    assert second is not None and second.quantity == 5.0 and second.remaining == 0.0
    assert second.ts_event == T0 + 2 * BAR
    assert second.fill_price == pytest.approx(100 * (1 + 0.0005 + 10 * math.sqrt(0.05) * 1e-4), abs=1e-12)
    assert fill_order(order, second.remaining, bar(3), CFG) is None  # nothing left


def test_a_market_sell_fills_below_the_open():
    fill = fill_order(market(-2.0), -2.0, bar(volume=100.0, o=200.0, lo=190.0, hi=210.0), CFG)
    assert fill is not None and fill.quantity == -2.0 and fill.remaining == 0.0
    frac = 0.0005 + 10 * math.sqrt(0.02) * 1e-4
    assert fill.fill_price == pytest.approx(200 * (1 - frac), abs=1e-12)
    assert fill.slippage == pytest.approx(2 * 200 * 0.0005, abs=1e-12) and fill.slippage > 0
    assert fill.fee == pytest.approx(4e-4 * 2 * 200 * (1 - frac), abs=1e-12)


def test_impact_grows_with_participation_and_is_zero_at_zero():
    assert impact_bps(0.0, CFG) == 0.0
    assert impact_bps(0.04, CFG) == pytest.approx(2.0, abs=1e-12)  # 10 * sqrt(0.04)
    assert impact_bps(0.09, FillConfig(impact_coef_bps=20.0)) == pytest.approx(6.0, abs=1e-12)
    thin = fill_order(market(4.0), 4.0, bar(volume=40.0), CFG)  # participation 0.1
    deep = fill_order(market(4.0), 4.0, bar(volume=400.0), CFG)  # participation 0.01
    assert thin is not None and deep is not None
    assert thin.impact == pytest.approx(4 * 100 * 10 * math.sqrt(0.1) * 1e-4, abs=1e-12)
    assert deep.impact == pytest.approx(4 * 100 * 10 * math.sqrt(0.01) * 1e-4, abs=1e-12)
    assert thin.fill_price > deep.fill_price
    free = fill_order(market(4.0), 4.0, bar(volume=40.0), FillConfig(impact_coef_bps=0.0))
    assert free is not None and free.impact == 0.0 and free.fill_price == pytest.approx(100.05, abs=1e-12)


def test_the_slippage_cap_limits_the_fill():
    cfg = FillConfig(impact_coef_bps=100.0)
    # half spread 20 bps, cap 25 bps: impact may be 5 bps = 100 * sqrt(p) -> p = 0.0025 -> 2.5 of volume 1000
    fill = fill_order(market(10.0), 10.0, bar(volume=1000.0, spread=0.004), cfg)
    assert fill is not None
    assert fill.quantity == pytest.approx(2.5, abs=1e-9) and fill.remaining == pytest.approx(7.5, abs=1e-9)
    assert fill.fill_price == pytest.approx(100.25, abs=1e-9)  # 100 * (1 + 0.002 + 0.0005)
    assert (fill.slippage + fill.impact) / fill.quantity / 100 * 1e4 == pytest.approx(25.0, abs=1e-9)
    uncapped = fill_order(market(10.0, slip_cap=1000.0), 10.0, bar(volume=1000.0, spread=0.004), cfg)
    assert uncapped is not None and uncapped.quantity == 10.0  # the participation cap (100) does not bind


@pytest.mark.parametrize("spread", [0.005, 0.006])  # half spread 25 bps (= the cap), 30 bps (above it)
def test_a_half_spread_at_the_cap_fills_nothing(spread):
    assert fill_order(market(1.0), 1.0, bar(volume=1000.0, spread=spread), CFG) is None


def test_a_half_spread_at_the_cap_fills_when_there_is_no_impact():
    fill = fill_order(market(1.0), 1.0, bar(volume=1000.0, spread=0.005), FillConfig(impact_coef_bps=0.0))
    assert fill is not None and fill.quantity == 1.0 and fill.fill_price == pytest.approx(100.25, abs=1e-12)
    assert fill_order(market(1.0), 1.0, bar(volume=1000.0, spread=0.00502), FillConfig(impact_coef_bps=0.0)) is None


def test_an_unknown_bar_spread_uses_the_orders_default():
    order = Order("X", 1.0, "short_horizon", 0.1, 25.0, None, 100.0, default_spread=0.002)
    fill = fill_order(order, 1.0, bar(volume=1000.0, spread=None), FillConfig(impact_coef_bps=0.0))
    assert fill is not None and fill.fill_price == pytest.approx(100.1, abs=1e-12)  # half of 20 bps
    nan = fill_order(order, 1.0, bar(volume=1000.0, spread=float("nan")), FillConfig(impact_coef_bps=0.0))
    assert nan is not None and nan.fill_price == pytest.approx(100.1, abs=1e-12)


def test_market_price_gap_equals_slippage_plus_impact_per_unit():
    fill = fill_order(market(3.0, ref=100.0), 3.0, bar(volume=60.0, o=100.0), CFG)
    assert fill is not None and fill.delay == 0.0
    assert fill.fill_price - fill.theoretical_price == pytest.approx((fill.slippage + fill.impact) / 3.0, abs=1e-12)
    sell = fill_order(market(-3.0, ref=100.0), -3.0, bar(volume=60.0, o=100.0), CFG)
    assert sell is not None
    assert sell.theoretical_price - sell.fill_price == pytest.approx((sell.slippage + sell.impact) / 3.0, abs=1e-12)
    # the fill bar opened 1 above the decision close: the one bar of latency is the delay
    late = fill_order(market(3.0, ref=99.0), 3.0, bar(volume=60.0, o=100.0), CFG)
    assert late is not None and late.delay == pytest.approx(3.0, abs=1e-12)
    gap = (late.fill_price - late.theoretical_price) * 3.0
    assert gap == pytest.approx(late.delay + late.slippage + late.impact, abs=1e-12)


def test_a_passive_buy_fills_only_through_the_limit_at_the_limit_with_the_maker_fee():
    order = passive(10.0, limit=99.95)
    assert fill_order(order, 10.0, bar(volume=100.0, lo=99.96), CFG) is None
    assert fill_order(order, 10.0, bar(volume=100.0, lo=99.95), CFG) is None  # touching is not trading through
    fill = fill_order(order, 10.0, bar(volume=100.0, lo=99.9), CFG)
    assert fill is not None
    assert fill.quantity == 2.0 and fill.remaining == 8.0  # cap 0.02 * 100
    assert fill.fill_price == 99.95 and fill.slippage == 0.0 and fill.impact == 0.0
    assert fill.fee == pytest.approx(2e-4 * 2 * 99.95, abs=1e-12)
    assert fill.delay == pytest.approx(2 * (99.95 - 100.0), abs=1e-12)  # a gain against the decision close
    gapped = fill_order(order, 10.0, bar(volume=100.0, o=99.0, lo=98.0, hi=99.5), CFG)
    assert gapped is not None and gapped.fill_price == 99.95  # no price improvement


def test_a_passive_sell_fills_only_when_the_high_trades_through():
    order = passive(-1.0, limit=100.05)
    assert fill_order(order, -1.0, bar(volume=100.0, hi=100.05), CFG) is None
    fill = fill_order(order, -1.0, bar(volume=100.0, hi=100.1), CFG)
    assert fill is not None and fill.quantity == -1.0 and fill.remaining == 0.0 and fill.fill_price == 100.05
    assert fill.fee == pytest.approx(2e-4 * 100.05, abs=1e-12)
    assert fill.delay == pytest.approx(-0.05, abs=1e-12)  # -1 * 1 * (100.05 - 100): sold above the decision close


@pytest.mark.parametrize("order", [market(1.0), passive(1.0, limit=99.95)])
def test_a_zero_volume_bar_fills_nothing(order):
    assert fill_order(order, 1.0, bar(volume=0.0, lo=90.0), CFG) is None


def test_remaining_must_be_on_the_orders_side_and_within_it():
    with pytest.raises(ValueError, match="other side"):
        fill_order(market(1.0), -1.0, bar(), CFG)
    with pytest.raises(ValueError, match="exceeds"):
        fill_order(market(1.0), 2.0, bar(), CFG)
    with pytest.raises(ValueError):
        fill_order(market(1.0), float("nan"), bar(), CFG)
    assert fill_order(market(1.0), 0.0, bar(), CFG) is None


@pytest.mark.parametrize(
    "kwargs",
    [
        {"volume": -1.0},
        {"open": float("nan")},
        {"open": 0.0},
        {"low": 102.0},  # above the high
        {"spread": -0.001},
    ],
)
def test_bad_bars_raise(kwargs):
    fields = {"ts_event": T0, "open": 100.0, "high": 101.0, "low": 99.0, "close": 100.0, "volume": 1.0, "spread": None}
    with pytest.raises(ValueError):
        Bar(**{**fields, **kwargs})


def test_fill_config_validates_and_hashes():
    with pytest.raises(ValueError):
        FillConfig(taker_fee_bps=-1.0)
    with pytest.raises(ValueError):
        FillConfig(impact_coef_bps=float("nan"))
    params = CFG.as_params()
    assert {k: v for k, v in params.items() if k != "fill.hash"} == {
        "fill.taker_fee_bps": 4.0,
        "fill.maker_fee_bps": 2.0,
        "fill.impact_coef_bps": 10.0,
    }
    assert params["fill.hash"] == CFG.config_hash() == FillConfig().config_hash()
    assert len(CFG.config_hash()) == 12 and int(CFG.config_hash(), 16) >= 0
    assert FillConfig(maker_fee_bps=1.0).config_hash() != CFG.config_hash()


def test_funding_a_long_pays_a_short_receives_a_negative_rate_reverses():
    assert funding_payment(2.0, 100.0, 0.0001) == pytest.approx(-0.02, abs=1e-15)
    assert funding_payment(-2.0, 100.0, 0.0001) == pytest.approx(0.02, abs=1e-15)
    assert funding_payment(2.0, 100.0, -0.0001) == pytest.approx(0.02, abs=1e-15)
    assert funding_payment(-2.0, 100.0, -0.0001) == pytest.approx(-0.02, abs=1e-15)
    assert funding_payment(0.0, 100.0, 0.0001) == 0.0
    with pytest.raises(ValueError):
        funding_payment(1.0, float("nan"), 0.0001)


def funding_rows(rows: list[tuple[str, datetime, float | None]]) -> pl.DataFrame:
    schema = {"symbol": pl.Utf8, "ts_event": pl.Datetime("us", "UTC"), "funding_rate": pl.Float64}
    return pl.DataFrame(rows, schema=schema, orient="row")


def test_settlements_in_is_after_exclusive_until_inclusive_in_time_order():
    h = timedelta(hours=8)
    table = funding_rows(
        [("X", T0 + 2 * h, 3e-4), ("X", T0, 1e-4), ("Y", T0 + h, 9e-4), ("X", T0 + h, 2e-4), ("X", T0 + 3 * h, 4e-4)]
    )
    got, skipped = settlements_in(table, "X", T0, T0 + 2 * h)
    assert got == [Settlement("X", T0 + h, 2e-4), Settlement("X", T0 + 2 * h, 3e-4)] and skipped == 0
    assert settlements_in(table, "X", T0 - timedelta(microseconds=1), T0) == ([Settlement("X", T0, 1e-4)], 0)
    assert settlements_in(table, "X", T0 + h, T0 + h) == ([], 0)
    assert settlements_in(table, "Z", T0, T0 + 3 * h) == ([], 0)
    paris = ZoneInfo("Europe/Paris")  # the same instants in another zone
    assert settlements_in(table, "X", T0.astimezone(paris), (T0 + 2 * h).astimezone(paris))[0] == got


def test_settlements_in_skips_and_counts_null_and_nan_rates():
    h = timedelta(hours=8)
    table = funding_rows([("X", T0 + h, None), ("X", T0 + 2 * h, float("nan")), ("X", T0 + 3 * h, 1e-4)])
    assert settlements_in(table, "X", T0, T0 + 3 * h) == ([Settlement("X", T0 + 3 * h, 1e-4)], 2)
    assert settlements_in(table, "X", T0 + h, T0 + 3 * h) == ([Settlement("X", T0 + 3 * h, 1e-4)], 1)


def test_settlements_in_rejects_bad_bounds_and_duplicates():
    table = funding_rows([("X", T0, 1e-4), ("X", T0, 2e-4)])
    with pytest.raises(ValueError, match="duplicate"):
        settlements_in(table, "X", T0 - BAR, T0)
    with pytest.raises(ValueError, match="timezone"):
        settlements_in(table, "X", datetime(2025, 1, 1), T0)
    with pytest.raises(ValueError, match="later"):
        settlements_in(table, "X", T0 + BAR, T0)


def hand_fill(symbol: str, quantity: float, price: float, fee: float) -> Fill:
    return Fill(symbol, T0, quantity, price, price, 0.0, 0.0, fee, 0.0)


def test_the_paper_book_matches_a_hand_computed_sequence_and_the_tables():
    book = PaperBook(cash=1000.0)
    book.apply_fill(hand_fill("X", 5.0, 100.08, 0.2))
    book.apply_fill(hand_fill("X", 5.0, 101.0, 0.2))
    assert book.apply_funding("X", 102.0, 1e-4) == pytest.approx(-0.102, abs=1e-12)  # -10 * 102 * 1e-4
    book.apply_fill(hand_fill("Y", -3.0, 50.0, 0.06))
    assert book.apply_funding("Y", 49.0, -2e-4) == pytest.approx(-0.0294, abs=1e-12)  # -(-3) * 49 * (-2e-4)
    assert book.apply_funding("Z", 10.0, 1e-3) == 0.0  # not held
    assert book.positions == {"X": 10.0, "Y": -3.0}
    assert book.cash == pytest.approx(144.0086, abs=1e-9)  # 1000 - 500.6 - 505.2 - 0.102 + 149.94 - 0.0294
    assert book.fees == pytest.approx(0.46, abs=1e-12) and book.funding == pytest.approx(-0.1314, abs=1e-12)
    marks = {"X": 103.0, "Y": 48.0}
    assert book.equity(marks) == pytest.approx(1030.0086, abs=1e-9)  # 144.0086 + 1030 - 144
    snap = book.snapshot(marks)
    assert snap["equity"] == pytest.approx(1030.0086, abs=1e-9)
    assert snap["gross_exposure"] == pytest.approx(1174.0, abs=1e-9) and snap["net_exposure"] == 886.0
    assert snap["positions"] == {"X": 10.0, "Y": -3.0} and snap["positions"] is not book.positions
    assert "equity" not in book.snapshot()
    fills = pl.DataFrame(
        {
            "symbol": ["X", "X", "Y"],
            "quantity": [5.0, 5.0, -3.0],
            "fill_price": [100.08, 101.0, 50.0],
            "fee": [0.2, 0.2, 0.06],
        }
    )
    funding = pl.DataFrame({"payment": [-0.102, -0.0294]})
    assert net_positions(fills) == {"X": 10.0, "Y": -3.0}
    assert equity_from_tables(1000.0, fills, funding, marks) == pytest.approx(1030.0086, abs=1e-9)
    assert equity_from_tables(1000.0, fills, None, marks) == pytest.approx(1030.0086 + 0.1314, abs=1e-9)


def test_a_held_symbol_needs_a_mark_and_a_closed_one_does_not():
    book = PaperBook(cash=0.0)
    book.apply_fill(hand_fill("X", 2.0, 10.0, 0.0))
    with pytest.raises(ValueError, match="no mark"):
        book.equity({})
    with pytest.raises(ValueError):
        book.equity({"X": float("nan")})
    book.apply_fill(hand_fill("X", -2.0, 11.0, 0.01))
    assert book.positions == {} and book.equity({}) == pytest.approx(1.99, abs=1e-12)
    fills = pl.DataFrame({"symbol": ["X", "Y"], "quantity": [1.0, 1.0], "fill_price": [1.0, 1.0], "fee": [0.0, 0.0]})
    with pytest.raises(ValueError, match="no mark for held symbol 'Y'"):
        equity_from_tables(0.0, fills, None, {"X": 1.0})


def test_equity_from_tables_rejects_incomplete_tables():
    fills = pl.DataFrame({"symbol": ["X"], "quantity": [1.0], "fill_price": [None], "fee": [0.0]})
    with pytest.raises(ValueError, match="fill_price"):
        equity_from_tables(0.0, fills, None, {"X": 1.0})
    with pytest.raises(ValueError, match="fee"):
        equity_from_tables(0.0, pl.DataFrame({"symbol": ["X"], "quantity": [1.0], "fill_price": [1.0]}), None, {})
    ok = pl.DataFrame({"symbol": ["X"], "quantity": [1.0], "fill_price": [1.0], "fee": [0.0]})
    with pytest.raises(ValueError, match="payment"):
        equity_from_tables(0.0, ok, pl.DataFrame({"payment": [float("nan")]}), {"X": 1.0})


def test_a_simulated_loop_equity_equals_the_recomputation_from_its_tables():
    """Buy 10 then sell 4 across bars with partial fills and two settlements; the book equals the tables."""
    book, fills, payments = PaperBook(cash=10_000.0), [], []
    step = 1
    for order in (market(10.0), passive(-4.0, limit=100.05, cap=0.05)):
        remaining = order.quantity
        while remaining != 0.0:
            fill = fill_order(order, remaining, bar(step, volume=40.0 + step, lo=99.0, hi=101.0), CFG)
            step += 1
            if fill is None:
                continue
            book.apply_fill(fill)
            fills.append(fill)
            remaining = fill.remaining
            if step % 2 == 0:
                payments.append(book.apply_funding("X", 100.0 + step, 1e-4 * step))
    assert len(fills) >= 4 and book.positions == {"X": pytest.approx(6.0, abs=1e-12)}
    table = fills_frame(fills)
    assert table.columns[:9] == [
        "symbol",
        "ts_event",
        "quantity",
        "theoretical_price",
        "fill_price",
        "slippage",
        "impact",
        "fee",
        "remaining",
    ]
    assert table.height == len(fills) and table["quantity"].sum() == pytest.approx(6.0, abs=1e-12)
    marks = {"X": 104.5}
    want = equity_from_tables(10_000.0, table, pl.DataFrame({"payment": payments}), marks)
    assert book.equity(marks) == pytest.approx(want, rel=1e-12)
    assert book.fees == pytest.approx(table["fee"].sum(), rel=1e-12) and book.funding == pytest.approx(sum(payments))
