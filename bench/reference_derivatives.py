"""Derivatives half of the bench's pandas reference (docs/features.md, "Derivatives features").

Every function works on one symbol's perp grid ``t`` (int64 microseconds since the epoch, UTC, sorted) and
that symbol's rows of a source; as-of look-ups are ``np.searchsorted`` over the source's deduplicated,
tie-broken ``ts_available``. A row whose age reaches its family's search horizon (look-back minus one day)
counts as no row. Everything is vectorized; the only loops run over columns.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from quantmm_assets.core.availability import PERIODS
from quantmm_assets.core.features.matrix import DERIVATIVES_FEATURES

US_PER_H = 3_600_000_000
US_PER_DAY = 24 * US_PER_H
FUNDING_LIMIT_US = 9 * US_PER_H
OI_LIMIT_US = 26 * US_PER_H
RATIOS_LIMIT_US = 2 * US_PER_H
BASIS_LIMIT_US = 2 * US_PER_H
MARK_LIMIT_US = 2 * US_PER_H
BASIS_PER_YEAR = 1095.0  # 3 funding intervals a day
FUNDING_WINDOW_US = 7 * US_PER_DAY  # funding z-score window and the reach of the previous settlement
# Look-backs in daily partitions (docs/features.md); a row (look-back - 1 day) old or older counts as no row.
LOOKBACK_DAYS = {"funding": 9, "open_interest": 3, "metrics": 3}
HORIZON_US = {name: (days - 1) * US_PER_DAY for name, days in LOOKBACK_DAYS.items()}

DERIVATIVES_COLUMNS = list(DERIVATIVES_FEATURES)  # the names are the contract's; the formulas are this file's

_COARSEST = 2**62  # coarser than any period, exact as a float64
_PERIOD_US = {label: int(d.total_seconds()) * 1_000_000 for label, d in PERIODS.items()}


def to_us(ts: pd.Series) -> np.ndarray:
    """Timestamps (tz-aware or naive UTC, any unit) as int64 microseconds since the epoch."""
    if len(ts) == 0:
        return np.empty(0, dtype=np.int64)
    ts = pd.to_datetime(ts, utc=True)
    return ts.dt.tz_localize(None).to_numpy().astype("datetime64[us]").view(np.int64)


def period_us(period: pd.Series) -> np.ndarray:
    """Periods of ``core.availability.PERIODS`` as microseconds; null or other periods rank as the coarsest."""
    us = period.astype(object).map(_PERIOD_US)
    return us.fillna(_COARSEST).to_numpy(dtype=np.float64).astype(np.int64) if len(us) else np.empty(0, np.int64)


class AsOf:
    """Source rows tie-broken per ``ts_available`` (greatest ``ts_event``, then finest period) for look-ups."""

    def __init__(self, rows: np.ndarray, avail: np.ndarray, event: np.ndarray, period: np.ndarray) -> None:
        order = np.lexsort((-period, event, avail))  # the last row of each ts_available is the winner
        a = avail[order]
        last = np.ones(len(a), dtype=bool)
        last[:-1] = a[:-1] != a[1:]
        self.rows = rows[order[last]]  # positions in the source
        self.avail = a[last]

    def lookup(
        self, q: np.ndarray, limit_us: int, horizon_us: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """For query times ``q``: (source position or 0, found, fresh = found and staleness <= limit, staleness_h).

        ``found``: there is a row with ``ts_available <= q`` younger than ``horizon_us`` (an older one is no row).
        """
        if len(self.avail) == 0:
            none = np.zeros(len(q), dtype=bool)
            return np.zeros(len(q), dtype=np.int64), none, none, _nan(len(q))
        i = np.searchsorted(self.avail, q, side="right") - 1
        ic = np.where(i >= 0, i, 0)
        age = q - self.avail[ic]
        found = (i >= 0) & (age < horizon_us)
        fresh = found & (age <= limit_us)
        return self.rows[ic], found, fresh, np.where(found, age / US_PER_H, np.nan)


class Source:
    """A source frame as numpy arrays: symbol codes, times in us, period ranks and float64 value columns."""

    def __init__(self, frame: pd.DataFrame, columns: list[str]) -> None:
        codes, labels = pd.factorize(frame["symbol"])
        self.codes = np.asarray(codes)
        self.symbols = {str(label): i for i, label in enumerate(labels)}
        self.avail = to_us(frame["ts_available"])
        self.event = to_us(frame["ts_event"])
        has_period = "period" in frame.columns
        self.period = period_us(frame["period"]) if has_period else np.zeros(len(frame), dtype=np.int64)
        self.values = {c: f64(frame, c) for c in columns}

    def rows(self, symbol: str) -> np.ndarray:
        """Positions of the symbol's rows."""
        return np.flatnonzero(self.codes == self.symbols.get(symbol, -2))

    def asof(self, symbol: str, column: str, positive: bool = False) -> AsOf:
        """As-of index over the symbol's rows where ``column`` is non-null (and positive)."""
        rows = self.rows(symbol)
        vals = self.values[column][rows]
        rows = rows[~np.isnan(vals) & (vals > 0)] if positive else rows[~np.isnan(vals)]
        return AsOf(rows, self.avail[rows], self.event[rows], self.period[rows])

    def take(self, column: str, pos: np.ndarray, fresh: np.ndarray) -> np.ndarray:
        """``column`` at source positions ``pos`` where ``fresh``, else NaN."""
        vals = self.values[column]
        return np.where(fresh, vals[pos], np.nan) if len(vals) else _nan(len(pos))


def _nan(n: int) -> np.ndarray:
    return np.full(n, np.nan)


def _flag(b: np.ndarray) -> np.ndarray:
    return b.astype(np.float64)


def f64(frame: pd.DataFrame, name: str) -> np.ndarray:
    """A column as float64 with NaN for nulls."""
    return pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def funding_per_settlement(ev: np.ndarray, av: np.ndarray, rate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per settlement tau (one symbol): ``funding_change`` and ``funding_z_7d`` from the settlements known by tau.

    The terms of tau are the settlements with ``ts_event`` in ``(tau - 7d, tau]`` and ``ts_available`` not
    later than tau's; its previous settlement is the one of them with the greatest ``ts_event`` before tau's
    (null when there is none). Pairs come from a merge on 7-day buckets of ``ts_event``: a term lies in its
    settlement's bucket or the one before.
    """
    n = len(ev)
    if n == 0:
        return _nan(0), _nan(0)
    own = pd.DataFrame({"i": np.arange(n), "ev": ev, "av": av, "bucket": ev // FUNDING_WINDOW_US})
    terms = own.rename(columns={"i": "j", "ev": "ev_j", "av": "av_j"}).assign(x=rate)
    terms = pd.concat([terms, terms.assign(bucket=terms["bucket"] + 1)], ignore_index=True)
    pairs = own.merge(terms, on="bucket")
    pairs = pairs[
        (pairs["ev_j"] > pairs["ev"] - FUNDING_WINDOW_US)
        & (pairs["ev_j"] <= pairs["ev"])
        & (pairs["av_j"] <= pairs["av"])
    ]
    pairs = pairs.assign(x2=pairs["x"] * pairs["x"])
    # every settlement is one of its own terms, so each has a group
    g = pairs.groupby("i").agg(n=("x", "size"), s=("x", "sum"), s2=("x2", "sum"), hi=("x", "max"), lo=("x", "min"))
    g = g.reindex(np.arange(n))
    z = zscore(
        rate,
        g["s"].to_numpy(),
        g["s2"].to_numpy(),
        g["n"].to_numpy(dtype=np.float64),
        (g["hi"] == g["lo"]).to_numpy(),
        min_n=3,
    )
    before = pairs[pairs["ev_j"] < pairs["ev"]].sort_values(["i", "ev_j", "av_j"], kind="stable")
    prev = before.drop_duplicates("i", keep="last").set_index("i")["x"].reindex(np.arange(n)).to_numpy()
    return rate - prev, z


def window_std(s: np.ndarray, s2: np.ndarray, n: np.ndarray, min_n: int = 2) -> np.ndarray:
    """Sample std from sums: sqrt((sum x^2 - sum x^2 / n) / (n - 1)); null when n < min_n; radicand >= 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        rad = (s2 - s * s / n) / (n - 1)
    return np.where(n >= min_n, np.sqrt(np.maximum(rad, 0.0)), np.nan)


def zscore(
    x: np.ndarray, s: np.ndarray, s2: np.ndarray, n: np.ndarray, constant: np.ndarray, min_n: int = 2
) -> np.ndarray:
    """(x - mean) / std with the window sums; null when the std is null or 0.

    ``constant`` (window max == min) marks the windows whose std is exactly 0: the sum-of-squares formula
    leaves a round-off radicand there (e.g. a run of equal funding rates), which must not become a z-score.
    """
    std = window_std(s, s2, n, min_n)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (x - s / n) / std
    return np.where(np.isfinite(std) & (std > 0) & ~constant, z, np.nan)


def _funding(t: np.ndarray, funding: Source, symbol: str, out: dict[str, np.ndarray]) -> None:
    asof = funding.asof(symbol, "funding_rate")
    rows = funding.rows(symbol)
    rows = rows[~np.isnan(funding.values["funding_rate"][rows])]  # every settlement with a rate
    change, z = np.full(len(funding.avail), np.nan), np.full(len(funding.avail), np.nan)
    change[rows], z[rows] = funding_per_settlement(
        funding.event[rows], funding.avail[rows], funding.values["funding_rate"][rows]
    )
    pos, _, fresh, stale_h = asof.lookup(t, FUNDING_LIMIT_US, HORIZON_US["funding"])
    out["funding_rate"] = funding.take("funding_rate", pos, fresh)
    out["funding_change"] = np.where(fresh, change[pos], np.nan) if len(change) else _nan(len(t))
    out["funding_z_7d"] = np.where(fresh, z[pos], np.nan) if len(z) else _nan(len(t))
    out["funding_staleness_h"] = stale_h
    out["funding_missing"] = _flag(~fresh)


def _open_interest(t: np.ndarray, oi: Source, symbol: str, out: dict[str, np.ndarray]) -> None:
    asof = oi.asof(symbol, "open_interest_value")
    pos, _, fresh, stale_h = asof.lookup(t, OI_LIMIT_US, HORIZON_US["open_interest"])
    v_t = oi.take("open_interest_value", pos, fresh)
    for name, w_us in (("oi_log_change_1h", US_PER_H), ("oi_log_change_1d", 24 * US_PER_H)):
        # V(t - W): the as-of value at t - W, with the limit and horizon at that instant
        pos_w, _, fresh_w, _ = asof.lookup(t - w_us, OI_LIMIT_US, HORIZON_US["open_interest"])
        with np.errstate(divide="ignore", invalid="ignore"):
            out[name] = np.log(v_t / oi.take("open_interest_value", pos_w, fresh_w))
    out["oi_staleness_h"] = stale_h
    out["oi_missing"] = _flag(~fresh)


def _ratios(t: np.ndarray, metrics: Source, symbol: str, out: dict[str, np.ndarray]) -> None:
    seen: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    for name, src in (
        ("log_long_short_ratio", "long_short_account_ratio"),
        ("log_top_position_ratio", "top_long_short_position_ratio"),
        ("log_taker_ratio", "taker_buy_sell_ratio"),
    ):
        asof = metrics.asof(symbol, src, positive=True)
        pos, found, fresh, stale_h = asof.lookup(t, RATIOS_LIMIT_US, HORIZON_US["metrics"])
        out[name] = np.log(metrics.take(src, pos, fresh))
        seen[src] = (found, fresh, stale_h)
    tk_found, tk_fresh, tk_stale = seen["taker_buy_sell_ratio"]
    _, ls_fresh, ls_stale = seen["long_short_account_ratio"]
    # the taker ratio's row when there is one within the horizon (even a stale one), else the long/short row
    out["ratios_staleness_h"] = np.where(tk_found, tk_stale, ls_stale)
    out["ratios_missing"] = _flag(np.where(tk_found, ~tk_fresh, ~ls_fresh))


def _basis(t: np.ndarray, close: np.ndarray, spot_close: np.ndarray, metrics: Source, symbol: str, out: dict) -> None:
    pos, _, fresh, _ = metrics.asof(symbol, "basis_rate").lookup(t, BASIS_LIMIT_US, HORIZON_US["metrics"])
    reported = metrics.take("basis_rate", pos, fresh)
    reported_ann = metrics.take("annualized_basis_rate", pos, fresh)  # same row as the reported basis_rate
    with np.errstate(divide="ignore", invalid="ignore"):
        fallback = (close - spot_close) / spot_close
    rate = np.where(fresh, reported, fallback)
    out["basis_rate"] = rate
    out["basis_reported"] = _flag(fresh)
    out["basis_annualized"] = np.where(fresh & ~np.isnan(reported_ann), reported_ann, rate * BASIS_PER_YEAR)
    out["basis_missing"] = _flag(np.isnan(rate))


def _mark(t: np.ndarray, close: np.ndarray, metrics: Source, symbol: str, out: dict[str, np.ndarray]) -> None:
    # "a mark price": non-null and positive
    asof = metrics.asof(symbol, "mark_price", positive=True)
    pos, found, fresh, stale_h = asof.lookup(t, MARK_LIMIT_US, HORIZON_US["metrics"])
    mark = metrics.take("mark_price", pos, fresh)
    tau = np.where(found, metrics.avail[pos], 0) if len(metrics.avail) else np.zeros(len(t), dtype=np.int64)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["premium_to_mark"] = np.log(exact_lag(t, close, tau) / mark)
    out["mark_staleness_h"] = stale_h
    out["mark_missing"] = _flag(~fresh)


def exact_lag(t: np.ndarray, values: np.ndarray, at: np.ndarray) -> np.ndarray:
    """``values`` of the row whose time is exactly ``at`` (``t`` sorted, unique), else NaN."""
    if len(t) == 0:
        return _nan(len(at))
    i = np.searchsorted(t, at, side="left")
    ic = np.minimum(i, len(t) - 1)
    hit = (i < len(t)) & (t[ic] == at)
    return np.where(hit, values[ic], np.nan)


def derivatives_for_symbol(
    symbol: str,
    t: np.ndarray,
    close: np.ndarray,
    spot_close: np.ndarray,
    funding: Source,
    open_interest: Source,
    metrics: Source,
) -> dict[str, np.ndarray]:
    """All derivatives columns for one symbol's perp grid ``t`` (int64 us, sorted) with its perp closes."""
    out: dict[str, np.ndarray] = {}
    _funding(t, funding, symbol, out)
    _open_interest(t, open_interest, symbol, out)
    _ratios(t, metrics, symbol, out)
    _basis(t, close, spot_close, metrics, symbol, out)
    _mark(t, close, metrics, symbol, out)
    return {c: out[c] for c in DERIVATIVES_COLUMNS}
