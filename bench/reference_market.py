"""The bench's floor: a one-pass, in-memory, vectorized pandas reference of the market and derivatives
features (docs/features.md, "Rows and time", "Market features", "Derivatives features") over the whole
date range at once. Independent of the polars build; the bench compares both within 1e-9.

Rows are the perp bars (t = bar close); windows ``(t - W, t]`` are pandas time-based rolling windows
(``closed="right"``) over a per-symbol DatetimeIndex, aggregating sums and counts of non-null terms;
exact-time lags are ``np.searchsorted`` look-ups. The only Python loops run over symbols and columns.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench.reference_derivatives import (
    DERIVATIVES_COLUMNS,
    Source,
    derivatives_for_symbol,
    exact_lag,
    zscore,
)
from quantmm_assets.core.features.matrix import KEY_COLUMNS, MARKET_FEATURES
from quantmm_assets.core.schemas import DERIVATIVES_METRICS

BAR_US = 5 * 60 * 1_000_000
LN2 = float(np.log(2.0))
CS_K = 3.0 - 2.0 * np.sqrt(2.0)

MARKET_COLUMNS = list(MARKET_FEATURES)  # the names are the contract's; the formulas are this file's
FEATURE_COLUMNS = [*KEY_COLUMNS, *MARKET_COLUMNS, *DERIVATIVES_COLUMNS]
RET_LAGS = {"ret_5m": 1, "ret_15m": 3, "ret_1h": 12, "ret_4h": 48, "ret_1d": 288}

_SOURCE_COLUMNS = {
    "funding": ["symbol", "ts_event", "ts_available", "funding_rate", "mark_price"],
    "open_interest": ["symbol", "period", "ts_event", "ts_available", "open_interest", "open_interest_value"],
    "metrics": ["symbol", "period", "ts_event", "ts_available", *DERIVATIVES_METRICS.value_columns],
}


_EMPTY_DTYPES = {"symbol": "object", "period": "object", "ts_event": "datetime64[us, UTC]"}
_EMPTY_DTYPES["ts_available"] = _EMPTY_DTYPES["ts_event"]


def _with_columns(frame: pd.DataFrame | None, columns: list[str]) -> pd.DataFrame:
    """The frame with every column the reference reads (an absent or empty source becomes empty columns)."""
    if frame is None or len(frame) == 0:
        return pd.DataFrame({c: pd.Series([], dtype=_EMPTY_DTYPES.get(c, "float64")) for c in columns})
    missing = [c for c in columns if c not in frame.columns]
    return frame.assign(**dict.fromkeys(missing, np.nan)) if missing else frame


def _values(columns: list[str]) -> list[str]:
    """The value columns among a source's columns."""
    return [c for c in columns if c not in ("symbol", "period", "ts_event", "ts_available")]


def _rolling(idx: pd.DatetimeIndex, terms: dict[str, np.ndarray], window: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Sums and counts of the non-null terms over the time window ``(t - window, t]``."""
    roll = pd.DataFrame(terms, index=idx).rolling(window)
    return roll.sum(), roll.count()


def corwin_schultz(h: np.ndarray, lo: np.ndarray, h1: np.ndarray, l1: np.ndarray) -> np.ndarray:
    """Corwin-Schultz two-bar spread from this bar (h, lo) and the previous one (h1, l1); NaN without it."""
    beta = np.log(h / lo) ** 2 + np.log(h1 / l1) ** 2
    gamma = np.log(np.maximum(h, h1) / np.minimum(lo, l1)) ** 2
    alpha = (np.sqrt(2.0 * beta) - np.sqrt(beta)) / CS_K - np.sqrt(gamma / CS_K)
    e = np.exp(alpha)
    return np.maximum(0.0, 2.0 * (e - 1.0) / (1.0 + e))  # np.maximum propagates NaN


def market_for_symbol(
    t: np.ndarray, o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray, v: np.ndarray
) -> dict[str, np.ndarray]:
    """All market columns for one symbol's perp bars (``t`` = close times in us, sorted, unique; OHLCV)."""
    out: dict[str, np.ndarray] = {}
    for name, k in RET_LAGS.items():
        out[name] = np.log(c / exact_lag(t, c, t - k * BAR_US))
    r1 = out["ret_5m"]
    r1_prev = exact_lag(t, r1, t - BAR_US)  # r1 of the row at t - 5m
    h1, l1 = exact_lag(t, h, t - BAR_US), exact_lag(t, lo, t - BAR_US)
    hl2 = np.log(h / lo) ** 2
    dollar = v * c
    both = ~np.isnan(r1) & ~np.isnan(r1_prev)
    rx, ry = np.where(both, r1, np.nan), np.where(both, r1_prev, np.nan)
    x_v, x_dv = np.log1p(v), np.log1p(dollar)
    terms = {
        "r1sq": r1 * r1,
        "pk": hl2 / (4.0 * LN2),
        "gk": 0.5 * hl2 - (2.0 * LN2 - 1.0) * np.log(c / o) ** 2,
        "dollar": dollar,
        "ami": np.abs(r1) / np.maximum(dollar, 1.0),
        "cs": corwin_schultz(h, lo, h1, l1),
    }
    day_terms = {"xv": x_v, "xv2": x_v * x_v, "xdv": x_dv, "xdv2": x_dv * x_dv, "rx": rx, "ry": ry, "rxy": rx * ry}
    idx = pd.DatetimeIndex(t.astype("datetime64[us]"))
    hl = pd.DataFrame({"high": h, "low": lo}, index=idx)
    s4, _ = _rolling(idx, {"r1sq": terms["r1sq"]}, "4h")
    out["rv_4h"] = np.sqrt(np.maximum(0.0, s4["r1sq"].to_numpy()))  # no negative round-off residue of a sum
    for w in ("1h", "1d"):
        s, n = _rolling(idx, terms | day_terms if w == "1d" else terms, w)
        mean = {k: s[k].to_numpy() / n[k].to_numpy() for k in terms}  # n >= 1 where the sum is non-null
        out[f"rv_{w}"] = np.sqrt(np.maximum(0.0, s["r1sq"].to_numpy()))  # np.maximum propagates NaN
        out[f"parkinson_vol_{w}"] = np.sqrt(np.maximum(0.0, mean["pk"]))
        out[f"garman_klass_vol_{w}"] = np.sqrt(np.maximum(0.0, mean["gk"]))  # np.maximum propagates NaN
        roll_hl = hl.rolling(w)
        out[f"range_{w}"] = np.log(roll_hl.max()["high"].to_numpy() / roll_hl.min()["low"].to_numpy())
        out[f"amihud_{w}"] = 1e6 * mean["ami"]
        out[f"cs_spread_{w}"] = mean["cs"]
        if w == "1h":
            out["log_dollar_volume_1h"] = np.log1p(s["dollar"].to_numpy())
            continue
        roll_x = pd.DataFrame({"xv": x_v, "xdv": x_dv}, index=idx).rolling(w)
        xmax, xmin = roll_x.max(), roll_x.min()  # max == min: a constant window, std exactly 0
        for name, x, k in (("log_volume_z_1d", x_v, "xv"), ("log_dollar_volume_z_1d", x_dv, "xdv")):
            constant = xmax[k].to_numpy() == xmin[k].to_numpy()
            out[name] = zscore(x, s[k].to_numpy(), s[f"{k}2"].to_numpy(), n[k].to_numpy().astype(float), constant)
        nr = n["rx"].to_numpy().astype(np.float64)
        sx, sy, sxy = s["rx"].to_numpy(), s["ry"].to_numpy(), s["rxy"].to_numpy()
        with np.errstate(divide="ignore", invalid="ignore"):
            cov = np.where(nr >= 2, (sxy - sx * sy / nr) / (nr - 1), np.nan)
        out["roll_spread_1d"] = 2.0 * np.sqrt(np.maximum(0.0, -cov))
    return {k: out[k] for k in MARKET_COLUMNS}


@np.errstate(divide="ignore", invalid="ignore")  # non-positive prices give NaN (null) terms, not warnings
def reference_features(
    bars: pd.DataFrame, funding: pd.DataFrame, open_interest: pd.DataFrame, metrics: pd.DataFrame
) -> pd.DataFrame:
    """Market + derivatives features, one row per perp bar (t = close), sorted by symbol and t; float64."""
    sources = {
        name: Source(_with_columns(frame, _SOURCE_COLUMNS[name]), _values(_SOURCE_COLUMNS[name]))
        for name, frame in (("funding", funding), ("open_interest", open_interest), ("metrics", metrics))
    }
    bar = Source(bars, ["open", "high", "low", "close", "volume"])
    bar_t = bar.event + BAR_US  # t = bar close = ts_event + 5m
    is_perp = (bars["market"] == "perp").to_numpy(dtype=bool, na_value=False)
    is_spot = (bars["market"] == "spot").to_numpy(dtype=bool, na_value=False)
    names, parts, times = [], [], []
    for symbol in sorted(bar.symbols):  # a loop over the (few) symbols
        rows = bar.rows(symbol)
        perp = rows[is_perp[rows]]
        if len(perp) == 0:
            continue
        perp = perp[np.argsort(bar_t[perp], kind="stable")]
        spot = rows[is_spot[rows]]
        spot = spot[np.argsort(bar_t[spot], kind="stable")]
        t = bar_t[perp]
        o, h, lo, c, v = (bar.values[k][perp] for k in ("open", "high", "low", "close", "volume"))
        cols = market_for_symbol(t, o, h, lo, c, v)
        spot_close = exact_lag(bar_t[spot], bar.values["close"][spot], t)
        cols |= derivatives_for_symbol(
            symbol, t, c, spot_close, sources["funding"], sources["open_interest"], sources["metrics"]
        )
        names.append(np.full(len(t), symbol, dtype=object))
        parts.append(cols)
        times.append(t)
    t_all = np.concatenate(times) if times else np.empty(0, dtype=np.int64)
    ts = pd.DatetimeIndex(t_all.astype("datetime64[us]")).tz_localize("UTC")
    out = {
        "symbol": np.concatenate(names) if names else np.empty(0, dtype=object),
        "ts_event": ts,
        "ts_available": ts,
    }
    for col in FEATURE_COLUMNS[3:]:  # a loop over the columns
        out[col] = np.concatenate([p[col] for p in parts]) if parts else np.empty(0)
    return pd.DataFrame(out)
