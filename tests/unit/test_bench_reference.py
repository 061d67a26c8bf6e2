"""Hand-computed cases for the bench's pandas reference of docs/features.md (market + derivatives)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from bench.reference_market import FEATURE_COLUMNS, reference_features
from quantmm_assets.core.schemas import DERIVATIVES_METRICS

T0 = pd.Timestamp("2024-01-08", tz="UTC")
M5 = pd.Timedelta("5min")
CS_K = 3 - 2 * math.sqrt(2)


def at(h: float = 0.0, m: int = 0) -> pd.Timestamp:
    """T0 + h hours + m minutes."""
    return T0 + pd.Timedelta(hours=h, minutes=m)


def _typed(df: pd.DataFrame) -> pd.DataFrame:
    for c in ("ts_event", "ts_available"):
        df[c] = pd.to_datetime(df[c], utc=True).astype("datetime64[us, UTC]")
    return df


def bars(spec: dict[pd.Timestamp, float | tuple], symbol: str = "BTCUSDT", market: str = "perp") -> pd.DataFrame:
    """Bars keyed by close time; a float c means o=c, h=1.01c, l=0.99c, v=1, else (o, h, l, c, v)."""
    rows = []
    for close_t, b in spec.items():
        o, h, lo, c, v = (b, 1.01 * b, 0.99 * b, b, 1.0) if isinstance(b, float | int) else b
        rows.append((symbol, market, close_t - M5, close_t, o, h, lo, c, v))
    cols = ["symbol", "market", "ts_event", "ts_available", "open", "high", "low", "close", "volume"]
    return _typed(pd.DataFrame(rows, columns=cols))


def funding(rows: list[tuple], delay_min: int = 0) -> pd.DataFrame:
    """Settlements ``(ts_event, rate)`` published ``delay_min`` later, or ``(ts_event, rate, ts_available)``."""
    delay = pd.Timedelta(minutes=delay_min)
    df = pd.DataFrame([("BTCUSDT", r[0], r[2] if len(r) > 2 else r[0] + delay, r[1], None) for r in rows])
    df.columns = ["symbol", "ts_event", "ts_available", "funding_rate", "mark_price"]
    return _typed(df)


def oi(rows: list[tuple[str, pd.Timestamp, pd.Timestamp, float]], symbol: str = "BTCUSDT") -> pd.DataFrame:
    df = pd.DataFrame([(symbol, p, e, a, 1.0, v) for p, e, a, v in rows])
    df.columns = ["symbol", "period", "ts_event", "ts_available", "open_interest", "open_interest_value"]
    return _typed(df)


METRIC_VALUES = DERIVATIVES_METRICS.value_columns


def metrics(rows: list[dict]) -> pd.DataFrame:
    """Hourly-period metrics rows; each dict gives ts_available (``a``) and some values (others null)."""
    recs = [
        {"symbol": "BTCUSDT", "period": "1h", "ts_event": r["a"] - pd.Timedelta("1h"), "ts_available": r["a"]}
        | {c: float(r.get(c, np.nan)) for c in METRIC_VALUES}
        for r in rows
    ]
    return _typed(pd.DataFrame(recs))


def feats(b: pd.DataFrame, f=None, o=None, m=None) -> pd.DataFrame:
    empty = pd.DataFrame()
    out = reference_features(b, empty if f is None else f, empty if o is None else o, empty if m is None else m)
    assert list(out.columns) == FEATURE_COLUMNS
    return out


def val(df: pd.DataFrame, t: pd.Timestamp, col: str, symbol: str = "BTCUSDT") -> float:
    hit = df.loc[(df["symbol"] == symbol) & (df["ts_event"] == t), col]
    assert len(hit) == 1, (t, col)
    return float(hit.iloc[0])


def close(a: float, b: float) -> bool:
    return not math.isnan(a) and abs(a - b) <= 1e-12 * max(1.0, abs(b))


def test_returns_rv_range_parkinson_amihud_with_a_missing_bar():
    out = feats(bars({at(m=5): 100.0, at(m=10): 110.0, at(m=20): 121.0}))  # the bar closing at 00:15 is missing
    assert list(out["ts_event"]) == [at(m=5), at(m=10), at(m=20)]
    assert (out["ts_available"] == out["ts_event"]).all() and str(out["ts_event"].dtype) == "datetime64[us, UTC]"
    assert math.isnan(val(out, at(m=5), "ret_5m")) and math.isnan(val(out, at(m=5), "rv_1h"))  # n = 0: null
    assert close(val(out, at(m=10), "ret_5m"), math.log(1.1))
    assert math.isnan(val(out, at(m=20), "ret_5m"))  # previous bar missing
    assert close(val(out, at(m=20), "ret_15m"), math.log(1.21))
    assert math.isnan(val(out, at(m=20), "ret_1h"))
    assert close(val(out, at(m=20), "rv_1h"), math.log(1.1))  # only non-null r1 terms
    assert close(val(out, at(m=20), "rv_1d"), math.log(1.1))
    assert close(val(out, at(m=20), "range_1h"), math.log(1.01 * 121 / (0.99 * 100)))
    hl = math.log(1.01 / 0.99)
    assert close(val(out, at(m=20), "parkinson_vol_1h"), hl / math.sqrt(4 * math.log(2)))
    assert close(val(out, at(m=20), "garman_klass_vol_1d"), math.sqrt(0.5) * hl)  # open == close
    assert close(val(out, at(m=20), "amihud_1h"), 1e6 * math.log(1.1) / 110.0)
    assert close(val(out, at(m=20), "log_dollar_volume_1h"), math.log(1 + 100 + 110 + 121))
    assert math.isnan(val(out, at(m=20), "log_volume_z_1d"))  # all volumes equal: std 0


def test_windows_are_right_closed_time_windows():
    spec = {at(m=5 * k): (10.0, 11.0, 9.0, 10.0, float(k)) for k in range(1, 14)}  # closes 00:05 ... 01:05
    out = feats(bars(spec))
    # (00:05, 01:05] holds the 12 bars closing 00:10 ... 01:05; the one closing at 00:05 is out
    assert close(val(out, at(m=65), "log_dollar_volume_1h"), math.log(1 + 10.0 * sum(range(2, 14))))
    assert close(val(out, at(m=60), "log_dollar_volume_1h"), math.log(1 + 10.0 * sum(range(1, 13))))


def test_corwin_schultz_two_bars_and_volume_z():
    spec = {at(m=5): (100.0, 102.0, 99.0, 101.0, 1.0), at(m=10): (101.0, 104.0, 100.0, 103.0, 3.0)}
    out = feats(bars(spec | {at(m=20): (103.0, 110.0, 90.0, 100.0, 1.0)}))  # 00:15 missing: no pair at 00:20
    beta = math.log(102 / 99) ** 2 + math.log(104 / 100) ** 2
    gamma = math.log(104 / 99) ** 2
    alpha = (math.sqrt(2 * beta) - math.sqrt(beta)) / CS_K - math.sqrt(gamma / CS_K)
    spread = max(0.0, 2 * (math.exp(alpha) - 1) / (1 + math.exp(alpha)))
    assert math.isnan(val(out, at(m=5), "cs_spread_1h"))  # no previous bar
    assert close(val(out, at(m=10), "cs_spread_1h"), spread) and close(val(out, at(m=10), "cs_spread_1d"), spread)
    assert close(val(out, at(m=20), "cs_spread_1h"), spread)  # mean over the non-null terms
    x = [math.log(2.0), math.log(4.0)]  # ln(1 + volume)
    assert close(val(out, at(m=10), "log_volume_z_1d"), (x[1] - sum(x) / 2) / float(np.std(x, ddof=1)))
    assert math.isnan(val(out, at(m=5), "log_volume_z_1d"))  # n < 2
    assert math.isnan(val(out, at(m=10), "roll_spread_1d"))


def test_roll_spread_from_lagged_return_covariance():
    closes = [100.0, 101.0, 100.0, 102.0, 100.0]
    out = feats(bars({at(m=5 * (i + 1)): c for i, c in enumerate(closes)}))
    r = np.diff(np.log(closes))
    cov = float(np.cov(r[1:], r[:-1], ddof=1)[0, 1])
    assert cov < 0
    assert close(val(out, at(m=25), "roll_spread_1d"), 2 * math.sqrt(-cov))


def test_funding_change_z_and_staleness_limit():
    settlements = [(at(16 - 7 * 24), 1e-2), (at(0), 1e-4), (at(8), 2e-4), (at(16), 4e-4)]
    grid = [at(-153), at(m=5), at(8, 5), at(16, 5), at(25), at(25, 5)]
    out = feats(bars(dict.fromkeys(grid, 100.0)), f=funding(settlements))
    assert math.isnan(val(out, at(-153), "funding_staleness_h")) and val(out, at(-153), "funding_missing") == 1.0
    assert close(val(out, at(m=5), "funding_rate"), 1e-4)
    assert close(val(out, at(m=5), "funding_change"), 1e-4 - 1e-2)
    assert math.isnan(val(out, at(m=5), "funding_z_7d"))  # n = 2 < 3
    # tau = 08:00: (tau - 7d, tau] holds the settlement 7d before 16:00 -> n = 3
    x = [1e-2, 1e-4, 2e-4]
    assert close(val(out, at(8, 5), "funding_z_7d"), (2e-4 - np.mean(x)) / float(np.std(x, ddof=1)))
    # tau = 16:00: the settlement at tau - 7d exactly is out of the window
    x = [1e-4, 2e-4, 4e-4]
    assert close(val(out, at(16, 5), "funding_z_7d"), (4e-4 - np.mean(x)) / float(np.std(x, ddof=1)))
    assert close(val(out, at(16, 5), "funding_change"), 2e-4)
    assert close(val(out, at(25), "funding_staleness_h"), 9.0) and val(out, at(25), "funding_missing") == 0.0
    assert close(val(out, at(25), "funding_rate"), 4e-4)
    assert close(val(out, at(25, 5), "funding_staleness_h"), 9 + 5 / 60)
    assert val(out, at(25, 5), "funding_missing") == 1.0
    for col in ("funding_rate", "funding_change", "funding_z_7d"):
        assert math.isnan(val(out, at(25, 5), col))


def test_funding_staleness_counts_from_ts_available():
    out = feats(bars({at(9): 1.0}), f=funding([(at(0), 1e-4)], delay_min=10))
    assert close(val(out, at(9), "funding_staleness_h"), 9 - 10 / 60) and val(out, at(9), "funding_missing") == 0.0


def test_open_interest_log_changes_ties_and_limit():
    rows = [
        ("1h", at(-25), at(-23), 500.0),  # V(t - 1d) for t = 01:00
        ("1h", at(-1), at(0), 1000.0),
        ("5m", at(0, 55), at(1), 1100.0),  # same ts_available as the next row, greater ts_event: wins
        ("1h", at(0), at(1), 9999.0),
        ("1h", at(1), at(2), 1200.0),  # same ts_available and ts_event as the next row, coarser: loses
        ("5m", at(1), at(2), 1300.0),
        ("5m", at(1, 10), at(2, 30), np.nan),  # null values are ignored
    ]
    grid = [at(1), at(2), at(2, 30), at(28), at(28, 5)]
    out = feats(bars(dict.fromkeys(grid, 100.0)), o=oi(rows))
    assert close(val(out, at(1), "oi_log_change_1h"), math.log(1100 / 1000))
    assert close(val(out, at(1), "oi_log_change_1d"), math.log(1100 / 500))
    assert close(val(out, at(2), "oi_log_change_1h"), math.log(1300 / 1100))
    assert close(val(out, at(2, 30), "oi_staleness_h"), 0.5) and val(out, at(2, 30), "oi_missing") == 0.0
    assert close(val(out, at(2, 30), "oi_log_change_1h"), math.log(1300 / 1100))
    assert close(val(out, at(28), "oi_staleness_h"), 26.0) and val(out, at(28), "oi_missing") == 0.0
    assert val(out, at(28), "oi_log_change_1d") == 0.0  # V(04:00) is the same 02:00 row
    assert val(out, at(28, 5), "oi_missing") == 1.0 and math.isnan(val(out, at(28, 5), "oi_log_change_1h"))
    assert close(val(out, at(28, 5), "oi_staleness_h"), 26 + 5 / 60)


def test_ratios_each_column_as_of_and_staleness_of_the_taker_row():
    m = metrics(
        [
            {
                "a": at(0),
                "long_short_account_ratio": 1.5,
                "top_long_short_position_ratio": 0.8,
                "taker_buy_sell_ratio": 1.2,
            },
            {"a": at(1), "long_short_account_ratio": 2.0},
            {"a": at(1, 15), "long_short_account_ratio": 0.0},  # not positive: ignored
        ]
    )
    out = feats(bars({at(1, 30): 1.0, at(2, 30): 1.0}), m=m)
    assert close(val(out, at(1, 30), "log_long_short_ratio"), math.log(2.0))
    assert close(val(out, at(1, 30), "log_top_position_ratio"), math.log(0.8))
    assert close(val(out, at(1, 30), "log_taker_ratio"), math.log(1.2))
    assert close(val(out, at(1, 30), "ratios_staleness_h"), 1.5) and val(out, at(1, 30), "ratios_missing") == 0.0
    assert math.isnan(val(out, at(2, 30), "log_taker_ratio")) and val(out, at(2, 30), "ratios_missing") == 1.0
    assert close(val(out, at(2, 30), "ratios_staleness_h"), 2.5)
    assert close(val(out, at(2, 30), "log_long_short_ratio"), math.log(2.0))  # its own row is 1.5 h old


def test_basis_reported_then_perp_spot_fallback_then_missing():
    perp = bars({at(1): 101.0, at(3): 102.0, at(3, 5): 103.0, at(4): 104.0})
    spot = bars({at(1): 100.0, at(3): 100.0, at(4): 100.0}, market="spot")
    m = metrics(
        [{"a": at(0, 30), "basis_rate": 0.002, "annualized_basis_rate": 0.7}, {"a": at(3, 30), "basis_rate": 0.003}]
    )
    out = feats(pd.concat([spot, perp], ignore_index=True), m=m)
    assert close(val(out, at(1), "basis_rate"), 0.002) and val(out, at(1), "basis_reported") == 1.0
    assert close(val(out, at(1), "basis_annualized"), 0.7)
    assert close(val(out, at(3), "basis_rate"), 0.02) and val(out, at(3), "basis_reported") == 0.0  # 2.5 h old
    assert close(val(out, at(3), "basis_annualized"), 0.02 * 1095)
    assert math.isnan(val(out, at(3, 5), "basis_rate")) and val(out, at(3, 5), "basis_missing") == 1.0  # no spot
    assert math.isnan(val(out, at(3, 5), "basis_annualized"))
    assert close(val(out, at(4), "basis_rate"), 0.003) and close(val(out, at(4), "basis_annualized"), 0.003 * 1095)
    assert val(out, at(4), "basis_missing") == 0.0


def test_premium_to_mark_uses_the_perp_close_at_tau():
    m = metrics([{"a": at(0, 30), "mark_price": 100.0}, {"a": at(0, 50), "mark_price": 105.0}])
    perp = bars({at(0, 30): 101.0, at(1): 106.0, at(1, 40): 107.0, at(2, 55): 108.0})
    out = feats(perp, m=m)
    assert close(val(out, at(0, 30), "premium_to_mark"), math.log(1.01))
    assert close(val(out, at(0, 30), "mark_staleness_h"), 0.0)
    assert math.isnan(val(out, at(1), "premium_to_mark"))  # no perp bar closing at 00:50
    assert val(out, at(1), "mark_missing") == 0.0 and close(val(out, at(1), "mark_staleness_h"), 1 / 6)
    assert val(out, at(2, 55), "mark_missing") == 1.0 and close(val(out, at(2, 55), "mark_staleness_h"), 2 + 5 / 60)


def test_rows_sorted_per_symbol_and_empty_sources():
    b = pd.concat(
        [
            bars({at(1): 2.0, at(0, 5): 1.0}, symbol="ETHUSDT"),
            bars({at(0, 10): 1.0}),
            bars({at(0, 10): 1.0}, symbol="SOLUSDT", market="spot"),  # spot only: no rows
        ],
        ignore_index=True,
    )
    out = feats(b)
    assert list(out["symbol"]) == ["BTCUSDT", "ETHUSDT", "ETHUSDT"]
    assert list(out["ts_event"]) == [at(0, 10), at(0, 5), at(1)]
    for fam in ("funding", "oi", "ratios", "mark", "basis"):
        assert (out[f"{fam}_missing"] == 1.0).all()
    assert out[["funding_staleness_h", "oi_staleness_h", "ratios_staleness_h", "mark_staleness_h"]].isna().all().all()
    assert all(out[c].dtype == np.float64 for c in FEATURE_COLUMNS[3:])


def test_no_perp_bars_gives_an_empty_frame():
    out = feats(bars({at(1): 1.0}, market="spot"))
    assert len(out) == 0 and list(out.columns) == FEATURE_COLUMNS


def test_funding_z_is_null_for_runs_of_equal_rates():
    settlements = [(at(-8 * k), 1.2e-4) for k in range(40)]  # 21 equal settlements in each (tau - 7d, tau]
    out = feats(bars({e + pd.Timedelta("1h"): 1.0 for e, _ in settlements}), f=funding(settlements))
    assert (out["funding_change"].iloc[1:] == 0.0).all()
    assert out["funding_z_7d"].isna().all()  # std 0, though the sum-of-squares radicand is +-1e-24 at places


def test_search_horizon_a_row_that_old_counts_as_no_row():
    # funding 8 d, open interest and metrics 2 d: at (or beyond) the horizon there is no row, not a stale one
    t, near = at(8 * 24), at(8 * 24, -5)
    f = funding([(at(0), 1e-4)])
    o = oi([("1h", at(-1), at(8 * 24 - 48), 100.0)])
    m = metrics(
        [{"a": at(8 * 24 - 48), "long_short_account_ratio": 1.5, "taker_buy_sell_ratio": 1.2, "mark_price": 100.0}]
    )
    out = feats(bars({near: 100.0, t: 100.0}), f=f, o=o, m=m)
    for col in ("funding_staleness_h", "oi_staleness_h", "ratios_staleness_h", "mark_staleness_h"):
        assert math.isnan(val(out, t, col)), col
    for col in ("funding_missing", "oi_missing", "ratios_missing", "mark_missing"):
        assert val(out, t, col) == 1.0 and val(out, near, col) == 1.0, col
    assert close(val(out, near, "funding_staleness_h"), 8 * 24 - 5 / 60)  # just inside: found, but stale
    for col in ("oi_staleness_h", "ratios_staleness_h", "mark_staleness_h"):
        assert close(val(out, near, col), 48 - 5 / 60), col
    # the same as passing no source at all
    alone = feats(bars({near: 100.0, t: 100.0}))
    pd.testing.assert_frame_equal(out[out["ts_event"] == t], alone[alone["ts_event"] == t])


def test_funding_uses_only_settlements_published_by_tau_and_a_previous_one_in_its_window():
    settlements = [
        (at(-16), 1e-4),
        (at(-8), 2e-4),
        (at(0), 4e-4),
        (at(8), 8e-4, at(20)),  # published late, after the next settlement
        (at(16), 1e-4),
    ]
    out = feats(bars({at(16, 5): 1.0, at(20, 5): 1.0}), f=funding(settlements))
    # tau = 16:00 does not know the 08:00 settlement: previous = 00:00, terms = the four others
    assert close(val(out, at(16, 5), "funding_rate"), 1e-4)
    assert close(val(out, at(16, 5), "funding_change"), 1e-4 - 4e-4)
    x = [1e-4, 2e-4, 4e-4, 1e-4]
    assert close(val(out, at(16, 5), "funding_z_7d"), (1e-4 - np.mean(x)) / float(np.std(x, ddof=1)))
    # at 20:05 the latest published settlement is 08:00 (published 20:00); it knows the earlier ones only
    assert close(val(out, at(20, 5), "funding_rate"), 8e-4)
    assert close(val(out, at(20, 5), "funding_staleness_h"), 5 / 60)
    assert close(val(out, at(20, 5), "funding_change"), 8e-4 - 4e-4)
    x = [1e-4, 2e-4, 4e-4, 8e-4]
    assert close(val(out, at(20, 5), "funding_z_7d"), (8e-4 - np.mean(x)) / float(np.std(x, ddof=1)))
    # the previous settlement must lie in (tau - 7d, tau): exactly 7 d before is out, just inside is in
    week = 7 * 24
    out = feats(
        bars({at(week, 5): 1.0, at(2 * week, 5): 1.0}),
        f=funding([(at(0), 1e-4), (at(week), 3e-4), (at(2 * week - 1), 6e-4), (at(2 * week), 7e-4)]),
    )
    assert close(val(out, at(week, 5), "funding_rate"), 3e-4) and val(out, at(week, 5), "funding_missing") == 0.0
    assert math.isnan(val(out, at(week, 5), "funding_change"))
    assert close(val(out, at(2 * week, 5), "funding_change"), 1e-4)  # 7e-4 - 6e-4, an hour before


def test_mark_price_must_be_positive():
    m = metrics(
        [
            {"a": at(0, 30), "mark_price": 100.0},
            {"a": at(0, 50), "mark_price": 0.0},
            {"a": at(0, 55), "mark_price": -3.0},
            {"a": at(1), "long_short_account_ratio": 1.0},  # no mark price
            {"a": at(2, 50), "mark_price": 0.0},
        ]
    )
    perp = bars({at(0, 30): 101.0, at(0, 50): 102.0, at(0, 55): 103.0, at(1): 104.0, at(2, 55): 108.0})
    out = feats(perp, m=m)
    for t in (at(0, 50), at(0, 55), at(1)):  # the latest positive mark is the 00:30 row
        assert close(val(out, t, "premium_to_mark"), math.log(1.01)) and val(out, t, "mark_missing") == 0.0
    assert close(val(out, at(1), "mark_staleness_h"), 0.5)
    # at 02:55 the zero mark at 02:50 is no mark: the 00:30 row is 2 h 25 min old
    assert math.isnan(val(out, at(2, 55), "premium_to_mark")) and val(out, at(2, 55), "mark_missing") == 1.0
    assert close(val(out, at(2, 55), "mark_staleness_h"), 2 + 25 / 60)
