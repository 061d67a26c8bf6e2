"""Seeded synthetic crypto market: the latent sentiment, per-symbol paths and 5m spot and perp bars.

Pure numpy/polars (no Dagster, no I/O). Every random draw comes from a generator seeded by
``(seed, stream, key, day_index)`` with ``day_index`` counted from the origin, and every recursion
(GARCH, AR/OU filters, cumulative sums, trailing windows) is causal. So the path generated for ``n``
days is the exact prefix of the path generated for any ``m > n`` days: a window fetched alone equals
the same window cut out of a longer fetch (tests prove it).

Market model, per symbol ``i`` and 5m bar ``j`` in hour ``k(j)``::

    r_ij = beta_i * m_j + e_ij + (SIGNAL_BETA / sqrt(12)) * s_i[k(j) - 1] * sigma_ij
    m_j  = sigma_m * season_j * sqrt(g_m[k]) * t_j         common market factor
    e_ij = sigma_i * season_j * sqrt(g_i[k]) * t'_ij       idiosyncratic part

``t`` are Student-t(4) innovations scaled to unit variance (fat tails); ``g`` is an hourly GARCH(1,1)
variance ratio driven by the hour's aggregated innovation (volatility clustering); ``season`` is an
intraday/weekday profile (US afternoon peak, Asian night trough, quieter weekends) shared by volume.

**The planted text signal.** ``s_i`` is a latent per-symbol sentiment, an AR(1) on the hourly grid
(``SENTIMENT_PHI``, unit stationary variance; see :func:`sentiment_path`). The sentiment of hour ``k``
adds a drift of ``SIGNAL_BETA * s_i[k]`` conditional standard deviations to the return of hour ``k+1``
(and, through the persistence of ``s``, a decaying amount to later hours). ``s`` is never an input of
any other market quantity: volume, basis, funding, open interest and the ratios see it only through the
returns themselves. ``text`` tilts the word choice of posts and comments about symbol ``i`` during hour
``k`` by ``s_i[k]``: text at ``t`` predicts returns after ``t``.

Derivatives: perp = spot * exp(premium), the premium a mean-reverting OU around a small positive mean
plus a term in the trailing 24h return; mark = spot * exp(EMA of the premium). The path also carries
open interest and the positioning ratios; ``derivatives`` cuts funding, open interest and
derivatives metrics out of it, and ``macro`` generates the (independent) macro series.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import polars as pl
from scipy.signal import lfilter

from quantmm_resources.sources.synthetic.base import SOURCE, GrowCache, day_rng, parse_origin, ts_series

DEFAULT_ORIGIN = "2024-12-01"
DEFAULT_SYMBOLS = ("BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT", "XRPUSDT")
BARS_PER_HOUR = 12
BARS_PER_DAY = 288
BAR = timedelta(minutes=5)

# The planted signal (documented in docs/synthetic_sample.md).
SENTIMENT_PHI = 0.85  # hourly AR(1) coefficient of the latent sentiment
SIGNAL_BETA = 0.07  # next-hour drift, in conditional hourly standard deviations, per unit of sentiment

T_DF = 4.0
GARCH_ALPHA, GARCH_BETA, GARCH_CAP = 0.06, 0.92, 25.0
MARKET_DAILY_VOL = 0.025


@dataclass(frozen=True)
class SymbolParams:
    """Level and scale of one symbol at the origin."""

    price: float
    beta: float  # loading on the market factor
    idio_daily_vol: float
    tick: float
    lot: float
    perp_usd_per_day: float
    spot_usd_per_day: float
    oi_usd: float
    long_short: float  # typical all-accounts long/short ratio


SYMBOL_PARAMS: dict[str, SymbolParams] = {
    "BTCUSDT": SymbolParams(90_000.0, 1.00, 0.010, 0.1, 0.001, 15e9, 2.0e9, 7.0e9, 1.5),
    "ETHUSDT": SymbolParams(3_300.0, 1.20, 0.020, 0.01, 0.001, 9e9, 1.2e9, 6.0e9, 2.0),
    "BNBUSDT": SymbolParams(700.0, 0.80, 0.020, 0.01, 0.01, 4e8, 2.5e8, 7e8, 1.8),
    "SOLUSDT": SymbolParams(190.0, 1.40, 0.030, 0.01, 0.01, 2.5e9, 6e8, 2.5e9, 2.6),
    "XRPUSDT": SymbolParams(2.1, 1.10, 0.035, 0.0001, 0.1, 2.0e9, 8e8, 2.0e9, 2.2),
    "DOGEUSDT": SymbolParams(0.38, 1.40, 0.035, 0.00001, 1.0, 1.5e9, 4e8, 1.5e9, 2.4),
    "ADAUSDT": SymbolParams(1.0, 1.30, 0.030, 0.0001, 1.0, 8e8, 2.5e8, 8e8, 2.5),
    "TRXUSDT": SymbolParams(0.20, 0.60, 0.025, 0.00001, 1.0, 3e8, 1.5e8, 3e8, 1.6),
    "LINKUSDT": SymbolParams(20.0, 1.30, 0.030, 0.001, 0.01, 6e8, 1.5e8, 6e8, 2.3),
    "AVAXUSDT": SymbolParams(45.0, 1.40, 0.030, 0.001, 0.01, 5e8, 1.2e8, 5e8, 2.3),
}
FALLBACK_PARAMS = SymbolParams(10.0, 1.2, 0.04, 0.001, 0.1, 2e8, 5e7, 2e8, 2.0)


_SENTIMENT = GrowCache(64)
_FACTOR = GrowCache(8)
_SYMBOL = GrowCache(24)


def clear_caches() -> None:
    """Forget every generated path (tests use it to prove window invariance)."""
    for cache in (_SENTIMENT, _FACTOR, _SYMBOL):
        cache.clear()


def _ar1(x: np.ndarray, phi: float) -> np.ndarray:
    """Return y with y[0] = x[0], y[t] = phi * y[t-1] + x[t] (causal, prefix-invariant)."""
    return lfilter([1.0], [1.0, -phi], x)


def _stationary_ar1(eta: np.ndarray, phi: float) -> np.ndarray:
    """Return a unit-variance AR(1) started in its stationary law from N(0,1) shocks."""
    x = np.sqrt(1.0 - phi**2) * eta
    x[0] = eta[0]
    return _ar1(x, phi)


def _trailing_sum(x: np.ndarray, n: int) -> np.ndarray:
    """Return the causal sum of the last ``n`` values (fewer at the start)."""
    c = np.cumsum(x)
    out = c.copy()
    out[n:] -= c[:-n]
    return out


def sentiment_path(seed: int, symbol: str, n_days: int) -> np.ndarray:
    """Return the latent hourly sentiment ``s`` of ``symbol`` for at least ``n_days`` days."""

    def build(n: int) -> np.ndarray:
        eta = np.concatenate([day_rng(seed, "sentiment", symbol, d).standard_normal(24) for d in range(n)])
        return _stationary_ar1(eta, SENTIMENT_PHI)

    return _SENTIMENT.get((seed, symbol), n_days, build)


def season_profile(n_days: int, origin: datetime) -> np.ndarray:
    """Return the intraday x weekday activity multiplier of every 5m bar (mean square ~1 on weekdays)."""
    hour = (np.arange(BARS_PER_DAY) + 0.5) / BARS_PER_HOUR
    intraday = 1.0 + 0.3 * np.cos(2 * np.pi * (hour - 15.0) / 24.0)
    intraday /= np.sqrt(np.mean(intraday**2))
    weekday = (origin.weekday() + np.arange(n_days)) % 7
    day_factor = np.where(weekday >= 5, 0.75, 1.0)
    return (day_factor[:, None] * intraday[None, :]).ravel()


def _garch_ratio(hourly_u2: np.ndarray) -> np.ndarray:
    """Return the GARCH(1,1) variance ratio g[k] (mean ~1) from squared unit innovations of hours < k."""
    omega = 1.0 - GARCH_ALPHA - GARCH_BETA
    g = np.empty(len(hourly_u2))
    gk = 1.0
    for k, u2 in enumerate(hourly_u2.tolist()):
        g[k] = gk
        gk = min(omega + (GARCH_ALPHA * u2 + GARCH_BETA) * gk, GARCH_CAP)
    return g


def _t_draws(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.standard_t(T_DF, n) / np.sqrt(T_DF / (T_DF - 2.0))


def _garch_scale(t: np.ndarray, season: np.ndarray) -> np.ndarray:
    """Return the per-bar GARCH standard-deviation multiplier sqrt(g[k(j)])."""
    num = (season * t).reshape(-1, BARS_PER_HOUR).sum(axis=1)
    den = np.sqrt((season**2).reshape(-1, BARS_PER_HOUR).sum(axis=1))
    g = _garch_ratio((num / den) ** 2)
    return np.repeat(np.sqrt(g), BARS_PER_HOUR)


@dataclass(frozen=True)
class FactorPath:
    """The common market factor: standardized innovations and their GARCH scale."""

    t: np.ndarray
    scale: np.ndarray


def market_factor(seed: int, origin: datetime, n_days: int) -> FactorPath:
    """Return the common market factor for at least ``n_days`` days."""

    def build(n: int) -> FactorPath:
        t = np.concatenate([_t_draws(day_rng(seed, "market", "factor", d), BARS_PER_DAY) for d in range(n)])
        return FactorPath(t, _garch_scale(t, season_profile(n, origin)))

    return _FACTOR.get((seed, origin), n_days, build)


@dataclass(frozen=True)
class SymbolPath:
    """Every per-bar quantity of one symbol (arrays of length n_days * 288)."""

    log_return: np.ndarray  # spot close-to-close log return (the perp adds the premium change)
    spot_open: np.ndarray
    spot_high: np.ndarray
    spot_low: np.ndarray
    spot_close: np.ndarray
    spot_volume: np.ndarray
    spot_trades: np.ndarray
    perp_open: np.ndarray
    perp_high: np.ndarray
    perp_low: np.ndarray
    perp_close: np.ndarray
    perp_volume: np.ndarray
    perp_trades: np.ndarray
    mark: np.ndarray
    open_interest: np.ndarray
    ls_account: np.ndarray
    top_ls_account: np.ndarray
    top_ls_position: np.ndarray
    taker_ratio: np.ndarray

    def __len__(self) -> int:
        return len(self.spot_close)


def _round_to(x: np.ndarray, step: float) -> np.ndarray:
    return np.round(np.round(x / step) * step, 10)


def symbol_path(
    seed: int, symbol: str, n_days: int, origin: datetime | None = None, signal_beta: float = SIGNAL_BETA
) -> SymbolPath:
    """Return the full path of ``symbol`` for at least ``n_days`` days from ``origin``."""
    origin = origin or parse_origin(DEFAULT_ORIGIN)
    key = (seed, symbol, origin, signal_beta)
    return _SYMBOL.get(key, n_days, lambda n: _build_symbol(seed, symbol, n, origin, signal_beta))


def _build_symbol(seed: int, symbol: str, n_days: int, origin: datetime, signal_beta: float) -> SymbolPath:
    p = SYMBOL_PARAMS.get(symbol, FALLBACK_PARAMS)
    n = n_days * BARS_PER_DAY
    t_idio = np.empty(n)
    z = np.empty((12, n))  # independent N(0,1) streams, fixed order
    for d in range(n_days):
        rng = day_rng(seed, "symbol", symbol, d)
        sl = slice(d * BARS_PER_DAY, (d + 1) * BARS_PER_DAY)
        t_idio[sl] = _t_draws(rng, BARS_PER_DAY)
        z[:, sl] = rng.standard_normal((12, BARS_PER_DAY))
    season = season_profile(n_days, origin)
    factor = market_factor(seed, origin, n_days)
    sd_m = MARKET_DAILY_VOL / np.sqrt(BARS_PER_DAY) * season * factor.scale[:n]
    sd_e = p.idio_daily_vol / np.sqrt(BARS_PER_DAY) * season * _garch_scale(t_idio, season)
    sigma = np.sqrt((p.beta * sd_m) ** 2 + sd_e**2)
    s = sentiment_path(seed, symbol, n_days)[: n_days * 24]
    s_prev_hour = np.repeat(np.concatenate([[0.0], s[:-1]]), BARS_PER_HOUR)
    drift = signal_beta / np.sqrt(BARS_PER_HOUR) * s_prev_hour * sigma
    r = p.beta * sd_m * factor.t[:n] + sd_e * t_idio + drift
    zstd = r / sigma  # standardized bar return (drives volume and taker flow)

    log_close = np.log(p.price) + np.cumsum(r)
    r24 = _trailing_sum(r, BARS_PER_DAY)
    r4h = _trailing_sum(r, 4 * BARS_PER_HOUR)
    spot_close = _round_to(np.exp(log_close), p.tick)
    spot_open = np.concatenate([[_round_to(np.array([p.price]), p.tick)[0]], spot_close[:-1]])
    wick = 0.6 * sigma
    spot_high = _round_to(np.maximum(spot_open, spot_close) * np.exp(wick * np.abs(z[0])), p.tick)
    spot_low = _round_to(np.minimum(spot_open, spot_close) * np.exp(-wick * np.abs(z[1])), p.tick)

    # Premium: OU (6h half-life, sd 4 bp) around +2 bp, plus 1% of the trailing 24h return, plus noise.
    phi_b = 0.5 ** (1.0 / 72.0)
    ou = 0.0004 * _stationary_ar1(z[2], phi_b)
    premium = 0.0002 + ou + 0.01 * r24 + 0.00005 * z[3]
    perp_close = _round_to(spot_close * np.exp(premium), p.tick)
    perp_open = np.concatenate([_round_to(spot_open[:1] * np.exp(premium[:1]), p.tick), perp_close[:-1]])
    perp_high = np.maximum(np.maximum(perp_open, perp_close), _round_to(spot_high * np.exp(premium), p.tick))
    perp_low = np.minimum(np.minimum(perp_open, perp_close), _round_to(spot_low * np.exp(premium), p.tick))
    ema = lfilter([1 - 0.8], [1.0, -0.8], premium, zi=[0.8 * premium[0]])[0]
    mark = np.round(spot_close * np.exp(ema), 8)

    # Activity: seasonality, volatility regime, the bar's surprise and a persistent AR noise.
    nominal = np.sqrt(((p.beta * MARKET_DAILY_VOL) ** 2 + p.idio_daily_vol**2) / BARS_PER_DAY)
    regime = sigma / (season * nominal)  # the GARCH state
    act_noise = 0.3 * _stationary_ar1(z[4], 0.95)
    activity = season**1.5 * regime**0.8 * np.exp(0.35 * (np.abs(zstd) - 0.8) + act_noise - 0.1)
    vwap_spot = (spot_open + spot_high + spot_low + spot_close) / 4
    vwap_perp = (perp_open + perp_high + perp_low + perp_close) / 4
    spot_usd = p.spot_usd_per_day / BARS_PER_DAY * activity * np.exp(0.2 * z[5] - 0.02)
    perp_usd = p.perp_usd_per_day / BARS_PER_DAY * activity * np.exp(0.1 * z[5] - 0.005)
    spot_volume = _round_to(spot_usd / vwap_spot, p.lot)
    perp_volume = _round_to(perp_usd / vwap_perp, p.lot)
    trade_noise = np.exp(0.1 * z[6])
    spot_trades = np.maximum(np.rint(spot_volume * vwap_spot / 1_000.0 * trade_noise), 1).astype(np.int64)
    perp_trades = np.maximum(np.rint(perp_volume * vwap_perp / 4_000.0 * trade_noise), 1).astype(np.int64)

    # Open interest (base units): slow OU level + trend (log price over its 3-day EMA) + recent activity.
    act_1h = np.log(_trailing_sum(activity, BARS_PER_HOUR) / BARS_PER_HOUR)
    w = 1.0 - np.exp(-1.0 / (3 * BARS_PER_DAY))
    trend = log_close - lfilter([w], [1.0, w - 1.0], log_close, zi=[(1.0 - w) * log_close[0]])[0]
    oi_log = 0.08 * _stationary_ar1(z[7], 0.5 ** (1.0 / (5 * BARS_PER_DAY))) + trend + 0.05 * act_1h
    open_interest = _round_to(p.oi_usd / p.price * np.exp(oi_log), p.lot)

    # Positioning ratios: slow OU moods; retail leans against the 4h move, top traders with it.
    mood = 0.15 * _stationary_ar1(z[8], 0.5 ** (1.0 / 144.0))
    ls_account = np.round(p.long_short * np.exp(mood - 1.5 * r4h), 4)
    top_ls_account = np.round(0.85 * p.long_short * np.exp(0.7 * mood - 1.0 * r4h + 0.03 * z[9]), 4)
    top_ls_position = np.round(1.1 * np.exp(0.5 * mood + 1.0 * r4h + 0.05 * z[10]), 4)
    taker_ratio = np.round(np.exp(0.25 * np.clip(zstd, -6, 6) + 0.12 * z[11]), 4)
    return SymbolPath(
        r,
        spot_open,
        spot_high,
        spot_low,
        spot_close,
        spot_volume,
        spot_trades,
        perp_open,
        perp_high,
        perp_low,
        perp_close,
        perp_volume,
        perp_trades,
        mark,
        open_interest,
        ls_account,
        top_ls_account,
        top_ls_position,
        taker_ratio,
    )


def bar_range(origin: datetime, start: datetime, end: datetime) -> tuple[int, int]:
    """Return the bar indices [i0, i1) whose open lies in [start, end) (never before the origin)."""
    step = BAR.total_seconds()
    i0 = max(0, int(np.ceil((start - origin).total_seconds() / step)))
    i1 = max(0, int(np.ceil((end - origin).total_seconds() / step)))
    return i0, max(i0, i1)


def path_through(seed: int, symbol: str, origin: datetime, i1: int, signal_beta: float = SIGNAL_BETA) -> SymbolPath:
    """Return a path of ``symbol`` covering at least the bars before index ``i1``."""
    return symbol_path(seed, symbol, -(-i1 // BARS_PER_DAY), origin, signal_beta)


def bars_frame(
    seed: int,
    symbol: str,
    market: str,
    origin: datetime,
    start: datetime,
    end: datetime,
    signal_beta: float = SIGNAL_BETA,
) -> pl.DataFrame:
    """Return the 5m ``market`` ("spot" | "perp") bars of ``symbol`` opening in [start, end)."""
    i0, i1 = bar_range(origin, start, end)
    path = path_through(seed, symbol, origin, i1, signal_beta)
    pre = "spot_" if market == "spot" else "perp_"
    cols = {c: getattr(path, pre + c)[i0:i1] for c in ("open", "high", "low", "close", "volume", "trades")}
    vwap = (cols["open"] + cols["high"] + cols["low"] + cols["close"]) / 4
    return pl.DataFrame(
        {
            "symbol": symbol,
            "market": market,
            "ts_event": ts_series(origin, np.arange(i0, i1), BAR),
            "open": cols["open"],
            "high": cols["high"],
            "low": cols["low"],
            "close": cols["close"],
            "volume": cols["volume"],
            "quote_volume": np.round(cols["volume"] * vwap, 4),
            "trades": cols["trades"],
            "source": SOURCE,
        }
    ).with_columns(pl.col("symbol", "market", "source").cast(pl.Utf8))
