"""Market features on the perp 5m grid: returns, volatility, ranges, volume, illiquidity, spreads.

Pure polars (no Dagster, no I/O); the specification is ``docs/features.md`` ("Rows and time",
"Market features"). A feature row is ``(symbol, t)`` with ``t`` the close of a perp bar. Windows are the
time windows ``(t - W, t]`` over row times (``rolling_*_by`` on a per-symbol time key), lags are exact in
time (the row at exactly ``t - k * 5m``, found by binary search, null when that bar is missing), and every
aggregate is built from the sum and count of its non-null terms, so each row only uses bars closing at or
before ``t``.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import numpy as np
import polars as pl

BAR = timedelta(minutes=5)
BAR_US = 300_000_000
DAY_US = 86_400_000_000
_WINDOW_KEYS = {"1h": f"{3_600_000_000}i", "4h": f"{4 * 3_600_000_000}i", "1d": f"{DAY_US}i"}
MARKET_LOOKBACK_DAYS = 2
RETURN_LAGS: dict[str, int] = {"ret_5m": 1, "ret_15m": 3, "ret_1h": 12, "ret_4h": 48, "ret_1d": 288}
LN2 = math.log(2.0)
CS_K = 3.0 - 2.0 * math.sqrt(2.0)

MARKET_FEATURES: tuple[str, ...] = (
    *RETURN_LAGS,
    "rv_1h",
    "rv_4h",
    "rv_1d",
    "parkinson_vol_1h",
    "parkinson_vol_1d",
    "garman_klass_vol_1h",
    "garman_klass_vol_1d",
    "range_1h",
    "range_1d",
    "log_volume_z_1d",
    "log_dollar_volume_z_1d",
    "log_dollar_volume_1h",
    "amihud_1h",
    "amihud_1d",
    "cs_spread_1h",
    "cs_spread_1d",
    "roll_spread_1d",
)

# Window sums needed by the features: term column -> windows.
_SUMMED: dict[str, tuple[str, ...]] = {
    "r2": ("1h", "4h", "1d"),
    "pk": ("1h", "1d"),
    "gk": ("1h", "1d"),
    "lv": ("1d",),
    "lv_sq": ("1d",),
    "ldv": ("1d",),
    "ldv_sq": ("1d",),
    "dv": ("1h",),
    "amihud": ("1h", "1d"),
    "cs": ("1h", "1d"),
    "roll_x": ("1d",),
    "roll_y": ("1d",),
    "roll_xy": ("1d",),
}


GRID_SCHEMA = {"symbol": pl.Utf8, "ts_event": pl.Datetime("us", "UTC"), "ts_available": pl.Datetime("us", "UTC")}


def perp_bars(bars: pl.DataFrame, lo: datetime, end: datetime) -> pl.LazyFrame:
    """Return perp bars closing in ``(lo, end)`` as ``symbol, t`` (close time) and OHLCV, sorted."""
    t = pl.col("ts_event") + BAR
    return (
        bars.lazy()
        .filter((pl.col("market") == "perp") & (t > lo) & (t < end))
        .select("symbol", t.alias("t"), "open", "high", "low", "close", "volume")
        .sort("symbol", "t")
    )


def perp_grid(bars: pl.DataFrame, start: datetime, end: datetime) -> pl.DataFrame:
    """Return the feature rows ``(symbol, ts_event = t, ts_available = t)`` for perp bars closing in [start, end)."""
    return (
        perp_bars(bars, start - BAR, end)
        .filter(pl.col("t") >= start)
        .select("symbol", pl.col("t").alias("ts_event"), pl.col("t").alias("ts_available"))
        .collect()
    )


def sequence_key(symbol: pl.Series, t: pl.Series, reach: timedelta = timedelta(days=2)) -> np.ndarray:
    """Return an increasing int64 key (microseconds) for rows sorted by symbol, t; symbols lie far apart.

    Windows and lags shorter than ``reach`` never cross from one symbol to another on this key:
    consecutive symbols are separated by the whole time span plus ``reach``.
    """
    t_us = t.dt.epoch("us").to_numpy()
    t0 = int(t_us.min())
    span = int(t_us.max()) - t0 + reach // timedelta(microseconds=1)
    rank = symbol.rank("dense").to_numpy().astype(np.int64) - 1
    return t_us - t0 + rank * span


def lag_values(key: np.ndarray, values: np.ndarray, k: int) -> pl.Series:
    """Return the value of the row at exactly ``key - k * 5m`` for every row (null when that bar is missing)."""
    target = key - k * BAR_US
    idx = np.minimum(np.searchsorted(key, target), len(key) - 1)
    return pl.Series(np.where(key[idx] == target, values[idx], np.nan), nan_to_null=True)


def wsum(col: str, window: str) -> pl.Expr:
    """Return the sum of the non-null terms of ``col`` over ``(t - window, t]``."""
    return pl.col(col).fill_null(0.0).rolling_sum_by("key", _WINDOW_KEYS[window], closed="right")


def wcount(col: str, window: str) -> pl.Expr:
    """Return the number of non-null terms of ``col`` over ``(t - window, t]``."""
    return pl.col(col).is_not_null().cast(pl.Float64).rolling_sum_by("key", _WINDOW_KEYS[window], closed="right")


def wmean(col: str, window: str) -> pl.Expr:
    """Return ``sum / n`` of a window (null when ``n = 0``)."""
    n = pl.col(f"n_{col}_{window}")
    return pl.when(n > 0).then(pl.col(f"s_{col}_{window}") / n)


def std_from_sums(s: pl.Expr, sq: pl.Expr, n: pl.Expr) -> pl.Expr:
    """Return the sample std ``sqrt((sq - s^2 / n) / (n - 1))`` (null when ``n < 2``, round-off clipped at 0)."""
    return pl.when(n >= 2).then(((sq - s * s / n) / (n - 1)).clip(lower_bound=0.0).sqrt())


def zscore(col: str, window: str) -> pl.Expr:
    """Return ``(x_t - mean_W) / std_W`` with ``x = col`` and squares in ``{col}_sq`` (null when std is null or 0).

    The std is 0 exactly when every term of the window is equal (``max == min``): the sum formula can leave a
    round-off radicand there, which must not become a z-score.
    """
    s, n = pl.col(f"s_{col}_{window}"), pl.col(f"n_{col}_{window}")
    sd = std_from_sums(s, pl.col(f"s_{col}_sq_{window}"), n)
    constant = pl.col(f"max_{col}_{window}") == pl.col(f"min_{col}_{window}")
    return pl.when((sd > 0) & ~constant).then((pl.col(col) - s / n) / sd)


def _terms(lf: pl.LazyFrame) -> pl.LazyFrame:
    """Add the per-row terms of every window aggregate (null where a needed lagged bar is missing)."""
    hl = (pl.col("high") / pl.col("low")).log()
    co = (pl.col("close") / pl.col("open")).log()
    hl_prev = (pl.col("high_l1") / pl.col("low_l1")).log()
    beta = hl.pow(2) + hl_prev.pow(2)
    gamma = (pl.max_horizontal("high", "high_l1") / pl.min_horizontal("low", "low_l1")).log().pow(2)
    alpha = ((2.0 * beta).sqrt() - beta.sqrt()) / CS_K - (gamma / CS_K).sqrt()
    cs = (2.0 * (alpha.exp() - 1.0) / (1.0 + alpha.exp())).clip(lower_bound=0.0)
    dollar = pl.col("volume") * pl.col("close")
    r1, r1_prev = pl.col("r1"), pl.col("r1_prev")
    both = r1.is_not_null() & r1_prev.is_not_null()
    return lf.with_columns(
        r1=(pl.col("close") / pl.col("close_l1")).log().fill_nan(None),
        r1_prev=(pl.col("close_l1") / pl.col("close_l2")).log().fill_nan(None),
    ).with_columns(
        r2=r1.pow(2),
        pk=(hl.pow(2) / (4.0 * LN2)).fill_nan(None),
        gk=(0.5 * hl.pow(2) - (2.0 * LN2 - 1.0) * co.pow(2)).fill_nan(None),
        lv=pl.col("volume").log1p().fill_nan(None),
        ldv=dollar.log1p().fill_nan(None),
        dv=dollar.fill_nan(None),
        amihud=(r1.abs() / pl.max_horizontal(dollar, pl.lit(1.0))).fill_nan(None),
        cs=pl.when(pl.col("high_l1").is_not_null()).then(cs).fill_nan(None),
        roll_x=pl.when(both).then(r1),
        roll_y=pl.when(both).then(r1_prev),
        roll_xy=pl.when(both).then(r1 * r1_prev),
    )


def market_features(bars: pl.DataFrame, start: datetime, end: datetime) -> pl.DataFrame:
    """Return ``symbol, ts_event, ts_available`` and ``MARKET_FEATURES`` for perp bars closing in [start, end)."""
    lo = start - timedelta(days=MARKET_LOOKBACK_DAYS)
    base = perp_bars(bars, lo, end).collect()
    if base.is_empty():
        return pl.DataFrame(schema={**GRID_SCHEMA, **dict.fromkeys(MARKET_FEATURES, pl.Float64)})
    key = sequence_key(base["symbol"], base["t"])
    close, high, low = (base[c].to_numpy() for c in ("close", "high", "low"))
    lags = {f"close_l{k}": lag_values(key, close, k) for k in (2, *RETURN_LAGS.values())}
    lf = base.with_columns(
        pl.Series("key", key),
        high_l1=lag_values(key, high, 1),
        low_l1=lag_values(key, low, 1),
        **lags,
    ).lazy()
    lf = _terms(lf).with_columns(lv_sq=pl.col("lv").pow(2), ldv_sq=pl.col("ldv").pow(2))
    sums = [wsum(c, w).alias(f"s_{c}_{w}") for c, ws in _SUMMED.items() for w in ws]
    counts = [wcount(c, w).alias(f"n_{c}_{w}") for c, ws in _SUMMED.items() for w in ws if not c.endswith("_sq")]
    extremes = [
        *[pl.col("high").rolling_max_by("key", _WINDOW_KEYS[w], closed="right").alias(f"hi_{w}") for w in ("1h", "1d")],
        *[pl.col("low").rolling_min_by("key", _WINDOW_KEYS[w], closed="right").alias(f"lo_{w}") for w in ("1h", "1d")],
        *[
            pl.col(c).rolling_max_by("key", _WINDOW_KEYS["1d"], closed="right").alias(f"max_{c}_1d")
            for c in ("lv", "ldv")
        ],
        *[
            pl.col(c).rolling_min_by("key", _WINDOW_KEYS["1d"], closed="right").alias(f"min_{c}_1d")
            for c in ("lv", "ldv")
        ],
    ]
    lf = lf.with_columns(*sums, *counts, *extremes).filter(pl.col("t") >= start)
    n_roll = pl.col("n_roll_xy_1d")
    cov = pl.when(n_roll >= 2).then(
        (pl.col("s_roll_xy_1d") - pl.col("s_roll_x_1d") * pl.col("s_roll_y_1d") / n_roll) / (n_roll - 1)
    )
    feats = {
        **{name: (pl.col("close") / pl.col(f"close_l{k}")).log() for name, k in RETURN_LAGS.items()},
        **{f"rv_{w}": pl.when(pl.col(f"n_r2_{w}") > 0).then(pl.col(f"s_r2_{w}").sqrt()) for w in ("1h", "4h", "1d")},
        **{f"parkinson_vol_{w}": wmean("pk", w).sqrt() for w in ("1h", "1d")},
        **{f"garman_klass_vol_{w}": wmean("gk", w).clip(lower_bound=0.0).sqrt() for w in ("1h", "1d")},
        **{f"range_{w}": (pl.col(f"hi_{w}") / pl.col(f"lo_{w}")).log() for w in ("1h", "1d")},
        "log_volume_z_1d": zscore("lv", "1d"),
        "log_dollar_volume_z_1d": zscore("ldv", "1d"),
        "log_dollar_volume_1h": pl.when(pl.col("n_dv_1h") > 0).then(pl.col("s_dv_1h").log1p()),
        **{f"amihud_{w}": 1e6 * wmean("amihud", w) for w in ("1h", "1d")},
        **{f"cs_spread_{w}": wmean("cs", w) for w in ("1h", "1d")},
        "roll_spread_1d": 2.0 * (-cov).clip(lower_bound=0.0).sqrt(),
    }
    return (
        lf.select(
            "symbol",
            pl.col("t").alias("ts_event"),
            pl.col("t").alias("ts_available"),
            *[feats[name].cast(pl.Float64).fill_nan(None).alias(name) for name in MARKET_FEATURES],
        )
        .sort("symbol", "ts_event")
        .collect()
    )
