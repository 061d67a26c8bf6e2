"""Multi-horizon labels on the perp 5m grid (DESIGN section 3): forward return, forward realized vol, cost.

A label row is ``(symbol, t, horizon)`` with ``t`` the close of a perp 5m bar (the feature row time of
``docs/features.md``). For a horizon of ``k`` bars, ``h = k * 5m``:

- ``ret = ln(close_{t+h} / close_t)``, the close of the perp bar closing *exactly* at ``t + h`` (else null);
- ``rv = sqrt(sum of r1^2 over bars closing in (t, t+h])`` with ``r1_u = ln(close_u / close_{u-5m})`` (exact
  previous bar), null unless all ``k`` bars of ``(t, t+h]`` are present;
- ``cost`` = :func:`core.costs.round_trip_cost` with the ``cs_spread_1d`` feature at ``(symbol, t)``;
- ``funding`` (DESIGN's ``funding_h``) = the funding rates a long pays at the settlements in ``(t, t+h]``
  (:mod:`core.funding`; null where the funding rows do not cover the window, or when no funding rows are given);
- ``ts_available = t + h`` (the instant the label is known), ``complete = ret and rv non-null``.

The gross ``ret`` is the label: the cost and the funding are charged by the evaluation (by side), never subtracted
here; ``complete`` does not depend on ``funding`` (a model learns ``ret`` and ``rv``; a row of unknown funding is
left out of the PnL). Nothing is
invented past the data: a forward window running past the last bar gives null ``ret`` / ``rv``.
Vectorized: forward values are exact-time joins on ``t + h`` of trailing ``(s - h, s]`` rolling sums.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

from quantmm_assets.core.costs import CostConfig, round_trip_cost
from quantmm_assets.core.funding import window_funding
from quantmm_assets.core.schemas import UTC_TS

BAR = timedelta(minutes=5)
HORIZONS: dict[str, int] = {"1h": 12, "4h": 48, "1d": 288, "7d": 2016}  # in 5m bars
LABEL_LOOKAHEAD_DAYS = 8  # look-ahead the label build needs past the partition end (longest horizon + margin)

LABEL_SCHEMA: dict[str, pl.DataType] = {
    "symbol": pl.Utf8,
    "ts_event": UTC_TS,
    "horizon": pl.Utf8,
    "ts_available": UTC_TS,
    "ret": pl.Float64,
    "rv": pl.Float64,
    "cost": pl.Float64,
    "funding": pl.Float64,
    "complete": pl.Boolean,
}


def as_utc(ts: datetime) -> datetime:
    """Return ``ts`` as an aware UTC datetime (a naive one is taken as UTC)."""
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def _perp_closes(bars: pl.DataFrame, lo: datetime, hi: datetime) -> pl.LazyFrame:
    """Return perp bars closing in ``[lo, hi)`` as ``symbol, t`` (close time), ``close``, sorted."""
    t = pl.col("ts_event").cast(UTC_TS) + BAR
    return (
        bars.lazy()
        .filter((pl.col("market") == "perp") & (t >= lo) & (t < hi))
        .select("symbol", t.alias("t"), pl.col("close").cast(pl.Float64))
        .sort("symbol", "t")
    )


def _collect_unique(lf: pl.LazyFrame, what: str) -> pl.DataFrame:
    """Collect a plan whose m:1 joins validate a key, re-raising a failed validation as ValueError."""
    try:
        return lf.collect()
    except pl.exceptions.ComputeError as exc:
        if "validation" not in str(exc):
            raise
        raise ValueError(what) from exc


def labels_multi_horizon(
    bars: pl.DataFrame,
    spread: pl.DataFrame,
    start: datetime,
    end: datetime,
    cost: CostConfig,
    horizons: dict[str, int] = HORIZONS,
    funding: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Return the long label frame (``LABEL_SCHEMA``) for perp bars closing in ``[start, end)``.

    ``bars`` is ``market_bars_5m`` (spot rows are ignored) and should hold the look-ahead up to
    ``end + longest horizon``; ``spread`` has ``symbol, ts_event, cs_spread_1d`` (a missing or null spread
    counts as 0 impact); ``funding`` is ``funding_rates`` from at least one settlement interval before ``start`` to
    ``end + longest horizon`` (None: every ``funding`` null). Rows are sorted by symbol, ts_event and horizon (in
    the order of ``horizons``).
    """
    start, end = as_utc(start), as_utc(end)
    if not horizons:
        raise ValueError("labels_multi_horizon needs at least one horizon")
    if any(k <= 0 for k in horizons.values()):
        raise ValueError(f"horizons must be positive bar counts, got {horizons}")
    longest = max(horizons.values()) * BAR
    # Bars closing in [start, end + longest): the rows, their forward closes and every r1 of their windows
    # (r1 at u needs the close at u - 5m >= t >= start, so nothing before start is needed).
    base = _perp_closes(bars, start, end + longest).collect().lazy()
    prev = base.select("symbol", (pl.col("t") + BAR).alias("t"), pl.col("close").alias("close_prev"))
    r2 = (pl.col("close") / pl.col("close_prev")).log().fill_nan(None).pow(2)
    lf = base.join(prev, on=["symbol", "t"], how="left", validate="m:1", maintain_order="left").with_columns(r2=r2)
    trailing = []
    for name, k in horizons.items():
        window = k * BAR
        trailing += [
            pl.col("r2").fill_null(0.0).rolling_sum_by("t", window, closed="right").over("symbol").alias(f"s_{name}"),
            pl.col("r2")
            .is_not_null()
            .cast(pl.Int64)
            .rolling_sum_by("t", window, closed="right")
            .over("symbol")
            .alias(f"n_{name}"),
        ]
    lf = _collect_unique(lf.with_columns(trailing), "bars: duplicate perp bars (symbol, ts_event)").lazy()
    sp = spread.lazy().select(
        "symbol", pl.col("ts_event").cast(UTC_TS).alias("t"), pl.col("cs_spread_1d").cast(pl.Float64)
    )
    rows = lf.filter(pl.col("t") < end).select("symbol", "t", "close")
    rows = rows.join(sp, on=["symbol", "t"], how="left", validate="m:1", maintain_order="left")
    rows = _collect_unique(rows, "spread: duplicate (symbol, ts_event) rows").lazy()
    parts = []
    for name, k in horizons.items():
        h = k * BAR
        fwd = lf.select(
            "symbol",
            (pl.col("t") - h).alias("t"),
            pl.col("close").alias("close_fwd"),
            pl.col(f"s_{name}").alias("s"),
            pl.col(f"n_{name}").alias("n"),
        )
        ret = (pl.col("close_fwd") / pl.col("close")).log().fill_nan(None)
        rv = pl.when(pl.col("n") == k).then(pl.col("s").sqrt()).fill_nan(None)
        part = (
            rows.join(fwd, on=["symbol", "t"], how="left", validate="m:1", maintain_order="left")
            .select(
                "symbol",
                pl.col("t").alias("ts_event"),
                pl.lit(name, pl.Utf8).alias("horizon"),
                (pl.col("t") + h).alias("ts_available"),
                ret.alias("ret"),
                rv.alias("rv"),
                round_trip_cost(pl.col("cs_spread_1d"), h, cost).alias("cost"),
            )
            .with_columns(complete=pl.col("ret").is_not_null() & pl.col("rv").is_not_null())
        )
        parts.append(part)
    # Every part has the rows' (symbol, t) order: interleave them into (symbol, t, horizon) order by a gather.
    out = pl.concat(pl.collect_all(parts))
    n_rows, n_h = out.height // len(parts), len(parts)
    order = (np.arange(n_rows)[:, None] + np.arange(n_h)[None, :] * n_rows).ravel()
    out = out[order]
    span = pl.col("horizon").replace_strict({n: k * BAR // timedelta(microseconds=1) for n, k in horizons.items()})
    out = out.with_columns(window_funding(funding, out.with_columns(span.cast(pl.Int64).alias("horizon_us"))))
    return out.select([pl.col(c).cast(dt) for c, dt in LABEL_SCHEMA.items()])
