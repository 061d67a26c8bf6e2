"""The execution policy: bucket -> policy, order sizing, dust, the passive touch and input validation."""

from __future__ import annotations

import math

import pytest

from quantmm_assets.core.execution.policy import (
    BUCKET_POLICY,
    LONG_HORIZON,
    POLICIES,
    SHORT_HORIZON,
    Book,
    ExecutionPolicy,
    Liquidity,
    Order,
    execute,
    policy_for,
)

LIQ = Liquidity(bar_volume=100.0)


def test_the_policies_and_buckets_are_the_designed_ones():
    assert (SHORT_HORIZON.name, SHORT_HORIZON.participation_cap, SHORT_HORIZON.slippage_cap_bps) == (
        "short_horizon",
        0.10,
        25.0,
    )
    assert SHORT_HORIZON.passive is False
    assert (LONG_HORIZON.name, LONG_HORIZON.participation_cap, LONG_HORIZON.slippage_cap_bps) == (
        "long_horizon",
        0.02,
        5.0,
    )
    assert LONG_HORIZON.passive is True
    assert SHORT_HORIZON.default_spread == LONG_HORIZON.default_spread == 5e-4
    assert BUCKET_POLICY == {"mean_reversion": "short_horizon", "event": "short_horizon", "trend": "long_horizon"}
    assert POLICIES == {"short_horizon": SHORT_HORIZON, "long_horizon": LONG_HORIZON}


@pytest.mark.parametrize("bucket", ["mean_reversion", "event"])
def test_short_buckets_place_a_market_order_for_the_whole_difference(bucket):
    order = execute(3.0, 1.0, bucket, LIQ, Book(price=100.0, spread=0.001, volume=50.0), symbol="BTCUSDT")
    assert order == Order(
        symbol="BTCUSDT",
        quantity=2.0,
        policy="short_horizon",
        participation_cap=0.10,
        slippage_cap_bps=25.0,
        limit_price=None,
        reference_price=100.0,
        default_spread=5e-4,
    )
    assert order.side == 1 and not order.passive


def test_a_sell_is_signed_negative():
    order = execute(-1.0, 2.0, "event", LIQ, Book(price=50.0, spread=None, volume=1.0))
    assert order is not None and order.quantity == -3.0 and order.side == -1


def test_trend_rests_a_passive_limit_at_the_touch():
    buy = execute(1.0, 0.0, "trend", LIQ, Book(price=100.0, spread=0.001, volume=50.0))
    assert buy is not None and buy.policy == "long_horizon" and buy.passive
    assert buy.limit_price == pytest.approx(99.95, abs=1e-12)  # 100 * (1 - 0.001 / 2)
    assert (buy.participation_cap, buy.slippage_cap_bps, buy.reference_price) == (0.02, 5.0, 100.0)
    sell = execute(-1.0, 0.0, "trend", LIQ, Book(price=100.0, spread=0.001, volume=50.0))
    assert sell is not None and sell.limit_price == pytest.approx(100.05, abs=1e-12)


@pytest.mark.parametrize("spread", [None, float("nan")])
def test_an_unknown_spread_uses_the_policy_default(spread):
    buy = execute(1.0, 0.0, "trend", LIQ, Book(price=100.0, spread=spread, volume=50.0))
    assert buy is not None and buy.limit_price == pytest.approx(99.975, abs=1e-12)  # 100 * (1 - 5e-4 / 2)
    wide = ExecutionPolicy("wide", 0.05, 10.0, passive=True, default_spread=0.01)
    order = execute(-2.0, 0.0, "b", LIQ, Book(100.0, spread, 1.0), policies={"wide": wide}, bucket_policy={"b": "wide"})
    assert order is not None and order.limit_price == pytest.approx(100.5, abs=1e-12)
    assert order.default_spread == 0.01 and order.participation_cap == 0.05 and order.slippage_cap_bps == 10.0


def test_a_zero_spread_is_a_known_spread_not_the_default():
    buy = execute(1.0, 0.0, "trend", LIQ, Book(price=100.0, spread=0.0, volume=50.0))
    assert buy is not None and buy.limit_price == 100.0


def test_dust_places_no_order():
    liq = Liquidity(bar_volume=100.0, min_order_qty=0.5)
    book = Book(price=100.0, spread=0.001, volume=50.0)
    assert execute(1.4, 1.0, "event", liq, book) is None  # |0.4| < 0.5
    assert execute(0.6, 1.0, "event", liq, book) is None  # |-0.4| < 0.5
    at_minimum = execute(1.5, 1.0, "event", liq, book)
    assert at_minimum is not None and at_minimum.quantity == 0.5
    assert execute(2.0, 2.0, "event", LIQ, book) is None  # no difference at all
    assert execute(1.0 + 1e-13, 1.0, "event", LIQ, book) is None  # below the floating-point floor
    tiny = execute(1e-9, 0.0, "event", LIQ, book)
    assert tiny is not None and tiny.quantity == 1e-9


def test_an_unknown_bucket_names_the_known_ones():
    with pytest.raises(ValueError, match="unknown horizon bucket 'carry'.*event.*mean_reversion.*trend"):
        execute(1.0, 0.0, "carry", LIQ, Book(100.0, 0.001, 1.0))
    with pytest.raises(ValueError, match="unknown policy 'nope'.*long_horizon.*short_horizon"):
        policy_for("x", bucket_policy={"x": "nope"})
    assert policy_for("trend") is LONG_HORIZON


@pytest.mark.parametrize(
    "build",
    [
        lambda: Book(price=float("nan"), spread=0.001, volume=1.0),
        lambda: Book(price=0.0, spread=0.001, volume=1.0),
        lambda: Book(price=-1.0, spread=0.001, volume=1.0),
        lambda: Book(price=100.0, spread=-0.001, volume=1.0),
        lambda: Book(price=100.0, spread=float("inf"), volume=1.0),
        lambda: Book(price=100.0, spread=0.001, volume=-1.0),
        lambda: Book(price=100.0, spread=0.001, volume=float("nan")),
        lambda: Book(price="100", spread=0.001, volume=1.0),
        lambda: Liquidity(bar_volume=-5.0),
        lambda: Liquidity(bar_volume=float("nan")),
        lambda: Liquidity(bar_volume=5.0, min_order_qty=-1.0),
        lambda: ExecutionPolicy("p", participation_cap=0.0, slippage_cap_bps=5.0, passive=False),
        lambda: ExecutionPolicy("p", participation_cap=1.5, slippage_cap_bps=5.0, passive=False),
        lambda: ExecutionPolicy("p", participation_cap=0.1, slippage_cap_bps=0.0, passive=False),
        lambda: ExecutionPolicy("p", participation_cap=0.1, slippage_cap_bps=float("nan"), passive=False),
        lambda: ExecutionPolicy("", participation_cap=0.1, slippage_cap_bps=5.0, passive=False),
        lambda: ExecutionPolicy("p", participation_cap=0.1, slippage_cap_bps=5.0, passive=False, default_spread=-1e-4),
        lambda: ExecutionPolicy("p", participation_cap=0.1, slippage_cap_bps=5.0, passive="yes"),
        lambda: Order("X", 0.0, "p", 0.1, 5.0, None, 100.0),
        lambda: Order("X", 1.0, "p", 0.1, 5.0, -1.0, 100.0),
        lambda: Order("X", 1.0, "p", 0.1, 5.0, None, float("nan")),
    ],
)
def test_bad_inputs_raise(build):
    with pytest.raises(ValueError):
        build()


def test_the_boundaries_of_the_validation_are_accepted():
    assert Book(price=1e-9, spread=0.0, volume=0.0).volume == 0.0
    assert Liquidity(bar_volume=0.0, min_order_qty=0.0).bar_volume == 0.0
    assert ExecutionPolicy("p", participation_cap=1.0, slippage_cap_bps=1e-9, passive=False, default_spread=0.0)


@pytest.mark.parametrize("target, current", [(float("nan"), 0.0), (1.0, float("inf")), (None, 0.0)])
def test_non_finite_positions_raise(target, current):
    with pytest.raises(ValueError):
        execute(target, current, "event", LIQ, Book(100.0, 0.001, 1.0))


def test_a_zero_volume_book_still_places_the_order():
    order = execute(1.0, 0.0, "event", Liquidity(bar_volume=0.0), Book(100.0, 0.001, 0.0))
    assert order is not None and order.quantity == 1.0 and math.isclose(order.reference_price, 100.0)
