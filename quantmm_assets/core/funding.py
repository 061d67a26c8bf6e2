"""Funding a perpetual position pays over a holding window (DESIGN section 3: ``funding_h``).

A long position held over ``(a, b]`` pays, at each funding settlement ``s`` with ``a < s <= b``, the settlement's
rate times its notional (a short receives it; a negative rate reverses both). ``funding_h`` is the sum of those
rates, a fraction of notional, with the sign a *long* pays: the PnL of a position ``p`` is charged ``p * funding_h``.

Settlement instants are the funding rows' ``ts_event`` as stored (a rate is final, and known, at its settlement:
``core.availability.funding_available``), so ``funding_h`` over ``(t, t + h]`` is known at ``t + h`` like the other
labels. A settlement stamped a few milliseconds after ``t`` counts as held by a position opened at ``t``.

Nothing is invented: ``funding_h`` is null (unknown) unless the rows cover the window, that is a settlement at or
before ``a`` exists, no two consecutive settlements from it to the last one at or before ``b`` are more than
``MAX_SETTLEMENT_GAP`` apart (a longer gap is missing data, as the features' funding staleness says), and ``b`` is
less than one settlement interval (the gap before the last settlement) after the last settlement, so a settlement
that is due inside the window and missing makes the window unknown, not free. Null or NaN rates count as missing
settlements.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import polars as pl

from quantmm_assets.core.schemas import UTC_TS

MAX_SETTLEMENT_GAP = timedelta(hours=9)  # the features' funding staleness limit (core.features.derivatives)
_MAX_GAP_US = MAX_SETTLEMENT_GAP // timedelta(microseconds=1)


def settlements(funding: pl.DataFrame) -> pl.DataFrame:
    """Return ``symbol, ts_event, funding_rate`` of the usable settlements in time order; raise on a duplicate key."""
    rows = (
        funding.select("symbol", pl.col("ts_event").cast(UTC_TS), pl.col("funding_rate").cast(pl.Float64))
        .filter(pl.col("funding_rate").is_finite())
        .sort("ts_event")  # per symbol too: window_funding splits it by symbol, keeping the order
    )
    if rows.select(pl.struct("symbol", "ts_event").is_duplicated().any()).item():
        raise ValueError("funding: duplicate settlements (symbol, ts_event)")
    return rows


def _one_symbol(s_us: np.ndarray, rate: np.ndarray, a_us: np.ndarray, b_us: np.ndarray) -> np.ndarray:
    """``funding_h`` over ``(a, b]`` for one symbol's sorted settlements (NaN where the rows do not cover it)."""
    out = np.full(a_us.shape, np.nan)
    if not s_us.size:
        return out
    cum = np.cumsum(rate)  # cum[i]: the rates of settlements 0..i
    gap = np.diff(s_us, prepend=s_us[0])  # gap[i] = s[i] - s[i - 1] (0 for the first, never read)
    too_long = np.cumsum(gap > _MAX_GAP_US)  # too_long[i]: gaps longer than the limit up to settlement i
    i_a = np.searchsorted(s_us, a_us, side="right") - 1  # last settlement at or before a
    i_b = np.searchsorted(s_us, b_us, side="right") - 1  # last settlement at or before b
    ok = i_a >= 0
    ia, ib = np.where(ok, i_a, 0), np.where(ok, i_b, 0)
    ok &= too_long[ib] == too_long[ia]  # no missing settlement between them
    interval = np.where(ib > 0, gap[ib], _MAX_GAP_US)  # the settlement interval in force at b
    ok &= b_us - s_us[ib] < np.minimum(interval, _MAX_GAP_US)  # none due in (s_last, b] is missing
    out[ok] = (cum[ib] - cum[ia])[ok]
    return out


def window_funding(funding: pl.DataFrame | None, rows: pl.DataFrame, horizon: str = "horizon_us") -> pl.Series:
    """Return ``funding_h`` of each row of ``rows`` (``symbol``, ``ts_event`` = ``a``, and an Int64 column
    ``horizon`` of microseconds: ``b = a + h``) as a Float64 series (null where unknown; all null without rows)."""
    if funding is None or rows.is_empty():
        return pl.Series("funding", [None] * rows.height, pl.Float64)
    table = settlements(funding)
    a_all = rows["ts_event"].cast(UTC_TS).dt.epoch("us").to_numpy()
    b_all = a_all + rows[horizon].to_numpy()
    out = np.full(rows.height, np.nan)
    symbol = rows["symbol"].to_numpy()
    by_symbol = {key: part for (key,), part in table.partition_by("symbol", as_dict=True).items()}
    for name in np.unique(symbol):
        mine = symbol == name
        part = by_symbol.get(name)
        if part is not None:
            s_us = part["ts_event"].dt.epoch("us").to_numpy()
            out[mine] = _one_symbol(s_us, part["funding_rate"].to_numpy(), a_all[mine], b_all[mine])
    return pl.Series("funding", out, pl.Float64).fill_nan(None)
