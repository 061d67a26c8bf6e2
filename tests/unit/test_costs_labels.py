from __future__ import annotations

import hashlib
import math
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from quantmm_assets.core.costs import CostConfig, round_trip_cost
from quantmm_assets.core.labels import HORIZONS, LABEL_SCHEMA, labels_multi_horizon

BAR = timedelta(minutes=5)
T0 = datetime(2025, 1, 1, tzinfo=UTC)  # close time of the first bar
CLOSES = [100.0, 101.0, 99.0, 102.0, 103.0, 104.0]  # bars closing at T0, T0+5m, ..., T0+25m
SMALL = {"10m": 2, "15m": 3}


def bars(closes: list[float | None], symbol: str = "X", market: str = "perp") -> pl.DataFrame:
    """Bars closing at T0 + i * 5m (``None`` = the bar is missing)."""
    rows = [(symbol, market, T0 + (i - 1) * BAR, c, c, c, c, 1.0) for i, c in enumerate(closes) if c is not None]
    return pl.DataFrame(
        rows,
        schema={
            "symbol": pl.Utf8,
            "market": pl.Utf8,
            "ts_event": pl.Datetime("us", "UTC"),
            "open": pl.Float64,
            "high": pl.Float64,
            "low": pl.Float64,
            "close": pl.Float64,
            "volume": pl.Float64,
        },
        orient="row",
    )


def no_spread() -> pl.DataFrame:
    return pl.DataFrame(schema={"symbol": pl.Utf8, "ts_event": pl.Datetime("us", "UTC"), "cs_spread_1d": pl.Float64})


def label(df: pl.DataFrame, i: int, horizon: str) -> dict:
    rows = df.filter((pl.col("ts_event") == T0 + i * BAR) & (pl.col("horizon") == horizon)).to_dicts()
    assert len(rows) == 1
    return rows[0]


def ln(a: float, b: float) -> float:
    return math.log(a / b)


def test_round_trip_cost_formula_and_null_spread():
    cfg = CostConfig()  # 4 bps fee + 1 bp slippage per side, impact 0.5, turnover 1, no holding cost
    df = pl.DataFrame({"s": [None, 0.002, float("nan")]}, schema={"s": pl.Float64})
    got = df.select(round_trip_cost(pl.col("s"), timedelta(days=1), cfg)).to_series().to_list()
    assert got == pytest.approx([1e-3, 2 * (5e-4 + 0.5 * 0.002), 1e-3], abs=1e-15)
    cfg2 = CostConfig(fee_bps=2.0, slippage_bps=0.0, impact_coef=1.0, turnover_coef=0.5, horizon_coef_bps_per_day=10)
    got2 = df.select(round_trip_cost(pl.col("s"), timedelta(days=7), cfg2)).to_series().to_list()
    assert got2 == pytest.approx([2e-4 + 7e-3, 0.5 * 2 * (2e-4 + 0.002) + 7e-3, 2e-4 + 7e-3], abs=1e-15)


def test_cost_config_params_and_hash():
    a, b = CostConfig(), CostConfig(fee_bps=5.0)
    params = a.as_params()
    assert (
        params["cost.fee_bps"] == 4.0 and params["cost.impact_coef"] == 0.5 and params["cost.hash"] == a.config_hash()
    )
    assert all(not isinstance(v, dict) for v in params.values())
    assert len(a.config_hash()) == 12 and a.config_hash() == CostConfig().config_hash() != b.config_hash()
    with pytest.raises(ValueError, match="fee_bps"):
        CostConfig(fee_bps=-1.0)


def test_config_hash_is_the_sorted_json_digest_of_the_fields_as_floats():
    # The rule: the first 12 hex digits of sha256 over the fields as floats in JSON with sorted keys. Keyword order
    # at construction is not observable (asdict always yields field order: fee_bps, slippage_bps, impact_coef, ...),
    # but that field order is not sorted, so the digest pinned here from the hand-written sorted text is what
    # tells a hash without sort_keys apart.
    text = (
        '{"fee_bps": 4.0, "horizon_coef_bps_per_day": 0.0, "impact_coef": 0.5, "slippage_bps": 1.0, '
        '"turnover_coef": 1.0}'
    )
    assert CostConfig().config_hash() == hashlib.sha256(text.encode()).hexdigest()[:12]
    assert CostConfig(fee_bps=4, turnover_coef=1).config_hash() == CostConfig().config_hash()  # ints hash as floats
    a = CostConfig(slippage_bps=2.0, fee_bps=3.0)
    assert a.config_hash() == CostConfig(fee_bps=3.0, slippage_bps=2.0).config_hash() != CostConfig().config_hash()
    assert CostConfig(horizon_coef_bps_per_day=0.0).config_hash() == CostConfig().config_hash()  # 0 is allowed


def test_six_bars_hand_checked():
    c = CLOSES
    out = labels_multi_horizon(bars(c), no_spread(), T0, T0 + 6 * BAR, CostConfig(), SMALL)
    assert out.schema == pl.Schema(LABEL_SCHEMA)
    assert out.height == 12 and out["horizon"].to_list()[:2] == ["10m", "15m"]
    r = label(out, 0, "10m")
    assert r["ret"] == pytest.approx(ln(c[2], c[0]), abs=1e-15)
    assert r["rv"] == pytest.approx(math.sqrt(ln(c[1], c[0]) ** 2 + ln(c[2], c[1]) ** 2), abs=1e-15)
    assert r["ts_available"] == T0 + 2 * BAR and r["complete"]
    r = label(out, 2, "15m")
    assert r["ret"] == pytest.approx(ln(c[5], c[2]), abs=1e-15)
    rv = math.sqrt(sum(ln(c[j], c[j - 1]) ** 2 for j in (3, 4, 5)))
    assert r["rv"] == pytest.approx(rv, abs=1e-15) and r["complete"]
    # Past the data end: never invented.
    for i, h in [(4, "10m"), (5, "10m"), (3, "15m"), (4, "15m"), (5, "15m")]:
        r = label(out, i, h)
        assert r["ret"] is None and r["rv"] is None and not r["complete"]
    assert out.filter(pl.col("complete")).height == 7


def test_missing_bar_nulls_ret_and_rv_and_invents_no_row():
    c = [*CLOSES]
    c[2] = None  # bar closing at T0 + 10m missing
    out = labels_multi_horizon(bars(c), no_spread(), T0, T0 + 6 * BAR, CostConfig(), SMALL)
    assert out.filter(pl.col("ts_event") == T0 + 2 * BAR).is_empty()
    r = label(out, 0, "10m")  # the bar at t + h is missing
    assert r["ret"] is None and r["rv"] is None and not r["complete"]
    r = label(out, 0, "15m")  # the end bar exists, one bar inside the window does not
    assert r["ret"] == pytest.approx(ln(c[3], c[0]), abs=1e-15) and r["rv"] is None and not r["complete"]
    r = label(out, 1, "10m")
    assert r["ret"] == pytest.approx(ln(c[3], c[1]), abs=1e-15) and r["rv"] is None
    r = label(out, 3, "10m")  # window (t, t+h] clear of the gap
    assert r["rv"] == pytest.approx(math.sqrt(ln(c[4], c[3]) ** 2 + ln(c[5], c[4]) ** 2), abs=1e-15)
    assert r["complete"]


def test_spot_rows_ignored_and_look_ahead_used_but_not_emitted():
    perp = bars(CLOSES)
    spot = bars([50.0, 80.0, 20.0, 70.0, 10.0, 90.0, 95.0], market="spot")  # other closes, one more bar
    only_spot = bars([1.0, 2.0, 3.0], symbol="SPOTONLY", market="spot")
    mixed = pl.concat([spot, perp, only_spot])
    end = T0 + 3 * BAR  # rows at T0, T0+5m, T0+10m; the bars after are look-ahead
    a = labels_multi_horizon(mixed, no_spread(), T0, end, CostConfig(), SMALL)
    b = labels_multi_horizon(perp, no_spread(), T0, end, CostConfig(), SMALL)
    assert a.equals(b) and a["symbol"].unique().to_list() == ["X"]
    assert a["ts_event"].max() == T0 + 2 * BAR
    assert label(a, 2, "15m")["ret"] == pytest.approx(ln(CLOSES[5], CLOSES[2]), abs=1e-15)


def test_cost_from_config_with_and_without_spread_and_not_in_ret():
    spread = pl.DataFrame(
        {"symbol": ["X", "X"], "ts_event": [T0, T0 + BAR], "cs_spread_1d": [0.002, None]},
        schema={"symbol": pl.Utf8, "ts_event": pl.Datetime("us", "UTC"), "cs_spread_1d": pl.Float64},
    )
    cfg = CostConfig(horizon_coef_bps_per_day=288.0)  # 1 bp per 5m held: easy to check
    out = labels_multi_horizon(bars(CLOSES), spread, T0, T0 + 6 * BAR, cfg, SMALL)
    assert label(out, 0, "10m")["cost"] == pytest.approx(2 * (5e-4 + 0.5 * 0.002) + 2e-4, abs=1e-15)
    assert label(out, 0, "15m")["cost"] == pytest.approx(2 * (5e-4 + 0.5 * 0.002) + 3e-4, abs=1e-15)
    assert label(out, 1, "10m")["cost"] == pytest.approx(1e-3 + 2e-4, abs=1e-15)  # null spread
    assert label(out, 3, "15m")["cost"] == pytest.approx(1e-3 + 3e-4, abs=1e-15)  # no spread row
    free = labels_multi_horizon(bars(CLOSES), spread, T0, T0 + 6 * BAR, CostConfig(0, 0, 0, 0, 0), SMALL)
    assert free["ret"].equals(out["ret"]) and (free["cost"] == 0).all()  # the gross return is the label


def test_default_horizons_ts_available_and_lookahead():
    n = 2016 + 20
    closes = list(100 * np.exp(np.cumsum(np.full(n, 1e-4))))
    out = labels_multi_horizon(bars(closes), no_spread(), T0, T0 + 10 * BAR, CostConfig(), HORIZONS)
    assert out.height == 10 * 4 and out["horizon"].to_list()[:4] == ["1h", "4h", "1d", "7d"]
    for name, k in HORIZONS.items():
        r = label(out, 3, name)
        assert r["ts_available"] == T0 + 3 * BAR + k * BAR
        assert r["ret"] == pytest.approx(ln(closes[3 + k], closes[3]), rel=1e-12) and r["complete"]
        assert r["rv"] == pytest.approx(math.sqrt(k) * 1e-4, rel=1e-6)
    assert label(out, 3, "7d")["ts_available"] == T0 + 3 * BAR + timedelta(days=7)


def naive_labels(closes: dict[datetime, float], t: datetime, k: int) -> tuple[float | None, float | None]:
    """A row-by-row reference: the forward return and realized vol of k bars after t."""
    end = t + k * BAR
    ret = math.log(closes[end] / closes[t]) if end in closes else None
    window = [t + j * BAR for j in range(1, k + 1)]
    if not all(u in closes for u in window):
        return ret, None
    return ret, math.sqrt(sum(math.log(closes[u] / closes[u - BAR]) ** 2 for u in window))


def test_matches_a_row_by_row_reference_with_random_gaps():
    rng = np.random.default_rng(7)
    n = 400
    raw = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    closes = [float(c) if rng.random() > 0.03 else None for c in raw]
    start, end = T0 + 5 * BAR, T0 + 300 * BAR
    horizons = {"a": 3, "b": 12, "c": 40}
    out = labels_multi_horizon(
        pl.concat([bars(closes), bars(closes[::-1], symbol="Y")]), no_spread(), start, end, CostConfig(), horizons
    )
    for sym, series in (("X", closes), ("Y", closes[::-1])):
        by_t = {T0 + i * BAR: c for i, c in enumerate(series) if c is not None}
        rows = out.filter(pl.col("symbol") == sym)
        expected_rows = [t for t in sorted(by_t) if start <= t < end]
        assert rows.height == len(expected_rows) * len(horizons)
        for r in rows.iter_rows(named=True):
            ret, rv = naive_labels(by_t, r["ts_event"], horizons[r["horizon"]])
            assert (r["ret"] is None) == (ret is None) and (r["rv"] is None) == (rv is None)
            if ret is not None:
                assert r["ret"] == pytest.approx(ret, abs=1e-12)
            if rv is not None:
                assert r["rv"] == pytest.approx(rv, rel=1e-9)
            assert r["complete"] == (ret is not None and rv is not None)


def test_duplicate_bars_are_rejected():
    dup = pl.concat([bars(CLOSES), bars(CLOSES)])
    with pytest.raises(ValueError, match="duplicate perp bars"):
        labels_multi_horizon(dup, no_spread(), T0, T0 + 6 * BAR, CostConfig(), SMALL)
    spread = pl.DataFrame({"symbol": ["X", "X"], "ts_event": [T0, T0], "cs_spread_1d": [0.1, 0.2]}).with_columns(
        pl.col("ts_event").dt.replace_time_zone("UTC")
    )
    with pytest.raises(ValueError, match="spread: duplicate"):
        labels_multi_horizon(bars(CLOSES), spread, T0, T0 + 6 * BAR, CostConfig(), SMALL)


def test_cost_uses_the_rows_own_symbol_spread():
    """Two symbols, a spread only for Y at T0: X's cost is fee + slippage alone, Y's adds Y's impact."""
    spread = pl.DataFrame(
        {"symbol": ["Y"], "ts_event": [T0], "cs_spread_1d": [0.004]},
        schema={"symbol": pl.Utf8, "ts_event": pl.Datetime("us", "UTC"), "cs_spread_1d": pl.Float64},
    )
    both = pl.concat([bars(CLOSES, symbol="X"), bars(CLOSES, symbol="Y")])
    out = labels_multi_horizon(both, spread, T0, T0 + 6 * BAR, CostConfig(), SMALL)
    x, y = (out.filter((pl.col("symbol") == s) & (pl.col("ts_event") == T0)) for s in ("X", "Y"))
    assert x["cost"].to_list() == pytest.approx([1e-3, 1e-3], abs=1e-15)  # 2 x (4 + 1) bps, no impact
    assert y["cost"].to_list() == pytest.approx([5e-3, 5e-3], abs=1e-15)  # 2 x (5 bps + 0.5 x 0.004)
