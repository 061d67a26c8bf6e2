"""Derivatives features: as-of values, staleness limits, fallbacks, tie-breaks, and no look-ahead."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from quantmm_assets.core.features.derivatives import (
    DERIVATIVES_FEATURES,
    DERIVATIVES_LOOKBACK_DAYS,
    derivatives_features,
)
from quantmm_assets.core.schemas import DERIVATIVES_METRICS, FUNDING_RATES, MARKET_BARS_5M, OPEN_INTEREST

D = datetime(2025, 3, 10, tzinfo=UTC)
H = timedelta(hours=1)
M5 = timedelta(minutes=5)
PERIOD = {"5m": M5, "1h": H}


def bars(closes: dict[datetime, float], market: str = "perp", symbol: str = "BTCUSDT") -> pl.DataFrame:
    """Return raw bars closing at the given instants (OHLC all equal to the close)."""
    ts = list(closes)
    c = list(closes.values())
    return pl.DataFrame(
        {
            "symbol": symbol,
            "market": market,
            "ts_event": [t - M5 for t in ts],
            "ts_available": ts,
            "open": c,
            "high": c,
            "low": c,
            "close": c,
            "volume": 1.0,
            "quote_volume": None,
            "trades": None,
            "source": "test",
        },
        schema=MARKET_BARS_5M.columns,
    )


def funding(rates: dict[datetime, float], symbol: str = "BTCUSDT") -> pl.DataFrame:
    ts = list(rates)
    return pl.DataFrame(
        {
            "symbol": symbol,
            "ts_event": ts,
            "ts_available": ts,
            "funding_rate": list(rates.values()),
            "mark_price": None,
            "source": "t",
        },
        schema=FUNDING_RATES.columns,
    )


def open_interest(rows: list[tuple[datetime, float | None, str]], symbol: str = "BTCUSDT") -> pl.DataFrame:
    """Rows (ts_available, value, period); ts_event = ts_available - period."""
    return pl.DataFrame(
        {
            "symbol": symbol,
            "period": [p for _, _, p in rows],
            "ts_event": [a - PERIOD[p] for a, _, p in rows],
            "ts_available": [a for a, _, _ in rows],
            "open_interest": None,
            "open_interest_value": [v for _, v, _ in rows],
            "source": "t",
        },
        schema=OPEN_INTEREST.columns,
    )


def metrics(rows: list[dict], symbol: str = "BTCUSDT") -> pl.DataFrame:
    """Rows given as dicts with ``at`` (ts_available) and any metric columns (others null); period 5m."""
    out = []
    for r in rows:
        base = dict.fromkeys(DERIVATIVES_METRICS.columns)
        base |= {"symbol": symbol, "period": "5m", "ts_event": r["at"] - M5, "ts_available": r["at"], "source": "t"}
        out.append(base | {k: v for k, v in r.items() if k != "at"})
    return pl.DataFrame(out, schema=DERIVATIVES_METRICS.columns)


EMPTY_F, EMPTY_OI, EMPTY_M = FUNDING_RATES.empty(), OPEN_INTEREST.empty(), DERIVATIVES_METRICS.empty()


def rows_at(out: pl.DataFrame, *ts: datetime) -> list[dict]:
    got = {r["ts_event"]: r for r in out.to_dicts()}
    return [got[t] for t in ts]


def sample_z(x: float, xs: list[float]) -> float:
    m = sum(xs) / len(xs)
    return (x - m) / math.sqrt(sum((v - m) ** 2 for v in xs) / (len(xs) - 1))


def test_funding_as_of_change_z_and_staleness_limit() -> None:
    rates = {
        D - 24 * H: 0.0001,
        D - 16 * H: 0.0002,
        D - 8 * H: 0.0004,
        D: 0.0003,  # the 08:00 settlement is missing
        D + 16 * H: -0.0001,
    }
    grid = [D - 24 * H, D - 16 * H + M5, D, D + 7 * H + 55 * M5 / 5, D + 9 * H, D + 9 * H + M5, D + 16 * H]
    out = derivatives_features(
        bars(dict.fromkeys(grid, 100.0)), funding(rates), EMPTY_OI, EMPTY_M, D - 24 * H, D + 24 * H
    )
    assert out.columns == ["symbol", "ts_event", "ts_available", *DERIVATIVES_FEATURES]
    first, second, mid, late, limit, stale, last = rows_at(out, *grid)
    assert first["funding_rate"] == 0.0001 and first["funding_change"] is None and first["funding_z_7d"] is None
    assert second["funding_change"] == pytest.approx(0.0001) and second["funding_z_7d"] is None  # n = 2 < 3
    assert second["funding_staleness_h"] == pytest.approx(5 / 60)
    assert mid["funding_rate"] == 0.0003 and mid["funding_change"] == pytest.approx(-0.0001)
    assert mid["funding_z_7d"] == pytest.approx(sample_z(0.0003, [0.0001, 0.0002, 0.0004, 0.0003]), rel=1e-9)
    assert late["funding_rate"] == 0.0003 and late["funding_staleness_h"] == pytest.approx(7 + 55 / 60)
    assert limit["funding_missing"] == 0 and limit["funding_staleness_h"] == 9.0  # exactly at the 9 h limit
    assert stale["funding_missing"] == 1 and stale["funding_staleness_h"] == pytest.approx(9 + 5 / 60)
    assert stale["funding_rate"] is None and stale["funding_change"] is None and stale["funding_z_7d"] is None
    assert last["funding_change"] == pytest.approx(-0.0004)  # previous settlement by ts_event: 00:00
    assert last["funding_z_7d"] == pytest.approx(sample_z(-0.0001, [*rates.values()]), rel=1e-9)


def test_funding_stats_use_only_settlements_published_by_then() -> None:
    rates = {D - 8 * H: 0.0001, D: 0.0002, D + 8 * H: 0.0005, D + 16 * H: 0.0004}
    late = funding(rates).with_columns(  # the 08:00 settlement is only published at 20:00
        ts_available=pl.when(pl.col("ts_event") == D + 8 * H).then(pl.lit(D + 20 * H)).otherwise(pl.col("ts_available"))
    )
    grid = [D + 17 * H, D + 20 * H]
    out = derivatives_features(bars(dict.fromkeys(grid, 1.0)), late, EMPTY_OI, EMPTY_M, D, D + 24 * H)
    before, after = rows_at(out, *grid)
    assert before["funding_rate"] == 0.0004 and before["funding_change"] == pytest.approx(0.0002)
    assert before["funding_z_7d"] == pytest.approx(sample_z(0.0004, [0.0001, 0.0002, 0.0004]), rel=1e-9)
    assert after["funding_rate"] == 0.0005 and after["funding_staleness_h"] == 0.0  # latest published row
    assert after["funding_change"] == pytest.approx(0.0003)


def test_funding_z_is_null_when_the_window_is_constant() -> None:
    rates = {D - 8 * H * k: 0.0001 for k in range(6)}
    out = derivatives_features(bars({D + H: 1.0}), funding(rates), EMPTY_OI, EMPTY_M, D, D + 24 * H)
    assert out["funding_rate"][0] == 0.0001 and out["funding_change"][0] == 0.0
    assert out["funding_z_7d"][0] is None


def test_funding_missing_without_any_settlement() -> None:
    out = derivatives_features(bars({D + H: 1.0}), EMPTY_F, EMPTY_OI, EMPTY_M, D, D + 24 * H)
    row = out.row(0, named=True)
    assert row["funding_missing"] == 1 and row["funding_staleness_h"] is None and row["funding_rate"] is None
    assert row["oi_missing"] == 1 and row["ratios_missing"] == 1 and row["mark_missing"] == 1
    assert row["basis_missing"] == 1 and row["basis_reported"] == 0
    assert out.schema["funding_missing"] == pl.Int8 and out.schema["funding_staleness_h"] == pl.Float64


def test_open_interest_log_changes_and_limits() -> None:
    oi = open_interest(
        [
            (D - 28 * H, 800.0, "5m"),
            (D, 1000.0, "5m"),
            (D + H, 1100.0, "5m"),
            (D + 90 * M5 / 5, None, "5m"),  # null value: ignored
            (D + 28 * H, 1200.0, "5m"),
        ]
    )
    grid = [D, D + H, D + H + 45 * M5 / 5, D + 27 * H + M5, D + 28 * H, D + 74 * H, D + 77 * H]
    out = derivatives_features(bars(dict.fromkeys(grid, 1.0)), EMPTY_F, oi, EMPTY_M, D, D + 4 * 24 * H)
    at0, at1, at145, stale, at28, old, gone = rows_at(out, *grid)
    assert at0["oi_log_change_1h"] is None  # as of t - 1h the 800 row is 27 h old: beyond the 26 h limit
    assert at0["oi_log_change_1d"] == pytest.approx(math.log(1000 / 800))  # as of t - 1d it is 4 h old
    assert at1["oi_log_change_1h"] == pytest.approx(math.log(1.1)) and at1["oi_staleness_h"] == 0.0
    assert at145["oi_log_change_1h"] == pytest.approx(math.log(1.1)) and at145["oi_staleness_h"] == 0.75
    assert stale["oi_missing"] == 1 and stale["oi_log_change_1h"] is None
    assert stale["oi_staleness_h"] == pytest.approx(26 + 5 / 60)
    assert at28["oi_missing"] == 0 and at28["oi_log_change_1h"] == pytest.approx(math.log(12 / 11))  # 26 h: in
    assert old["oi_staleness_h"] == pytest.approx(46.0) and old["oi_missing"] == 1
    assert gone["oi_staleness_h"] is None and gone["oi_missing"] == 1  # older than the 2-day search horizon


def test_as_of_ties_prefer_latest_event_then_finest_period() -> None:
    at = D + H
    oi = pl.concat(
        [
            open_interest([(at, 5000.0, "1h")]),
            open_interest([(at, 6000.0, "5m")]).with_columns(ts_event=pl.lit(at - H, dtype=pl.Datetime("us", "UTC"))),
            open_interest([(at, 7000.0, "5m")]),  # latest ts_event
            open_interest([(D, 1000.0, "5m")]),
        ]
    )
    out = derivatives_features(bars({at: 1.0}), EMPTY_F, oi, EMPTY_M, D, D + 24 * H)
    assert out["oi_log_change_1h"][0] == pytest.approx(math.log(7.0))
    same_event = pl.concat([open_interest([(at, 5000.0, "1h")]), open_interest([(D, 1000.0, "5m")])])
    same_event = pl.concat(
        [
            same_event,
            open_interest([(at, 6000.0, "5m")]).with_columns(ts_event=pl.lit(at - H, pl.Datetime("us", "UTC"))),
        ]
    )
    out = derivatives_features(bars({at: 1.0}), EMPTY_F, same_event, EMPTY_M, D, D + 24 * H)
    assert out["oi_log_change_1h"][0] == pytest.approx(math.log(6.0))  # same ts_event: the 5m row


def test_ratios_each_from_its_latest_positive_row() -> None:
    m = metrics(
        [
            {
                "at": D,
                "long_short_account_ratio": 2.0,
                "top_long_short_position_ratio": 1.5,
                "taker_buy_sell_ratio": 1.2,
            },
            {"at": D + H, "long_short_account_ratio": 2.5, "taker_buy_sell_ratio": 0.0},
        ]
    )
    eth = metrics([{"at": D, "long_short_account_ratio": 3.0}], symbol="ETHUSDT")
    b = pl.concat([bars({D + H: 1.0, D + 2.5 * H: 1.0}), bars({D + H: 1.0}, symbol="ETHUSDT")])
    out = derivatives_features(b, EMPTY_F, EMPTY_OI, pl.concat([m, eth]), D, D + 24 * H)
    btc = out.filter(pl.col("symbol") == "BTCUSDT")
    fresh, late = rows_at(btc, D + H, D + 2.5 * H)
    assert fresh["log_long_short_ratio"] == pytest.approx(math.log(2.5))
    assert fresh["log_top_position_ratio"] == pytest.approx(math.log(1.5))  # null at D + 1h: the D row
    assert fresh["log_taker_ratio"] == pytest.approx(math.log(1.2))  # 0.0 is not positive: skipped
    assert fresh["ratios_staleness_h"] == 1.0 and fresh["ratios_missing"] == 0  # the taker row's age
    assert late["log_long_short_ratio"] == pytest.approx(math.log(2.5))
    assert late["log_top_position_ratio"] is None and late["log_taker_ratio"] is None  # 2.5 h > 2 h
    assert late["ratios_staleness_h"] == 2.5 and late["ratios_missing"] == 1
    (e,) = rows_at(out.filter(pl.col("symbol") == "ETHUSDT"), D + H)
    assert e["ratios_staleness_h"] == 1.0 and e["ratios_missing"] == 0 and e["log_taker_ratio"] is None


def test_basis_reported_then_perp_vs_spot_fallback() -> None:
    m = metrics(
        [
            {"at": D, "basis_rate": 0.001, "annualized_basis_rate": 0.9},
            {"at": D + 0.5 * H, "basis_rate": 0.002},
        ]
    )
    t_stale, t_nospot = D + 2.5 * H + M5, D + 2.5 * H + 2 * M5
    perp = bars({D: 101.0, D + H: 101.0, t_stale: 101.0, t_nospot: 99.0})
    spot = bars({D: 1.0, t_stale: 100.0}, market="spot")
    out = derivatives_features(pl.concat([perp, spot]), EMPTY_F, EMPTY_OI, m, D, D + 24 * H)
    r0, r1, fb, none = rows_at(out, D, D + H, t_stale, t_nospot)
    assert (r0["basis_rate"], r0["basis_annualized"], r0["basis_reported"]) == (0.001, 0.9, 1)
    assert r1["basis_rate"] == 0.002 and r1["basis_annualized"] == pytest.approx(0.002 * 1095)
    assert fb["basis_reported"] == 0 and fb["basis_missing"] == 0  # the reported row is 2 h 5 m old
    assert fb["basis_rate"] == pytest.approx(0.01) and fb["basis_annualized"] == pytest.approx(0.01 * 1095)
    assert none["basis_rate"] is None and none["basis_missing"] == 1 and none["basis_reported"] == 0


def test_premium_to_mark_uses_the_perp_close_at_the_mark_instant() -> None:
    m = metrics([{"at": D, "mark_price": 100.0}, {"at": D + H, "mark_price": 102.0}])
    perp = bars({D: 101.0, D + 0.5 * H: 50.0, D + H + M5: 1.0, D + 3 * H + M5: 1.0})
    out = derivatives_features(perp, EMPTY_F, EMPTY_OI, m, D, D + 24 * H)
    half, gap, stale = rows_at(out, D + 0.5 * H, D + H + M5, D + 3 * H + M5)
    assert half["premium_to_mark"] == pytest.approx(math.log(101 / 100)) and half["mark_staleness_h"] == 0.5
    assert gap["premium_to_mark"] is None and gap["mark_missing"] == 0  # no perp bar closing at D + 1h
    assert stale["mark_missing"] == 1 and stale["mark_staleness_h"] == pytest.approx(2 + 5 / 60)


# ---------------------------------------------------------------- invariance on random data

T0 = D - timedelta(days=10)
START, END = D, D + timedelta(days=2)
SYMBOLS = ("BTCUSDT", "ETHUSDT")


def random_inputs(seed: int) -> dict[str, pl.DataFrame]:
    """Random bars, funding, open interest and metrics from T0 to END; BTC has long outages around START."""
    rng = np.random.default_rng(seed)
    n = (END - T0) // M5
    closes = [T0 + (i + 1) * M5 for i in range(n)]
    out: dict[str, list[pl.DataFrame]] = {"bars": [], "funding": [], "open_interest": [], "metrics": []}
    for sym in SYMBOLS:
        gappy = sym == "BTCUSDT"
        for market in ("perp", "spot"):
            px = 100 * np.exp(np.cumsum(rng.normal(0, 0.002, n)))
            keep = rng.random(n) > 0.03
            out["bars"].append(bars({t: float(p) for t, p, k in zip(closes, px, keep, strict=True) if k}, market, sym))
        settle = [T0 + 8 * H * k for k in range((END - T0) // (8 * H))]
        if gappy:  # one settlement before the look-back, then none until START + 8h
            settle = [t for t in settle if t <= T0 + 8 * H or t >= START + 8 * H]
        out["funding"].append(funding({t: float(rng.normal(1e-4, 1e-4)) for t in settle if rng.random() > 0.1}, sym))
        oi_rows, m_rows = [], []
        for t in closes:
            outage = gappy and START - timedelta(days=3.5) < t < START + 6 * H
            if outage or rng.random() < 0.03:
                continue
            oi_rows.append((t, None if rng.random() < 0.05 else float(rng.lognormal(20, 0.1)), "5m"))
            if t.minute == 0:
                oi_rows.append((t, float(rng.lognormal(20, 0.1)), "1h"))
            ratios = rng.lognormal(0, 0.3, 3)
            m_rows.append(
                {
                    "at": t,
                    "long_short_account_ratio": None if rng.random() < 0.1 else float(ratios[0]),
                    "top_long_short_position_ratio": float(ratios[1]) if rng.random() > 0.1 else -1.0,
                    "taker_buy_sell_ratio": None if rng.random() < 0.2 else float(ratios[2]),
                    "basis_rate": None if rng.random() < 0.3 else float(rng.normal(0, 1e-3)),
                    "annualized_basis_rate": None if rng.random() < 0.5 else float(rng.normal(0, 1)),
                    "mark_price": None if rng.random() < 0.2 else float(rng.lognormal(4.6, 0.01)),
                }
            )
        if gappy:  # metrics silent for 5 hours inside the range
            m_rows = [r for r in m_rows if not START + 30 * H < r["at"] < START + 35 * H]
        out["open_interest"].append(open_interest(oi_rows, sym))
        out["metrics"].append(metrics(m_rows, sym))
    return {k: pl.concat(v) for k, v in out.items()}


@pytest.fixture(scope="module")
def inputs() -> dict[str, pl.DataFrame]:
    return random_inputs(seed=11)


def compute(frames: dict[str, pl.DataFrame]) -> pl.DataFrame:
    return derivatives_features(
        frames["bars"], frames["funding"], frames["open_interest"], frames["metrics"], START, END
    )


def test_look_back_days_suffice(inputs: dict[str, pl.DataFrame]) -> None:
    full = compute(inputs)
    days = {"bars": "bars", "funding": "funding", "open_interest": "open_interest", "metrics": "derivatives_metrics"}
    cut = {
        k: f.filter(pl.col("ts_event") >= START - timedelta(days=DERIVATIVES_LOOKBACK_DAYS[days[k]]))
        for k, f in inputs.items()
    }
    assert_frame_equal(compute(cut), full, check_exact=False, rel_tol=1e-9, abs_tol=1e-9)
    assert full.height > 1000
    for col in ("funding_z_7d", "oi_log_change_1d", "log_taker_ratio", "premium_to_mark", "funding_change"):
        assert 0 < full[col].null_count() < full.height, col  # the random data reaches both cases
    assert full["basis_reported"].sum() > 0 and (full["basis_reported"] == 0).sum() > 0


@pytest.mark.parametrize(
    "cut",
    [
        START,
        START + 8 * H,  # funding settlement
        START + 16 * H + timedelta(seconds=1),
        START + timedelta(hours=13, minutes=37),
        START + 24 * H,  # midnight
        START + 32 * H,  # funding settlement inside the metrics outage
    ],
)
def test_no_look_ahead_truncation_and_future_perturbation(inputs: dict[str, pl.DataFrame], cut: datetime) -> None:
    full = compute(inputs).filter(pl.col("ts_event") <= cut)
    assert full.height > 0
    truncated = compute({k: f.filter(pl.col("ts_available") <= cut) for k, f in inputs.items()})
    assert_frame_equal(truncated, full, check_exact=True)
    future = pl.col("ts_available") > cut
    value_cols = {
        "bars": ["close"],
        "funding": ["funding_rate"],
        "open_interest": ["open_interest_value"],
        "metrics": ["long_short_account_ratio", "taker_buy_sell_ratio", "basis_rate", "mark_price"],
    }
    perturbed = {
        k: f.with_columns([pl.when(future).then(pl.col(c) * 1.7).otherwise(pl.col(c)).alias(c) for c in value_cols[k]])
        for k, f in inputs.items()
    }
    assert_frame_equal(compute(perturbed).filter(pl.col("ts_event") <= cut), full, check_exact=True)
