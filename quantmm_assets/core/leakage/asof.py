"""Leakage checks that do not trust the stamps the builders wrote (the as-of rebuild and what they share).

- ``asof_alignment``: for sampled rows (symbol, t), rebuild the features from the raw rows that were
  available at t, their availability recomputed from ``ts_event`` by ``core.availability`` (never the
  ``ts_available`` column of the lake), and compare with the stored row. A stored value that needed an input
  published after t (a feature shifted into the future, a macro value used before its release) differs.
- ``truncation_invariance`` (``core.leakage.truncation``): data cut at instants on the 5m grid.
- label alignment, text item availability, fold hygiene: ``core.leakage.derived``.

Every check returns a ``LeakageOutcome`` that counts what it compared: one that compared nothing says so
(``compared_nothing``) and is not a pass. Numbers are equal when ``|a - b| <= 1e-9 * max(1, |a|, |b|)`` (NaN and
null equal each other only); latent vectors element-wise within ``1e-6 * max(1, |x|, |y|)``; anything else exactly
(nulls equal nulls). A row in one frame only is a difference whatever its values (``differences``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

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
from quantmm_assets.core.features.matrix import RawInputs, raw_window

TOLERANCE = 1e-9
Builder = Callable[[RawInputs, datetime, datetime], pl.DataFrame]
KEYS = ["symbol", "ts_event"]
PRESENT = "__present"  # marks the rows of each side in the full join of ``differences``


@dataclass
class LeakageOutcome:
    """Result of one leakage check: a description, how many units (rows, cuts, items, intervals) it compared,
    the first differences found and the units that compared nothing, with why. It passed only when it compared
    something and found no difference: a check that compared nothing is not a pass (``nothing_compared``)."""

    description: str
    checked: int
    failures: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.checked > 0 and not self.failures

    @property
    def nothing_compared(self) -> bool:
        return self.checked == 0 and not self.failures


def compared_nothing(why: str, skipped: list[str] | None = None) -> LeakageOutcome:
    """The outcome of a check that had nothing to compare (no rows in the run, no cut with rows): it says so
    and why, and does not pass."""
    return LeakageOutcome(f"compared nothing: {why}", 0, [], list(skipped or [why]))


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
    """Where two frames keyed by (symbol, ts_event) differ, at most ``limit`` messages, in key order: a row in one
    frame only, whatever its values (nulls too), is "row missing from recomputation" (``expected`` only) or "row
    not in stored" (``got`` only); then, on the rows of both, the cells that differ beyond the tolerance
    (``ts_available`` not compared); last, a line naming the columns of ``expected`` that ``got`` lacks."""
    out: list[str] = []
    mark = pl.lit(True).alias(PRESENT)
    joined = (
        expected.with_columns(mark)
        .join(got.with_columns(mark), on=KEYS, how="full", suffix="__got", coalesce=True)
        .sort(KEYS)
    )
    in_expected = joined[PRESENT].fill_null(False).to_numpy()
    in_got = joined[f"{PRESENT}__got"].fill_null(False).to_numpy()
    for i in np.flatnonzero(in_expected != in_got)[:limit]:
        where = "row missing from recomputation" if in_expected[i] else "row not in stored"
        out.append(f"{label}: {joined['symbol'][int(i)]} {joined['ts_event'][int(i)]}: {where}")
    both = joined.filter(pl.Series(in_expected & in_got))
    for name in expected.columns:
        if len(out) >= limit:
            break
        if name in KEYS or name == "ts_available" or f"{name}__got" not in both.columns:
            continue
        a, b = both[name], both[f"{name}__got"]
        bad = _unequal(a, b)
        for i in np.flatnonzero(bad)[: limit - len(out)]:
            out.append(
                f"{label}: {both['symbol'][int(i)]} {both['ts_event'][int(i)]} {name}: "
                f"stored {_show(a[int(i)])} vs recomputed {_show(b[int(i)])}"
            )
    missing = [c for c in expected.columns if c not in got.columns]
    if missing:
        out.append(f"{label}: recomputation lacks columns {missing[:5]}")
    return out


def _show(v: object) -> str:
    if isinstance(v, pl.Series):
        return f"vector[{len(v)}]"
    return f"{v:.12g}" if isinstance(v, float) else str(v)


def _close(x: np.ndarray, y: np.ndarray, rel: float) -> np.ndarray:
    """``|x - y| <= rel * max(1, |x|, |y|)`` element-wise for finite values; an infinity equals only the same
    infinity (``|inf - 1| <= rel * inf`` would call it equal to anything); NaN equals NaN and nothing else."""
    with np.errstate(invalid="ignore"):
        close = np.abs(x - y) <= rel * np.maximum(1.0, np.maximum(np.abs(x), np.abs(y)))
    close = np.where(np.isinf(x) | np.isinf(y), x == y, close)
    nx, ny = np.isnan(x), np.isnan(y)
    return np.where(nx | ny, nx & ny, close)


def _unequal(a: pl.Series, b: pl.Series) -> np.ndarray:
    if isinstance(a.dtype, pl.Array | pl.List):
        na, nb = a.is_null().to_numpy(), b.is_null().to_numpy()
        bad = na != nb
        both = ~na & ~nb
        if both.any():
            x = np.stack(a.filter(pl.Series(both)).to_list()).astype(np.float64)
            y = np.stack(b.filter(pl.Series(both)).to_list()).astype(np.float64)
            bad[np.flatnonzero(both)] = ~_close(x, y, 1e-6).all(axis=1)
        return bad
    if a.dtype.is_numeric() and b.dtype.is_numeric():
        return ~_close(a.cast(pl.Float64).to_numpy(), b.cast(pl.Float64).to_numpy(), TOLERANCE)
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
    return as_known_at(raw_window(raw.map(lambda _a, f: only_symbol(f, symbol)), t, t), t, restamp=restamp)


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
    if not samples:
        return compared_nothing(f"no {label} rows to sample")
    failures: list[str] = []
    compared = 0
    mine: dict[str, object] = {}  # inputs narrowed to each sampled symbol once
    for symbol, t in samples:
        if symbol not in mine:
            mine[symbol] = (
                inputs.map(lambda _a, f, s=symbol: only_symbol(f, s)) if isinstance(inputs, RawInputs) else inputs
            )
        got = build(known_at(mine[symbol], symbol, t), t, t + timedelta(microseconds=1))
        want = stored.filter((pl.col("symbol") == symbol) & (pl.col("ts_event") == t))
        compared += len(want)
        failures += differences(want, got.filter(pl.col("symbol") == symbol), f"{label} row at {t:%Y-%m-%d %H:%M}")
        if len(failures) >= 20:
            break
    if not compared and not failures:
        return compared_nothing(f"none of the {len(samples)} sampled {label} rows is stored")
    return LeakageOutcome(
        f"{compared} sampled rows rebuilt from raw rows available at their t: "
        + (
            "all equal"
            if not failures
            else f"{len(failures)}+ values differ: they used inputs published later, or were built from "
            "stale or missing upstream partitions"
        ),
        compared,
        failures[:20],
    )


def only_symbol(frame: pl.DataFrame, symbol: str) -> pl.DataFrame:
    """The rows of ``symbol`` in a frame keyed by symbol; a frame without symbols (macro) as it is."""
    if "symbol" in frame.columns and frame.schema["symbol"] == pl.Utf8:
        return frame.filter(pl.col("symbol") == symbol)
    return frame
