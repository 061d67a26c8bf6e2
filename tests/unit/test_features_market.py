"""Market features: hand-computed values of every family, exact lags, windows, and no look-ahead."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from quantmm_assets.core.features.market import MARKET_FEATURES, MARKET_LOOKBACK_DAYS, market_features, perp_grid

T0 = datetime(2025, 3, 10, tzinfo=UTC)
BAR = timedelta(minutes=5)
LN2 = math.log(2)

# Perp bars closing at T0 + i * 5m: (open, high, low, close, volume); the bar closing at i = 4 is missing.
HAND = {
    1: (100.0, 102.0, 99.0, 101.0, 10.0),
    2: (101.0, 104.0, 100.0, 103.0, 20.0),
    3: (103.0, 103.5, 101.0, 102.0, 15.0),
    5: (102.0, 106.0, 101.5, 105.0, 30.0),
    6: (105.0, 107.0, 104.0, 106.0, 25.0),
    7: (106.0, 108.0, 105.0, 105.5, 12.0),
}


def make_bars(rows: dict[int, tuple[float, ...]], symbol: str = "BTCUSDT", market: str = "perp") -> pl.DataFrame:
    """Return raw market_bars_5m rows for bars closing at T0 + i * 5m."""
    closes = [T0 + i * BAR for i in rows]
    o, h, lo, c, v = (list(x) for x in zip(*rows.values(), strict=True))
    return pl.DataFrame(
        {
            "symbol": symbol,
            "market": market,
            "ts_event": [t - BAR for t in closes],
            "ts_available": closes,
            "open": o,
            "high": h,
            "low": lo,
            "close": c,
            "volume": v,
            "source": "test",
        },
        schema_overrides={"ts_event": pl.Datetime("us", "UTC"), "ts_available": pl.Datetime("us", "UTC")},
    )


def random_bars(seed: int, days: int, symbols: tuple[str, ...] = ("BTCUSDT", "ETHUSDT")) -> pl.DataFrame:
    """Return random spot and perp bars from T0 over ``days`` days, with a few missing bars and a 3h hole."""
    rng = np.random.default_rng(seed)
    n = days * 288
    frames = []
    for sym in symbols:
        for market in ("perp", "spot"):
            close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.002, n)))
            open_ = close * np.exp(rng.normal(0.0, 0.001, n))
            high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0.0, 0.001, n)))
            low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0.0, 0.001, n)))
            keep = rng.random(n) > 0.02
            keep[400:436] = False  # a 3h outage
            idx = np.flatnonzero(keep)
            rows = {int(i): (open_[i], high[i], low[i], close[i], rng.lognormal(3.0, 1.0)) for i in idx}
            frames.append(make_bars(rows, sym, market))
    return pl.concat(frames)


def feature_row(out: pl.DataFrame, i: int) -> dict[str, float | None]:
    """Return the feature row closing at T0 + i * 5m as a dict."""
    rows = out.filter(pl.col("ts_event") == T0 + i * BAR).to_dicts()
    assert len(rows) == 1
    return rows[0]


def sample_std(xs: list[float]) -> float:
    m = sum(xs) / len(xs)
    return math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))


def cs_spread(cur: tuple[float, ...], prev: tuple[float, ...]) -> float:
    k = 3 - 2 * math.sqrt(2)
    beta = math.log(cur[1] / cur[2]) ** 2 + math.log(prev[1] / prev[2]) ** 2
    gamma = math.log(max(cur[1], prev[1]) / min(cur[2], prev[2])) ** 2
    alpha = (math.sqrt(2 * beta) - math.sqrt(beta)) / k - math.sqrt(gamma / k)
    return max(0.0, 2 * (math.exp(alpha) - 1) / (1 + math.exp(alpha)))


@pytest.fixture(scope="module")
def hand() -> pl.DataFrame:
    spot = make_bars(dict.fromkeys(range(1, 9), (1.0, 1.0, 1.0, 1.0, 1.0)), market="spot")
    after_end = make_bars({9: (1.0, 2.0, 0.5, 1.5, 1.0)})
    return market_features(pl.concat([make_bars(HAND), spot, after_end]), T0, T0 + 9 * BAR)


def test_grid_rows_are_the_perp_bar_closes_in_range(hand: pl.DataFrame) -> None:
    assert hand.columns == ["symbol", "ts_event", "ts_available", *MARKET_FEATURES]
    assert hand["ts_event"].to_list() == [T0 + i * BAR for i in HAND]
    assert (hand["ts_event"] == hand["ts_available"]).all()
    assert all(hand.schema[c] == pl.Float64 for c in MARKET_FEATURES)
    grid = perp_grid(pl.concat([make_bars(HAND), make_bars(HAND, market="spot")]), T0 + 2 * BAR, T0 + 6 * BAR)
    assert grid.columns == ["symbol", "ts_event", "ts_available"]
    assert grid["ts_event"].to_list() == [T0 + i * BAR for i in (2, 3, 5)]


def test_returns_are_exact_time_lags(hand: pl.DataFrame) -> None:
    r6, r5, r3 = feature_row(hand, 6), feature_row(hand, 5), feature_row(hand, 3)
    assert r6["ret_5m"] == pytest.approx(math.log(106 / 105), rel=1e-12)
    assert r6["ret_15m"] == pytest.approx(math.log(106 / 102), rel=1e-12)  # close at i = 3, not three rows back
    assert r5["ret_5m"] is None  # the bar at i = 4 is missing: no row shift across the hole
    assert r5["ret_15m"] == pytest.approx(math.log(105 / 103), rel=1e-12)
    assert r3["ret_1h"] is None and r6["ret_1d"] is None


def test_volatility_and_range(hand: pl.DataFrame) -> None:
    r1 = {2: math.log(103 / 101), 3: math.log(102 / 103), 6: math.log(106 / 105), 7: math.log(105.5 / 106)}
    row = feature_row(hand, 6)
    assert row["rv_1h"] == pytest.approx(math.sqrt(sum(r1[i] ** 2 for i in (2, 3, 6))), rel=1e-12)
    assert row["rv_1d"] == pytest.approx(row["rv_1h"], rel=1e-12)
    assert feature_row(hand, 1)["rv_1h"] is None  # no return term at all in the window
    bars = [HAND[i] for i in (1, 2, 3, 5, 6)]
    pk = [math.log(h / lo) ** 2 / (4 * LN2) for _, h, lo, _, _ in bars]
    assert row["parkinson_vol_1h"] == pytest.approx(math.sqrt(sum(pk) / 5), rel=1e-12)
    gk = [0.5 * math.log(h / lo) ** 2 - (2 * LN2 - 1) * math.log(c / o) ** 2 for o, h, lo, c, _ in bars]
    assert row["garman_klass_vol_1h"] == pytest.approx(math.sqrt(max(0.0, sum(gk) / 5)), rel=1e-12)
    assert row["range_1h"] == pytest.approx(math.log(107 / 99), rel=1e-12)


def test_volume_liquidity_and_spreads(hand: pl.DataFrame) -> None:
    row = feature_row(hand, 6)
    bars = {i: HAND[i] for i in (1, 2, 3, 5, 6)}
    lv = [math.log1p(b[4]) for b in bars.values()]
    assert row["log_volume_z_1d"] == pytest.approx((lv[-1] - sum(lv) / 5) / sample_std(lv), rel=1e-9)
    ldv = [math.log1p(b[4] * b[3]) for b in bars.values()]
    assert row["log_dollar_volume_z_1d"] == pytest.approx((ldv[-1] - sum(ldv) / 5) / sample_std(ldv), rel=1e-9)
    assert row["log_dollar_volume_1h"] == pytest.approx(math.log1p(sum(b[4] * b[3] for b in bars.values())))
    r1 = {2: math.log(103 / 101), 3: math.log(102 / 103), 6: math.log(106 / 105)}
    amihud = [abs(r1[i]) / max(bars[i][4] * bars[i][3], 1.0) for i in r1]
    assert row["amihud_1h"] == pytest.approx(1e6 * sum(amihud) / 3, rel=1e-12)
    cs = [cs_spread(HAND[i], HAND[i - 1]) for i in (2, 3, 6)]  # i = 5 has no bar at t - 5m
    assert row["cs_spread_1h"] == pytest.approx(sum(cs) / 3, rel=1e-12, abs=1e-15)
    assert feature_row(hand, 1)["log_volume_z_1d"] is None  # one term: std is null


def test_roll_spread_pairs_each_return_with_the_previous_bar_return(hand: pl.DataFrame) -> None:
    r1 = {2: math.log(103 / 101), 3: math.log(102 / 103), 6: math.log(106 / 105), 7: math.log(105.5 / 106)}
    assert feature_row(hand, 6)["roll_spread_1d"] is None  # only the pair (3, 2): n < 2
    x, y = [r1[3], r1[7]], [r1[2], r1[6]]
    cov = (sum(a * b for a, b in zip(x, y, strict=True)) - sum(x) * sum(y) / 2) / 1
    assert feature_row(hand, 7)["roll_spread_1d"] == pytest.approx(2 * math.sqrt(max(0.0, -cov)), rel=1e-9)


def test_window_is_open_at_t_minus_w_and_look_back_rows_count() -> None:
    rows = {1: (100.0, 110.0, 90.0, 100.0, 1.0), 13: (100.0, 101.0, 99.0, 100.5, 1.0)}
    out = market_features(make_bars(rows), T0 + 13 * BAR, T0 + 14 * BAR)
    assert out.height == 1  # the bar before start is look-back only
    row = out.row(0, named=True)
    assert row["range_1h"] == pytest.approx(math.log(101 / 99), rel=1e-12)  # close at t - 1h is outside (t-1h, t]
    assert row["range_1d"] == pytest.approx(math.log(110 / 90), rel=1e-12)
    assert row["ret_1h"] == pytest.approx(math.log(100.5 / 100), rel=1e-12)  # lag reaches before start


def test_z_score_is_null_on_a_constant_window() -> None:
    rows = {i: (100.0, 100.0 + i, 99.0, 100.0, 0.7) for i in range(1, 40)}  # equal volumes and closes
    out = market_features(make_bars(rows), T0, T0 + timedelta(days=1))
    assert out["log_volume_z_1d"].null_count() == out.height
    assert out["log_dollar_volume_z_1d"].null_count() == out.height
    assert out["range_1h"].null_count() == 0


def test_empty_input_gives_typed_empty_frame() -> None:
    out = market_features(make_bars(HAND).clear(), T0, T0 + timedelta(days=1))
    assert out.is_empty() and out.columns == ["symbol", "ts_event", "ts_available", *MARKET_FEATURES]


@pytest.fixture(scope="module")
def history() -> pl.DataFrame:
    return random_bars(seed=3, days=6)


START = T0 + timedelta(days=3)
END = T0 + timedelta(days=5)


def test_look_back_days_suffice(history: pl.DataFrame) -> None:
    full = market_features(history, START, END)
    cut = history.filter(pl.col("ts_event") >= START - timedelta(days=MARKET_LOOKBACK_DAYS))
    assert full.height > 1000 and full["ret_1d"].null_count() < full.height
    assert_frame_equal(market_features(cut, START, END), full, check_exact=False, rel_tol=1e-9, abs_tol=1e-9)


@pytest.mark.parametrize(
    "cut",
    [
        START,  # midnight: only the first row
        START + timedelta(hours=8),  # a funding settlement
        START + timedelta(hours=13, minutes=37, seconds=11),
        START + timedelta(days=1),  # the next midnight
        START + timedelta(days=1, hours=16),
    ],
)
def test_no_look_ahead_truncation_and_future_perturbation(history: pl.DataFrame, cut: datetime) -> None:
    full = market_features(history, START, END).filter(pl.col("ts_event") <= cut)
    truncated = market_features(history.filter(pl.col("ts_available") <= cut), START, END)
    assert_frame_equal(truncated, full, check_exact=True)
    future = pl.col("ts_available") > cut
    noise = pl.when(future).then(3.0).otherwise(1.0)
    perturbed = history.with_columns(
        [(pl.col(c) * noise).alias(c) for c in ("open", "high", "low", "close", "volume")]
    ).filter(~(future & (pl.col("ts_event").dt.minute() == 30)))
    changed = market_features(perturbed, START, END).filter(pl.col("ts_event") <= cut)
    assert_frame_equal(changed, full, check_exact=True)
    assert full.height > 0
