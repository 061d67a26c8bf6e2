"""Leakage checks that do not trust the stamps the builders wrote.

- ``asof_alignment``: for sampled rows (symbol, t), rebuild the features from the raw rows that were
  available at t, their availability recomputed from ``ts_event`` by ``core.availability`` (never the
  ``ts_available`` column of the lake), and compare with the stored row. A stored value that needed an input
  published after t (a feature shifted into the future, a macro value used before its release) differs.
- ``truncation_invariance``: the builders' code on data cut at >= 50 instants (partition boundaries, funding
  settlements, macro releases, random instants) against the same code on the uncut data, rows ``t <= cut``
  compared; and the start of the data cut at the declared look-back (partition boundaries and look-back
  windows change nothing). Freqtrade's lookahead / recursive analysis, applied to every feature.

Values are equal when ``|a - b| <= 1e-9 * max(1, |a|, |b|)`` (nulls equal nulls; latent vectors element-wise).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

from quantmm_assets.core.availability import (
    DEFAULT_SOCIAL_INGEST_DELAY,
    bar_available,
    funding_available,
    macro_available,
    period_available,
    social_available,
)
from quantmm_assets.core.feature_matrix import RawInputs, raw_window

TOLERANCE = 1e-9
Builder = Callable[[RawInputs, datetime, datetime], pl.DataFrame]
KEYS = ["symbol", "ts_event"]
FAR_FUTURE = datetime(9999, 1, 1, tzinfo=UTC)


@dataclass
class LeakageOutcome:
    """Result of one leakage check: passed, a description and the first differences found."""

    passed: bool
    description: str
    checked: int
    failures: list[str] = field(default_factory=list)


def recomputed_availability(asset: str, frame: pl.DataFrame) -> pl.Expr:
    """When a raw row became available, derived from its ``ts_event`` by the availability rules."""
    ts = pl.col("ts_event")
    if asset == "market_bars_5m":
        return bar_available(ts)
    if asset == "funding_rates":
        return funding_available(ts)
    if asset in ("open_interest", "derivatives_metrics"):
        return period_available(ts, pl.col("period"))
    if asset == "macro_series":
        return macro_available(ts, pl.col("series_id"))
    if asset in ("social_posts_raw", "social_comments_raw"):
        return social_available(ts, DEFAULT_SOCIAL_INGEST_DELAY)
    raise KeyError(f"no availability rule for {asset!r}")


def as_known_at(
    raw: RawInputs, cut: datetime, since: datetime | dict[str, datetime] | None = None, restamp: bool = True
) -> RawInputs:
    """The raw rows as they could be known at ``cut``: availability recomputed (and re-stamped), rows published
    after ``cut`` dropped, engagement counts observed after ``cut`` blanked; optionally nothing before ``since``
    (one instant, or one per raw asset name). ``restamp=False``: ``raw`` was restamped already (``restamped``)."""

    def cut_frame(asset: str, frame: pl.DataFrame) -> pl.DataFrame:
        if not len(frame):
            return frame
        out = frame.with_columns(recomputed_availability(asset, frame).alias("ts_available")) if restamp else frame
        keep = pl.col("ts_available") <= cut
        first = since.get(asset) if isinstance(since, dict) else since
        if first is not None:
            keep = keep & (pl.col("ts_event") >= first)
        out = out.filter(keep)
        if "engagement_observed_at" in out.columns:
            late = pl.col("engagement_observed_at").is_null() | (pl.col("engagement_observed_at") > cut)
            blank = [c for c in ("engagement_score", "num_comments") if c in out.columns]
            out = out.with_columns(
                *[pl.when(late).then(None).otherwise(pl.col(c)).alias(c) for c in blank],
                pl.when(late).then(None).otherwise(pl.col("engagement_observed_at")).alias("engagement_observed_at"),
            )
        return out

    return raw.map(cut_frame)


def differences(expected: pl.DataFrame, got: pl.DataFrame, label: str, limit: int = 20) -> list[str]:
    """Cells where two frames keyed by (symbol, ts_event) differ beyond the tolerance (missing rows count)."""
    out: list[str] = []
    joined = expected.join(got, on=KEYS, how="full", suffix="__got", coalesce=True)
    for name in expected.columns:
        if name in KEYS or name == "ts_available" or f"{name}__got" not in joined.columns:
            continue
        a, b = joined[name], joined[f"{name}__got"]
        bad = _unequal(a, b)
        for i in np.flatnonzero(bad)[: max(0, limit - len(out))]:
            out.append(
                f"{label}: {joined['symbol'][int(i)]} {joined['ts_event'][int(i)]} {name}: "
                f"stored {_show(a[int(i)])} vs recomputed {_show(b[int(i)])}"
            )
        if len(out) >= limit:
            break
    missing = [c for c in expected.columns if c not in got.columns]
    if missing:
        out.append(f"{label}: recomputation lacks columns {missing[:5]}")
    return out


def _show(v: object) -> str:
    if isinstance(v, pl.Series):
        return f"vector[{len(v)}]"
    return f"{v:.12g}" if isinstance(v, float) else str(v)


def _unequal(a: pl.Series, b: pl.Series) -> np.ndarray:
    if isinstance(a.dtype, pl.Array | pl.List):
        na, nb = a.is_null().to_numpy(), b.is_null().to_numpy()
        bad = na != nb
        both = ~na & ~nb
        if both.any():
            x = np.stack(a.filter(pl.Series(both)).to_list()).astype(np.float64)
            y = np.stack(b.filter(pl.Series(both)).to_list()).astype(np.float64)
            close = (np.abs(x - y) <= 1e-6 * np.maximum(1.0, np.maximum(np.abs(x), np.abs(y)))).all(axis=1)
            bad[np.flatnonzero(both)] = ~close
        return bad
    if a.dtype.is_numeric() and b.dtype.is_numeric():
        x = a.cast(pl.Float64).to_numpy()
        y = b.cast(pl.Float64).to_numpy()
        nx, ny = np.isnan(x), np.isnan(y)
        with np.errstate(invalid="ignore"):
            close = np.abs(x - y) <= TOLERANCE * np.maximum(1.0, np.maximum(np.abs(x), np.abs(y)))
        return np.where(nx | ny, nx != ny, ~close)
    return ~(a.eq_missing(b).fill_null(False).to_numpy())


def sample_rows(stored: pl.DataFrame, n: int, seed: int = 0) -> list[tuple[str, datetime]]:
    """``n`` rows spread over the stored frame (seeded; the newest row of each symbol always included)."""
    if not len(stored):
        return []
    rng = np.random.default_rng(seed)
    idx = set(rng.choice(len(stored), size=min(n, len(stored)), replace=False).tolist())
    last = stored.with_row_index("_i").group_by("symbol").agg(pl.col("_i").last())["_i"].to_list()
    idx |= set(last)
    rows = stored.select(KEYS)
    return [(rows["symbol"][i], rows["ts_event"][i]) for i in sorted(idx)]


KnownAt = Callable[[object, str, datetime], object]


def restamped(raw: RawInputs) -> RawInputs:
    """``raw`` with every ``ts_available`` re-derived from ``ts_event`` (done once before many cuts)."""
    return raw.map(
        lambda asset, f: f.with_columns(recomputed_availability(asset, f).alias("ts_available")) if len(f) else f
    )


def raw_known_at(raw: RawInputs, symbol: str, t: datetime, restamp: bool = True) -> RawInputs:
    """``symbol``'s raw rows (and the symbol-free ones) as they could be known at ``t``."""
    return as_known_at(raw_window(raw.map(lambda _a, f: _only_symbol(f, symbol)), t, t), t, restamp=restamp)


def items_known_at(items: pl.DataFrame, symbol: str, t: datetime) -> tuple[str, pl.DataFrame]:
    """``(symbol, its scored text items as known at t)``: availability recomputed, later engagement blanked."""
    out = items.filter(pl.col("symbol") == symbol).with_columns(
        social_available(pl.col("ts_event"), DEFAULT_SOCIAL_INGEST_DELAY).alias("ts_available")
    )
    late = pl.col("engagement_observed_at").is_null() | (pl.col("engagement_observed_at") > t)
    return symbol, out.filter(pl.col("ts_available") <= t).with_columns(
        pl.when(late).then(None).otherwise(pl.col("engagement")).alias("engagement"),
        pl.when(late).then(None).otherwise(pl.col("engagement_observed_at")).alias("engagement_observed_at"),
    )


def asof_alignment(
    stored: pl.DataFrame,
    inputs: object,
    build: Builder,
    samples: list[tuple[str, datetime]],
    label: str,
    known_at: KnownAt = raw_known_at,
) -> LeakageOutcome:
    """Rebuild each sampled row from the inputs known at its t (``known_at``); any difference is a leak."""
    failures: list[str] = []
    mine: dict[str, object] = {}  # inputs narrowed to each sampled symbol once
    for symbol, t in samples:
        if symbol not in mine:
            mine[symbol] = (
                inputs.map(lambda _a, f, s=symbol: _only_symbol(f, s)) if isinstance(inputs, RawInputs) else inputs
            )
        got = build(known_at(mine[symbol], symbol, t), t, t + timedelta(microseconds=1))
        want = stored.filter((pl.col("symbol") == symbol) & (pl.col("ts_event") == t))
        failures += differences(want, got.filter(pl.col("symbol") == symbol), f"{label} row at {t:%Y-%m-%d %H:%M}")
        if len(failures) >= 20:
            break
    n = len(samples)
    return LeakageOutcome(
        not failures,
        f"{n} sampled rows rebuilt from raw rows available at their t: "
        + (
            "all equal"
            if not failures
            else f"{len(failures)}+ values differ: they used inputs published later, or were built from "
            "stale or missing upstream partitions"
        ),
        n,
        failures[:20],
    )


def _only_symbol(frame: pl.DataFrame, symbol: str) -> pl.DataFrame:
    if "symbol" in frame.columns and frame.schema["symbol"] == pl.Utf8:
        return frame.filter(pl.col("symbol") == symbol)
    return frame


def cut_instants(start: datetime, end: datetime, raw: RawInputs, n: int = 60, seed: int = 0) -> list[datetime]:
    """Up to ``n`` 5m instants in (start, end]: partition boundaries (00:00, up to a third of the cuts), funding
    settlements and macro releases *and the bar before each* (a build that uses an event one bar early is only
    seen with the cut just before it), then seeded random 5m instants; fewer only when the span has fewer."""
    rng = np.random.default_rng(seed)
    bar = timedelta(minutes=5)
    first_midnight = datetime(start.year, start.month, start.day, tzinfo=UTC) + timedelta(days=1)
    days = [first_midnight + timedelta(days=i) for i in range(max(0, (end - first_midnight).days + 1))]
    picks: set[datetime] = set(_spread([d for d in days if start < d <= end], n // 3, rng))
    events = [t for t in raw.funding["ts_event"].to_list() if start < t <= end] if len(raw.funding) else []
    if len(raw.macro):
        releases = raw.macro.with_columns(recomputed_availability("macro_series", raw.macro).alias("_a"))["_a"]
        events += [t for t in releases.to_list() if start < t <= end]
    for t in _spread(events, n // 6, rng):
        picks |= {t, t - bar} if t - bar > start else {t}
    steps = int((end - start) / bar)
    for k in rng.permutation(steps) + 1 if steps > 0 else []:
        if len(picks) >= n:
            break
        picks.add(start + bar * int(k))
    return sorted(picks)


def _spread(items: list[datetime], k: int, rng: np.random.Generator) -> list[datetime]:
    items = sorted(set(items))
    if len(items) <= k:
        return items
    return [items[i] for i in sorted(rng.choice(len(items), size=k, replace=False))]


def truncation_invariance(
    raw: RawInputs,
    build: Builder,
    cuts: list[datetime],
    lookback: timedelta | dict[str, timedelta],
    label: str,
    compare: timedelta,
    restamp: bool = True,
    full: pl.DataFrame | None = None,
) -> LeakageOutcome:
    """Rows in (cut - compare, cut] built from data cut at ``cut`` and starting ``lookback`` before the compared
    rows' day (one look-back, or one per raw asset name) must equal the full computation: ``full`` (the stored
    rows, computed from all the data) or, without it, the same rows built from all the data given (which should
    reach further back than the look-back for the start cut to test anything)."""
    failures: list[str] = []
    step = timedelta(minutes=5)
    for cut in cuts:
        lo, hi = cut - compare + step, cut + step  # grid rows t in (cut - compare, cut]
        day = datetime(lo.year, lo.month, lo.day, tzinfo=UTC)
        since = {a: day - lb for a, lb in lookback.items()} if isinstance(lookback, dict) else day - lookback
        # one rebuild on data cut at both ends: a difference is look-ahead (the end) or a look-back longer than
        # declared (the start); the message names the cut
        cut_both = build(as_known_at(raw, cut, since=since, restamp=restamp), lo, hi)
        if full is None:
            whole = build(raw, lo, hi)
        else:  # the stored rows start at the run's first partition: compare from there
            whole = full.filter(pl.col("ts_event").is_between(lo, hi, closed="left"))
            cut_both = cut_both.filter(pl.col("ts_event") >= full["ts_event"].min())
        failures += differences(whole, cut_both, f"{label} data cut at {cut:%Y-%m-%d %H:%M} and at the look-back")
        if len(failures) >= 20:
            break
    return LeakageOutcome(
        not failures,
        f"{len(cuts)} cut instants: "
        + (
            "rows before each cut unchanged by cutting the data there or at the look-back"
            if not failures
            else f"{len(failures)}+ values change when later data is removed (look-ahead) or earlier data is removed"
        ),
        len(cuts),
        failures[:20],
    )
