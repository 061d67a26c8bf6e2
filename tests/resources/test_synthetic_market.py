"""The synthetic market: determinism, bar sanity, stylized facts, derivatives, the planted drift."""

from __future__ import annotations

from dataclasses import fields
from datetime import timedelta

import numpy as np
import pytest
from scipy.stats import kurtosis, spearmanr

from quantmm_resources.sources.synthetic import base as sb
from quantmm_resources.sources.synthetic import derivatives as sd
from quantmm_resources.sources.synthetic import macro as smac
from quantmm_resources.sources.synthetic import market as sm

SEED = 7
DAYS = 240
ORIGIN = sm.parse_origin(sm.DEFAULT_ORIGIN)
H = DAYS * 24


@pytest.fixture(scope="module")
def paths() -> dict[str, sm.SymbolPath]:
    return {s: sm.symbol_path(SEED, s, DAYS, ORIGIN) for s in sm.DEFAULT_SYMBOLS}


def _hourly_returns(close: np.ndarray) -> np.ndarray:
    """Return r[k] = log return of hour k+1 (close at the end of hour k+1 over the end of hour k)."""
    lc = np.log(close[sm.BARS_PER_HOUR - 1 :: sm.BARS_PER_HOUR])
    return np.diff(lc)[:H]


def test_path_is_a_prefix_of_any_longer_path() -> None:
    sm.clear_caches()
    short = sm.symbol_path(SEED, "ETHUSDT", 5, ORIGIN)
    short_s = sm.sentiment_path(SEED, "ETHUSDT", 5).copy()
    sm.clear_caches()
    long = sm.symbol_path(SEED, "ETHUSDT", 3 * sb.BLOCK_DAYS, ORIGIN)
    n = len(short)
    assert len(long) > n
    for f in fields(sm.SymbolPath):
        assert np.array_equal(getattr(short, f.name), getattr(long, f.name)[:n]), f.name
    assert np.array_equal(short_s, sm.sentiment_path(SEED, "ETHUSDT", 5)[: len(short_s)])


def test_seed_and_symbol_change_the_path() -> None:
    a = sm.symbol_path(SEED, "SOLUSDT", 5, ORIGIN).log_return
    assert not np.array_equal(a, sm.symbol_path(SEED + 1, "SOLUSDT", 5, ORIGIN).log_return[: len(a)])
    assert not np.array_equal(a, sm.symbol_path(SEED, "XRPUSDT", 5, ORIGIN).log_return[: len(a)])


@pytest.mark.parametrize("market", ["spot", "perp"])
def test_bars_are_consistent(paths: dict[str, sm.SymbolPath], market: str) -> None:
    for symbol in sm.DEFAULT_SYMBOLS:
        f = sm.bars_frame(SEED, symbol, market, ORIGIN, ORIGIN, ORIGIN + timedelta(days=DAYS))
        assert len(f) == DAYS * sm.BARS_PER_DAY
        o, h, lo, c = (f[x].to_numpy() for x in ("open", "high", "low", "close"))
        assert (lo <= np.minimum(o, c)).all() and (np.maximum(o, c) <= h).all() and (lo > 0).all()
        assert (f["volume"] >= 0).all() and (f["trades"] >= 1).all()
        ratio = f["quote_volume"].to_numpy() / (f["volume"].to_numpy() * c)
        assert np.nanmedian(ratio) == pytest.approx(1.0, abs=0.01)
        assert np.nanquantile(ratio, 0.999) < 1.05
        assert np.array_equal(o[1:], c[:-1])  # continuous: each bar opens at the previous close


def test_levels_and_daily_volatility(paths: dict[str, sm.SymbolPath]) -> None:
    for symbol, path in paths.items():
        assert path.spot_open[0] == pytest.approx(sm.SYMBOL_PARAMS[symbol].price, rel=1e-3)
        daily = np.diff(np.log(path.spot_close[sm.BARS_PER_DAY - 1 :: sm.BARS_PER_DAY][:DAYS]))
        assert 0.02 <= daily.std() <= 0.05, (symbol, daily.std())
    btc = paths["BTCUSDT"]
    assert 5e4 < btc.perp_volume[: 30 * sm.BARS_PER_DAY].sum() / 30 < 5e5  # BTC per day on the perp


def test_cross_asset_correlation(paths: dict[str, sm.SymbolPath]) -> None:
    btc, eth = (_hourly_returns(paths[s].perp_close) for s in ("BTCUSDT", "ETHUSDT"))
    assert np.corrcoef(btc, eth)[0, 1] > 0.5
    xrp = _hourly_returns(paths["XRPUSDT"].perp_close)
    assert 0.2 < np.corrcoef(btc, xrp)[0, 1] < np.corrcoef(btc, eth)[0, 1]


def test_fat_tails_and_volatility_clustering(paths: dict[str, sm.SymbolPath]) -> None:
    for path in paths.values():
        r5 = np.diff(np.log(path.perp_close))
        assert kurtosis(r5, fisher=False) > 5.0
        rh = _hourly_returns(path.perp_close)
        assert kurtosis(rh, fisher=False) > 3.5
        a = np.abs(rh)
        assert np.corrcoef(a[1:], a[:-1])[0, 1] > 0.05
        a5 = np.abs(r5)
        assert np.corrcoef(a5[288:], a5[:-288])[0, 1] > 0.02  # still clustered a day later


def test_intraday_seasonality(paths: dict[str, sm.SymbolPath]) -> None:
    hour = (np.arange(DAYS * sm.BARS_PER_DAY) % sm.BARS_PER_DAY) // sm.BARS_PER_HOUR
    path = paths["BTCUSDT"]
    vol = path.perp_volume[: len(hour)] * path.perp_close[: len(hour)]
    absr = np.abs(path.log_return[: len(hour)])
    us, asia = (hour >= 14) & (hour < 17), (hour >= 2) & (hour < 5)
    assert vol[us].mean() > 1.5 * vol[asia].mean()
    assert absr[us].mean() > 1.3 * absr[asia].mean()


def test_funding_tracks_the_premium(paths: dict[str, sm.SymbolPath]) -> None:
    for symbol, path in paths.items():
        f = sd.funding_frame(SEED, symbol, ORIGIN, ORIGIN, ORIGIN + timedelta(days=DAYS))
        assert len(f) == 3 * DAYS - 1  # every 8h, the first one 8h after the origin
        assert set(f["ts_event"].dt.hour().unique()) == set(sd.FUNDING_HOURS)
        assert (f["ts_event"].dt.minute() == 0).all()
        per = 8 * sm.BARS_PER_HOUR
        prem = (path.perp_close / path.spot_close - 1)[: len(f) * per].reshape(-1, per).mean(axis=1)
        rate = f["funding_rate"].to_numpy()
        assert np.corrcoef(rate, prem)[0, 1] > 0.99
        assert np.array_equal(np.sign(rate - sd.FUNDING_INTEREST), np.sign(np.round(prem, 8)))
        assert np.abs(rate).max() <= sd.FUNDING_CAP
        settle = (np.arange(1, len(f) + 1) * per) - 1
        assert np.abs(f["mark_price"].to_numpy() / path.perp_close[settle] - 1).max() < 0.005


def test_basis_is_small_and_mean_reverting(paths: dict[str, sm.SymbolPath]) -> None:
    for path in paths.values():
        prem = path.perp_close / path.spot_close - 1
        assert 0 < prem.mean() < 0.001 and prem.std() < 0.002
        hourly = prem[:: sm.BARS_PER_HOUR]
        assert np.corrcoef(hourly[24:], hourly[:-24])[0, 1] < 0.6


def test_open_interest_and_flows_follow_the_market(paths: dict[str, sm.SymbolPath]) -> None:
    for path in paths.values():
        r = np.diff(np.log(path.perp_close))
        assert np.corrcoef(np.log(path.taker_ratio[1:]), r)[0, 1] > 0.4
        oi = np.log(path.open_interest[sm.BARS_PER_DAY - 1 :: sm.BARS_PER_DAY][:DAYS])
        day_r = np.diff(np.log(path.perp_close[sm.BARS_PER_DAY - 1 :: sm.BARS_PER_DAY][:DAYS]))
        assert np.corrcoef(np.diff(oi), day_r)[0, 1] > 0.2
        act = np.log(path.perp_volume[: DAYS * 288].reshape(-1, 12).sum(axis=1))
        doi = np.diff(np.log(path.open_interest[11 : DAYS * 288 : 12]))
        assert np.corrcoef(doi, np.diff(act))[0, 1] > 0.1  # OI co-moves with activity
        assert (path.ls_account > 0).all() and (path.top_ls_position > 0).all()


def test_planted_drift_is_lagged_and_nowhere_else(paths: dict[str, sm.SymbolPath]) -> None:
    innov, nxt, same, other = [], [], [], []
    for symbol, path in paths.items():
        s = sm.sentiment_path(SEED, symbol, DAYS)[:H]
        r = _hourly_returns(path.perp_close)  # r[k] = return of hour k+1
        innov.append(s[1:] - sm.SENTIMENT_PHI * s[:-1])  # [i]: the news of hour i+1 ...
        nxt.append(r[1:H])  # ... first moves the return of hour i+2
        same.append(r[: H - 1])  # ... and not that of hour i+1, the hour it happens in
        prem = (path.perp_close / path.spot_close - 1)[sm.BARS_PER_HOUR * 2 - 1 :: sm.BARS_PER_HOUR][: H - 1]
        vol = path.perp_volume[sm.BARS_PER_HOUR * 2 - 1 :: sm.BARS_PER_HOUR][: H - 1]
        other.append(np.column_stack([prem, np.log(vol), path.ls_account[23::12][: H - 1]]))
    innov, nxt, same, other = map(np.concatenate, (innov, nxt, same, other))
    assert spearmanr(innov, nxt)[0] > 0.015
    assert abs(spearmanr(innov, same)[0]) < 0.02
    for j in range(other.shape[1]):
        assert abs(spearmanr(innov, other[:, j])[0]) < 0.02


def test_macro_is_weekday_random_walks() -> None:
    f = smac.macro_frame(
        SEED, ORIGIN, ORIGIN, ORIGIN + timedelta(days=400), {"vix": "A", "us10y": "B", "dollar_index": "C"}
    )
    assert (f["ts_event"].dt.weekday() <= 5).all()
    for sid, lo, hi in (("vix", 9, 60), ("us10y", 2.5, 6.0), ("dollar_index", 105, 150)):
        v = f.filter(f["series_id"] == sid)["value"].to_numpy()
        assert len(v) == np.busday_count(ORIGIN.date(), (ORIGIN + timedelta(days=400)).date()), sid
        assert lo < v.min() and v.max() < hi, sid
        assert np.abs(np.diff(v)).max() > 0
