"""The portfolio allocator (DESIGN section 5): per-(symbol, horizon) signals to one target weight per symbol.

Horizons are strategy buckets (``AllocatorConfig.buckets``). The position of each prediction comes from the one
signal (:mod:`quantmm_assets.core.signal`); the allocator sizes it and applies the caps, in this order:

1. **Funding in the edge.** For a held position (``position != 0``), ``side = position``, ``edge = |expected_return|
   - cost`` and ``edge_after_funding = edge - side * expected_funding`` (a long pays positive funding, a short
   receives it; a null funding is taken as 0 and noted). When ``funding_in_edge`` and ``edge_after_funding <= 0``
   the weight is 0 ("funding eats the edge"). ``position == 0`` gives 0 ("flat signal"); a null, NaN, infinite or
   non-positive ``vol_forecast`` under a position gives 0 ("no vol forecast").
2. **Vol targeting.** ``daily_vol = vol_forecast * sqrt(1 day / h)``; ``raw_weight = side *
   bucket_daily_vol[bucket] / max(daily_vol, eps)``.
3. **Bucket cap.** Per bucket, when the gross ``sum |raw_weight|`` over all symbols exceeds ``bucket_cap``, the
   bucket's weights are scaled by ``bucket_cap / gross``.
4. **Symbol cap.** ``w_S`` = the sum of S's contributions; ``|w_S| > symbol_cap`` scales them by ``symbol_cap /
   |w_S|``.
5. **Cluster cap.** Per correlation cluster (:mod:`quantmm_assets.core.portfolio.clusters`), ``|sum w_S| >
   cluster_cap`` scales all the cluster's contributions by ``cluster_cap / |sum w_S|``.
6. **Risk budget.** ``sum_S |w_S| > risk_budget`` scales every contribution by ``risk_budget / gross``.
7. **Turnover.** ``desired`` = the weights after 1-6; when ``T = sum_S |desired_S - current_S| > max_turnover``,
   ``target = current + k * (desired - current)`` with ``k = max_turnover / T``: every contribution is multiplied
   by k and a "carry" row of weight ``(1 - k) * current_S`` is added per symbol with a nonzero current weight.

Every cap scales only when exceeded (a value exactly at its cap is kept) and scales contributions proportionally,
so the contributions of a symbol (carry included) always sum to its target. A symbol in ``current`` but not in the
signals moves toward 0. The output is ordered by symbol, then horizon (1h, 4h, 1d, 7d), then carry.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

import numpy as np
import polars as pl

from quantmm_assets.core.labels import HORIZONS
from quantmm_assets.core.portfolio.clusters import correlation_clusters

DEFAULT_BUCKETS: dict[str, str] = {"1h": "mean_reversion", "4h": "event", "1d": "trend", "7d": "trend"}
DEFAULT_BUCKET_DAILY_VOL = 0.01
PARAM_PREFIX = "allocator."
CARRY = "carry"
BINDINGS = ("bucket_cap", "symbol_cap", "cluster_cap", "risk_budget", "turnover")
SIGNAL_COLUMNS = ("symbol", "horizon", "position", "expected_return", "cost", "vol_forecast", "expected_funding")
BARS_PER_DAY = HORIZONS["1d"]
CONTRIBUTION_SCHEMA = {
    "symbol": pl.Utf8,
    "horizon": pl.Utf8,
    "bucket": pl.Utf8,
    "side": pl.Int8,
    "edge": pl.Float64,
    "funding": pl.Float64,
    "edge_after_funding": pl.Float64,
    "raw_weight": pl.Float64,
    "weight": pl.Float64,
    "reason": pl.Utf8,
}
TARGET_SCHEMA = {
    "symbol": pl.Utf8,
    "current": pl.Float64,
    "desired": pl.Float64,
    "target": pl.Float64,
    "trade": pl.Float64,
    "cluster": pl.Int64,
    "binding": pl.List(pl.Utf8),
}


def _finite(x: object) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


@dataclass(frozen=True)
class AllocatorConfig:
    """The buckets, vol targets and caps of the allocator (all weights are fractions of equity)."""

    buckets: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_BUCKETS))
    bucket_daily_vol: Mapping[str, float] = field(default_factory=dict)
    risk_budget: float = 1.0
    symbol_cap: float = 0.5
    bucket_cap: float = 0.75
    cluster_corr: float = 0.8
    cluster_cap: float = 0.6
    min_corr_obs: int = 48
    max_turnover: float = 0.5
    funding_in_edge: bool = True
    eps: float = 1e-8

    def __post_init__(self) -> None:
        unknown = sorted(set(self.buckets) - set(HORIZONS))
        if unknown:
            raise ValueError(f"AllocatorConfig.buckets: unknown horizons {unknown}; known: {list(HORIZONS)}")
        bad_names = [h for h, b in self.buckets.items() if not isinstance(b, str) or not b or b == CARRY]
        if bad_names:
            raise ValueError(
                f"AllocatorConfig.buckets: horizons {bad_names} need a non-empty bucket name (not 'carry')"
            )
        buckets = {h: self.buckets[h] for h in HORIZONS if h in self.buckets}
        names = sorted(set(buckets.values()))
        stray = sorted(set(self.bucket_daily_vol) - set(names))
        if stray:
            raise ValueError(f"AllocatorConfig.bucket_daily_vol: unknown buckets {stray}; buckets: {names}")
        vols = {b: self.bucket_daily_vol.get(b, DEFAULT_BUCKET_DAILY_VOL) for b in names}
        bad = [f"bucket_daily_vol[{b}]={v}" for b, v in vols.items() if not (_finite(v) and v >= 0)]
        for name in ("risk_budget", "symbol_cap", "bucket_cap", "cluster_cap", "eps"):
            value = getattr(self, name)
            if not (_finite(value) and value > 0):
                bad.append(f"{name}={value} (must be finite and > 0)")
        if not (_finite(self.max_turnover) and self.max_turnover >= 0):
            bad.append(f"max_turnover={self.max_turnover} (must be finite and >= 0)")
        if not (_finite(self.cluster_corr) and 0 < self.cluster_corr <= 1):
            bad.append(f"cluster_corr={self.cluster_corr} (must be in (0, 1])")
        if (
            not (isinstance(self.min_corr_obs, int) and not isinstance(self.min_corr_obs, bool))
            or self.min_corr_obs < 2
        ):
            bad.append(f"min_corr_obs={self.min_corr_obs} (must be an integer >= 2)")
        if not isinstance(self.funding_in_edge, bool):
            bad.append(f"funding_in_edge={self.funding_in_edge!r} (must be a bool)")
        if bad:
            raise ValueError(f"AllocatorConfig: out of range {bad}")
        object.__setattr__(self, "buckets", buckets)
        object.__setattr__(self, "bucket_daily_vol", {b: float(v) for b, v in vols.items()})
        for name in ("risk_budget", "symbol_cap", "bucket_cap", "cluster_corr", "cluster_cap", "max_turnover", "eps"):
            object.__setattr__(self, name, float(getattr(self, name)))

    def as_params(self) -> dict[str, float | str]:
        """Return the flat ``allocator.<field>`` params (``allocator.buckets.<h>``,
        ``allocator.bucket_daily_vol.<bucket>``)."""
        out: dict[str, float | str] = {f"{PARAM_PREFIX}buckets.{h}": b for h, b in self.buckets.items()}
        out |= {f"{PARAM_PREFIX}bucket_daily_vol.{b}": v for b, v in self.bucket_daily_vol.items()}
        for name in ("risk_budget", "symbol_cap", "bucket_cap", "cluster_corr", "cluster_cap", "max_turnover", "eps"):
            out[f"{PARAM_PREFIX}{name}"] = getattr(self, name)
        out[f"{PARAM_PREFIX}min_corr_obs"] = float(self.min_corr_obs)
        out[f"{PARAM_PREFIX}funding_in_edge"] = "true" if self.funding_in_edge else "false"
        return out

    def config_hash(self) -> str:
        """Return the first 12 hex digits of the sha256 of :meth:`as_params` as sorted JSON."""
        return hashlib.sha256(json.dumps(self.as_params(), sort_keys=True).encode()).hexdigest()[:12]

    def __hash__(self) -> int:
        return hash(self.config_hash())


@dataclass(frozen=True)
class Allocation:
    """Targets per symbol, contributions per (symbol, horizon) that sum to them, and notes on what was decided."""

    targets: pl.DataFrame
    contributions: pl.DataFrame
    notes: list[str]


@dataclass
class _Row:
    symbol: str
    horizon: str
    bucket: str | None
    side: int
    edge: float | None
    funding: float | None
    edge_after_funding: float | None
    raw_weight: float | None
    reason: str
    weight: float = 0.0


def _read_signals(signals: pl.DataFrame) -> list[dict]:
    """Return the validated signal rows sorted by symbol and horizon."""
    if signals.height == 0:
        return []
    missing = [c for c in SIGNAL_COLUMNS if c not in signals.columns]
    if missing:
        raise ValueError(f"allocate: signals miss columns {missing}; expected {list(SIGNAL_COLUMNS)}")
    df = signals.select(
        pl.col("symbol").cast(pl.Utf8),
        pl.col("horizon").cast(pl.Utf8),
        *(pl.col(c).cast(pl.Float64) for c in SIGNAL_COLUMNS[2:]),
    )
    if df["symbol"].null_count() or df["horizon"].null_count():
        raise ValueError("allocate: signals have null symbol or horizon")
    unknown = sorted(set(df["horizon"]) - set(HORIZONS))
    if unknown:
        raise ValueError(f"allocate: unknown horizons {unknown} in signals; known: {list(HORIZONS)}")
    dup = df.filter(pl.struct("symbol", "horizon").is_duplicated())
    if dup.height:
        pairs = sorted(set(dup.select("symbol", "horizon").iter_rows()))
        raise ValueError(f"allocate: duplicate (symbol, horizon) in signals: {pairs}")
    bad = df.filter(~pl.col("position").is_in([-1.0, 0.0, 1.0]).fill_null(False))
    if bad.height:
        where = bad.select("symbol", "horizon", "position").rows()
        raise ValueError(f"allocate: position not in {{-1, 0, 1}} (or null) for {where}")
    order = {h: i for i, h in enumerate(HORIZONS)}
    return sorted(df.iter_rows(named=True), key=lambda r: (r["symbol"], order[r["horizon"]]))


def _size(r: dict, config: AllocatorConfig, notes: list[str]) -> _Row:
    """Apply rules 1 and 2 to one signal row."""
    h, side = r["horizon"], int(r["position"])
    er, cost, vol, funding = r["expected_return"], r["cost"], r["vol_forecast"], r["expected_funding"]
    bucket = config.buckets.get(h)
    edge = abs(er) - cost if _finite(er) and _finite(cost) else None
    if side != 0 and not _finite(funding):
        notes.append(f"funding: {r['symbol']} {h} expected_funding unknown (null or NaN): taken as 0")
    funding = float(funding) if _finite(funding) else 0.0
    after = None if edge is None else edge - side * funding
    row = _Row(r["symbol"], h, bucket, side, edge, funding, after, 0.0, "held")
    if side == 0:
        row.reason = "flat signal"
    elif bucket is None:
        row.reason = "horizon in no bucket"
    elif after is None:
        row.reason = "no edge (expected_return or cost missing)"
    elif config.funding_in_edge and after <= 0:
        row.reason = "funding eats the edge"
    elif not (_finite(vol) and vol > 0):
        row.reason = "no vol forecast"
    else:
        daily_vol = vol * math.sqrt(BARS_PER_DAY / HORIZONS[h])
        row.raw_weight = side * config.bucket_daily_vol[bucket] / max(daily_vol, config.eps)
    return row


def _scale(w: np.ndarray, idx: list[int], value: float, cap: float) -> float | None:
    """Scale ``w[idx]`` by ``cap / value`` when ``value > cap``; return the factor, None when not scaled."""
    if value <= cap:
        return None
    factor = cap / value
    w[idx] *= factor
    return factor


def _nets(w: np.ndarray, by_symbol: dict[str, list[int]]) -> dict[str, float]:
    return {s: float(sum(w[i] for i in idx)) for s, idx in by_symbol.items()}


def _read_current(current: Mapping[str, float]) -> dict[str, float]:
    bad = {s: v for s, v in current.items() if not _finite(v)}
    if bad:
        raise ValueError(f"allocate: current weights must be finite numbers, got {bad}")
    return {str(s): float(v) for s, v in current.items()}


def allocate(
    signals: pl.DataFrame,
    current: Mapping[str, float],
    returns: pl.DataFrame | None,
    config: AllocatorConfig | None = None,
) -> Allocation:
    """Return the target weights of the symbols in ``signals`` and ``current`` under rules 1-7 (module docstring)."""
    config = config or AllocatorConfig()
    notes: list[str] = []
    cur = _read_current(current)
    rows = [_size(r, config, notes) for r in _read_signals(signals)]
    if not rows:
        notes.append("signals: none: every current position moves toward 0")
    symbols = sorted({r.symbol for r in rows} | set(cur))
    by_symbol = {s: [i for i, r in enumerate(rows) if r.symbol == s] for s in symbols}
    cluster, cluster_notes = correlation_clusters(returns, symbols, config.cluster_corr, config.min_corr_obs)
    notes += cluster_notes
    w = np.array([r.raw_weight or 0.0 for r in rows], dtype=np.float64)
    binding: dict[str, set[str]] = {s: set() for s in symbols}

    def bind(idx: list[int], name: str, what: str, value: float, cap: float) -> None:
        scaled = {rows[i].symbol for i in idx if w[i] != 0.0}
        factor = _scale(w, idx, value, cap)
        if factor is not None:
            for s in scaled:
                binding[s].add(name)
            notes.append(f"{name}: {what} {value:.6g} > {cap:g}: scaled by {factor:.6g}")

    for bucket in sorted(set(config.buckets.values())):  # rule 3
        idx = [i for i, r in enumerate(rows) if r.bucket == bucket]
        bind(idx, "bucket_cap", f"bucket {bucket} gross", float(np.abs(w[idx]).sum()), config.bucket_cap)
    for s, idx in by_symbol.items():  # rule 4
        bind(idx, "symbol_cap", f"|weight of {s}|", abs(sum(w[i] for i in idx)), config.symbol_cap)
    for cid in sorted(set(cluster.values())):  # rule 5
        members = [s for s in symbols if cluster[s] == cid]
        idx = [i for s in members for i in by_symbol[s]]
        bind(idx, "cluster_cap", f"|net of cluster {cid}|", abs(sum(w[i] for i in idx)), config.cluster_cap)
    gross = sum(abs(v) for v in _nets(w, by_symbol).values())  # rule 6
    bind(list(range(len(rows))), "risk_budget", "gross", gross, config.risk_budget)

    desired = _nets(w, by_symbol)  # rule 7
    turnover = sum(abs(desired[s] - cur.get(s, 0.0)) for s in symbols)
    k = 1.0
    if turnover > config.max_turnover:
        k = config.max_turnover / turnover
        w *= k
        for s in symbols:
            if desired[s] != cur.get(s, 0.0):
                binding[s].add("turnover")
        notes.append(f"turnover: {turnover:.6g} > {config.max_turnover:g}: trades scaled by {k:.6g}")
    return _build(rows, w + 0.0, k, symbols, cur, desired, cluster, binding, notes)


def _build(
    rows: list[_Row],
    w: np.ndarray,
    k: float,
    symbols: list[str],
    cur: dict[str, float],
    desired: dict[str, float],
    cluster: dict[str, int],
    binding: dict[str, set[str]],
    notes: list[str],
) -> Allocation:
    """Assemble the targets and contributions frames (carry rows when the turnover limit bound)."""
    for i, r in enumerate(rows):
        r.weight = float(w[i])
    if k < 1.0:
        reason = "turnover limit: part of the current position carried"
        carry = [
            _Row(s, CARRY, None, int(np.sign(cur[s])), None, None, None, None, reason, (1.0 - k) * cur[s] + 0.0)
            for s in symbols
            if cur.get(s, 0.0) != 0.0
        ]
        rows = sorted(rows + carry, key=lambda r: (r.symbol, r.horizon == CARRY))  # stable: horizons keep order
    contributions = pl.DataFrame([asdict(r) for r in rows], schema=CONTRIBUTION_SCHEMA)
    target = dict.fromkeys(symbols, 0.0)
    for r in rows:
        target[r.symbol] += r.weight
    columns = {
        "symbol": symbols,
        "current": [cur.get(s, 0.0) for s in symbols],
        "desired": [desired[s] for s in symbols],
        "target": [target[s] for s in symbols],
        "trade": [target[s] - cur.get(s, 0.0) for s in symbols],
        "cluster": [cluster[s] for s in symbols],
        "binding": [[b for b in BINDINGS if b in binding[s]] for s in symbols],
    }
    return Allocation(pl.DataFrame(columns, schema=TARGET_SCHEMA), contributions, notes)
