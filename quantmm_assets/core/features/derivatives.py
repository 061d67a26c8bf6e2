"""Derivatives features on the perp grid: funding, open interest, positioning ratios, basis, mark premium.

Pure polars (no Dagster, no I/O); the specification is ``docs/features.md`` ("Derivatives features").
Every value is taken from the source row *as of* ``t``: the row with the greatest ``ts_available <= t``
(ties: greatest ``ts_event``, then the finest ``period``), found with backward as-of joins, so a row never
sees anything published after ``t``. A row whose age reaches the family's search horizon (its look-back
minus one day) counts as absent, which makes every output independent of how much history is passed in.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl

from quantmm_assets.core.availability import PERIODS
from quantmm_assets.core.features.market import BAR, perp_grid, sequence_key

DERIVATIVES_LOOKBACK_DAYS: dict[str, int] = {"bars": 1, "funding": 9, "open_interest": 3, "derivatives_metrics": 3}
LIMITS: dict[str, timedelta] = {
    "funding": timedelta(hours=9),
    "oi": timedelta(hours=26),
    "ratios": timedelta(hours=2),
    "basis": timedelta(hours=2),
    "mark": timedelta(hours=2),
}
# A source row this old (or older) at the query instant counts as no row at all.
HORIZONS: dict[str, timedelta] = {
    "funding": timedelta(days=DERIVATIVES_LOOKBACK_DAYS["funding"] - 1),
    "open_interest": timedelta(days=DERIVATIVES_LOOKBACK_DAYS["open_interest"] - 1),
    "derivatives_metrics": timedelta(days=DERIVATIVES_LOOKBACK_DAYS["derivatives_metrics"] - 1),
}
FUNDING_Z_WINDOW = timedelta(days=7)
FUNDING_Z_MIN_N = 3
FUNDINGS_PER_YEAR = 1095.0  # 3 funding intervals a day
OI_WINDOWS = {"1h": timedelta(hours=1), "1d": timedelta(days=1)}
RATIOS = {
    "log_long_short_ratio": "long_short_account_ratio",
    "log_top_position_ratio": "top_long_short_position_ratio",
    "log_taker_ratio": "taker_buy_sell_ratio",
}
HOUR_US = 3_600_000_000.0

DERIVATIVES_FEATURES: tuple[str, ...] = (
    "funding_rate",
    "funding_change",
    "funding_z_7d",
    "funding_staleness_h",
    "funding_missing",
    "oi_log_change_1h",
    "oi_log_change_1d",
    "oi_staleness_h",
    "oi_missing",
    *RATIOS,
    "ratios_staleness_h",
    "ratios_missing",
    "basis_rate",
    "basis_reported",
    "basis_annualized",
    "basis_missing",
    "premium_to_mark",
    "mark_staleness_h",
    "mark_missing",
)
INT_FEATURES = frozenset(
    {"funding_missing", "oi_missing", "ratios_missing", "basis_reported", "basis_missing", "mark_missing"}
)


def latest_per_instant(src: pl.DataFrame, cols: list[str]) -> pl.DataFrame:
    """Return one row per ``(symbol, ts_available)``: the greatest ``ts_event``, then the finest ``period``.

    Output columns ``symbol, at`` (= ``ts_available``) and ``cols``, sorted by symbol, at.
    """
    if "period" in src.columns:
        micros = {k: int(v / timedelta(microseconds=1)) for k, v in PERIODS.items()}
        fineness = -pl.col("period").replace_strict(micros, default=None, return_dtype=pl.Int64).fill_null(2**62)
    else:
        fineness = pl.lit(0, dtype=pl.Int64)
    return (
        src.lazy()
        .with_columns(_fine=fineness)
        .sort("symbol", "ts_available", "ts_event", "_fine")
        .unique(subset=["symbol", "ts_available"], keep="last", maintain_order=True)
        .select("symbol", pl.col("ts_available").alias("at"), *cols)
        .collect()
    )


def asof(query: pl.DataFrame, rows: pl.DataFrame, horizon: timedelta) -> pl.DataFrame:
    """Return ``q``, ``at`` and the values of the as-of row of ``rows`` at each ``(symbol, q)`` of ``query``.

    ``rows`` is ``symbol, at, ...`` (see ``latest_per_instant``); the as-of row is the last with ``at <= q``,
    and one with ``q - at >= horizon`` counts as absent (all null). The result is aligned with ``query``.
    """
    value_cols = [c for c in rows.columns if c != "symbol"]
    joined = (
        query.select("symbol", "q")
        .with_row_index("_i")
        .sort("symbol", "q")
        .join_asof(rows, left_on="q", right_on="at", by="symbol", strategy="backward", check_sortedness=False)
        .sort("_i")
    )
    fresh = (pl.col("q") - pl.col("at")) < horizon
    return joined.select("q", *[pl.when(fresh).then(pl.col(c)).alias(c) for c in value_cols])


def staleness_h() -> pl.Expr:
    """Return ``(q - at) / 1h`` (Float64; null without a row)."""
    return (pl.col("q") - pl.col("at")).dt.total_microseconds().cast(pl.Float64) / HOUR_US


def within(limit: timedelta) -> pl.Expr:
    """Return whether the as-of row exists and is at most ``limit`` old."""
    return pl.col("at").is_not_null() & ((pl.col("q") - pl.col("at")) <= limit)


def funding_settlements(funding: pl.DataFrame) -> pl.DataFrame:
    """Return each settlement with its ``funding_change`` and ``funding_z_7d`` (from settlements known by then).

    The window of settlement tau is the settlements with ``ts_event`` in ``(tau - 7d, tau]`` and
    ``ts_available`` not later than tau's; the previous settlement is the latest of them before tau.
    """
    f = (
        funding.filter(pl.col("funding_rate").is_not_null() & pl.col("funding_rate").is_not_nan())
        .select("symbol", "ts_event", "ts_available", "funding_rate")
        .sort("symbol", "ts_event")
    )
    if f.is_empty():
        return f.with_columns(funding_change=pl.lit(None, pl.Float64), funding_z_7d=pl.lit(None, pl.Float64))
    key = sequence_key(f["symbol"], f["ts_event"], FUNDING_Z_WINDOW + timedelta(days=1))
    first = np.searchsorted(key, key - FUNDING_Z_WINDOW // timedelta(microseconds=1), side="right")
    count = np.arange(len(key)) - first + 1
    left = np.repeat(np.arange(len(key)), count)
    right = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count) + np.repeat(first, count)
    ev, av, rate = (f[c].to_numpy() for c in ("ts_event", "ts_available", "funding_rate"))
    pairs = pl.DataFrame(
        {"i": left, "rate": rate[right], "known": av[right] <= av[left], "before": ev[right] < ev[left]}
    ).filter("known")
    stats = pairs.group_by("i", maintain_order=True).agg(
        n=pl.len().cast(pl.Float64),
        s=pl.col("rate").sum(),
        sq=(pl.col("rate") * pl.col("rate")).sum(),
        constant=pl.col("rate").max() == pl.col("rate").min(),  # std exactly 0, whatever the round-off
        prev=pl.col("rate").filter("before").last(),
    )
    n, s, sq = pl.col("n"), pl.col("s"), pl.col("sq")
    sd = ((sq - s * s / n) / (n - 1)).clip(lower_bound=0.0).sqrt()
    z = pl.when((n >= FUNDING_Z_MIN_N) & (sd > 0) & ~pl.col("constant")).then((pl.col("funding_rate") - s / n) / sd)
    return (
        f.with_row_index("i")
        .join(stats, on="i", how="left")
        .select(
            "symbol",
            "ts_event",
            "ts_available",
            "funding_rate",
            (pl.col("funding_rate") - pl.col("prev")).alias("funding_change"),
            z.alias("funding_z_7d"),
        )
    )


def funding_block(grid: pl.DataFrame, funding: pl.DataFrame) -> pl.DataFrame:
    """Return the funding columns for the grid rows (``symbol, q``)."""
    cols = ["funding_rate", "funding_change", "funding_z_7d"]
    rows = latest_per_instant(funding_settlements(funding), cols)
    ok = within(LIMITS["funding"])
    return asof(grid, rows, HORIZONS["funding"]).select(
        *[pl.when(ok).then(pl.col(c)).alias(c) for c in cols],
        staleness_h().alias("funding_staleness_h"),
        (~ok).cast(pl.Int8).alias("funding_missing"),
    )


def oi_block(grid: pl.DataFrame, open_interest: pl.DataFrame) -> pl.DataFrame:
    """Return the open-interest columns: log changes of the value as of t against t - 1h and t - 1d."""
    value = pl.col("open_interest_value")
    rows = latest_per_instant(open_interest.filter(value.is_not_null() & value.is_not_nan()), ["open_interest_value"])
    horizon, limit = HORIZONS["open_interest"], LIMITS["oi"]
    now = asof(grid, rows, horizon).select(
        value.alias("v"), staleness_h().alias("oi_staleness_h"), within(limit).alias("ok")
    )
    past = {
        w: asof(grid.with_columns(pl.col("q") - d), rows, horizon).select(pl.when(within(limit)).then(value))
        for w, d in OI_WINDOWS.items()
    }
    ok = pl.col("ok")
    return now.with_columns(*[s.to_series().alias(f"v_{w}") for w, s in past.items()]).select(
        *[pl.when(ok).then((pl.col("v") / pl.col(f"v_{w}")).log()).alias(f"oi_log_change_{w}") for w in OI_WINDOWS],
        "oi_staleness_h",
        (~ok).cast(pl.Int8).alias("oi_missing"),
    )


def positive(col: str) -> pl.Expr:
    """Return whether ``col`` is non-null, not NaN and positive."""
    return pl.col(col).is_not_null() & pl.col(col).is_not_nan() & (pl.col(col) > 0)


def ratios_block(grid: pl.DataFrame, metrics: pl.DataFrame) -> pl.DataFrame:
    """Return the log positioning ratios, each from the latest row where that ratio is positive."""
    horizon, limit = HORIZONS["derivatives_metrics"], LIMITS["ratios"]
    out = {}
    for name, col in RATIOS.items():
        a = asof(grid, latest_per_instant(metrics.filter(positive(col)), [col]), horizon)
        out |= a.select(
            pl.when(within(limit)).then(pl.col(col).log()).alias(name), staleness_h().alias(f"{name}_stale")
        ).to_dict()
    frame = pl.DataFrame(out)
    stale = pl.coalesce("log_taker_ratio_stale", "log_long_short_ratio_stale")
    return frame.select(
        *RATIOS,
        stale.alias("ratios_staleness_h"),
        (stale.is_null() | (stale > limit / timedelta(hours=1))).cast(pl.Int8).alias("ratios_missing"),
    )


def basis_block(grid: pl.DataFrame, metrics: pl.DataFrame) -> pl.DataFrame:
    """Return the reported basis as of t when fresh, else the perp-vs-spot basis of the bars closing at t."""
    reported = latest_per_instant(
        metrics.filter(pl.col("basis_rate").is_not_null() & pl.col("basis_rate").is_not_nan()),
        ["basis_rate", "annualized_basis_rate"],
    )
    a = asof(grid, reported, HORIZONS["derivatives_metrics"])
    is_rep = within(LIMITS["basis"])
    fallback = (pl.col("perp_close") - pl.col("spot_close")) / pl.col("spot_close")
    rate = pl.when(is_rep).then(pl.col("basis_rate")).otherwise(fallback)
    annual = pl.when(is_rep).then(pl.coalesce("annualized_basis_rate", pl.col("basis_rate") * FUNDINGS_PER_YEAR))
    return (
        pl.concat([a, grid.select("perp_close", "spot_close")], how="horizontal")
        .select(
            rate.alias("basis_rate"),
            is_rep.cast(pl.Int8).alias("basis_reported"),
            annual.otherwise(fallback * FUNDINGS_PER_YEAR).alias("basis_annualized"),
        )
        .with_columns(basis_missing=pl.col("basis_rate").is_null().cast(pl.Int8))
    )


def mark_block(grid: pl.DataFrame, metrics: pl.DataFrame, perp: pl.DataFrame) -> pl.DataFrame:
    """Return ``ln(perp close at tau / mark)`` for the latest metrics row with a mark price, tau its ts_available."""
    rows = latest_per_instant(metrics.filter(positive("mark_price")), ["mark_price"])
    a = asof(grid, rows, HORIZONS["derivatives_metrics"])
    closes = perp.select("symbol", pl.col("t").alias("at"), pl.col("close").alias("close_at"))
    a = a.with_columns(grid["symbol"]).join(closes, on=["symbol", "at"], how="left", maintain_order="left")
    ok = within(LIMITS["mark"])
    return a.select(
        pl.when(ok).then((pl.col("close_at") / pl.col("mark_price")).log()).alias("premium_to_mark"),
        staleness_h().alias("mark_staleness_h"),
        (~ok).cast(pl.Int8).alias("mark_missing"),
    )


def closes(bars: pl.DataFrame, market: str, lo: datetime, end: datetime) -> pl.DataFrame:
    """Return ``symbol, t, close`` of the ``market`` bars closing in ``(lo, end)``."""
    t = pl.col("ts_event") + BAR
    return bars.filter((pl.col("market") == market) & (t > lo) & (t < end)).select("symbol", t.alias("t"), "close")


def derivatives_features(
    bars: pl.DataFrame,
    funding: pl.DataFrame,
    open_interest: pl.DataFrame,
    metrics: pl.DataFrame,
    start: datetime,
    end: datetime,
) -> pl.DataFrame:
    """Return ``symbol, ts_event, ts_available`` and ``DERIVATIVES_FEATURES`` on the perp grid of [start, end)."""
    lo = start - timedelta(days=DERIVATIVES_LOOKBACK_DAYS["bars"])
    perp, spot = closes(bars, "perp", lo, end), closes(bars, "spot", lo, end)
    grid = perp_grid(bars, start, end)
    q = (
        grid.select("symbol", pl.col("ts_event").alias("q"))
        .join(perp.rename({"t": "q", "close": "perp_close"}), on=["symbol", "q"], how="left", maintain_order="left")
        .join(spot.rename({"t": "q", "close": "spot_close"}), on=["symbol", "q"], how="left", maintain_order="left")
    )
    known = pl.col("ts_available") < end  # nothing later can be as of a row before end
    metrics = metrics.filter(known)
    blocks = [
        funding_block(q, funding.filter(known)),
        oi_block(q, open_interest.filter(known)),
        ratios_block(q, metrics),
        basis_block(q, metrics),
        mark_block(q, metrics, perp),
    ]
    out = pl.concat([grid, *blocks], how="horizontal")
    return out.select(
        "symbol",
        "ts_event",
        "ts_available",
        *[pl.col(c).cast(pl.Int8 if c in INT_FEATURES else pl.Float64) for c in DERIVATIVES_FEATURES],
    )
