"""How much evidence stands behind a Sharpe: windows that count, pooled for long horizons (DESIGN section 4).

A Sharpe from three trades is noise. The unit of evidence is a test window (a walk-forward fold) holding at least
``MIN_HELD_STEPS`` non-overlapping steps *in a position*. For horizons of 1d and more a 30-day window holds at most
30 (1d) or 4 (7d) steps, so consecutive windows are pooled, in fold order, until their held steps reach it; a
remainder that does not is pooled into the unit before it (nothing is thrown away), and with no unit at all the
series is insufficient. Shorter horizons are not pooled: a window with fewer held steps does not count.

Per (backbone, variant, symbol, horizon) the evidence is the Sharpe of each counted unit (over all of its steps,
flat ones included, as :func:`core.evaluation.metrics.sharpe_ratio`) and their mean. With fewer than
``MIN_UNITS`` units the verdict is ``insufficient evidence``, which is not evidence against: the data could not
tell. Otherwise ``evidence for`` when the mean unit Sharpe and the mean rank IC are both > 0, else
``evidence against``. Only ``evidence for`` ranks (see :func:`core.evaluation.report.rank_backbones`).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from quantmm_assets.core.evaluation.metrics import horizon_seconds, sharpe_ratio

MIN_HELD_STEPS = 30  # non-overlapping steps holding a position for a window (or pooled windows) to count
MIN_UNITS = 2  # counted windows below which a series is insufficient evidence (one mean of one window is no mean)
POOLED_FROM_SECONDS = 24 * 3600  # horizons of 1d and more pool consecutive windows
INSUFFICIENT, FOR, AGAINST = "insufficient evidence", "evidence for", "evidence against"
VERDICT_ORDER = {FOR: 0, AGAINST: 1, INSUFFICIENT: 2}
SERIES_KEYS = ("backbone", "variant", "symbol", "horizon")
EVIDENCE_SCHEMA: dict[str, pl.DataType] = {
    "backbone": pl.Utf8,
    "variant": pl.Utf8,
    "symbol": pl.Utf8,
    "horizon": pl.Utf8,
    "n_windows": pl.Int64,  # test windows (folds) with scored steps
    "n_counted": pl.Int64,  # evidence units: counted windows, or pooled runs of windows for 1d and more
    "n_steps": pl.Int64,
    "n_held": pl.Int64,  # steps holding a position
    "evidence_sharpe": pl.Float64,  # mean Sharpe over the counted units (null with none)
}


def units(held: list[int], pooled: bool) -> list[list[int]]:
    """Group window positions ``0..len(held)-1`` into evidence units (see the module docstring)."""
    if not pooled:
        return [[i] for i, n in enumerate(held) if n >= MIN_HELD_STEPS]
    out: list[list[int]] = []
    current: list[int] = []
    total = 0
    for i, n in enumerate(held):
        current.append(i)
        total += n
        if total >= MIN_HELD_STEPS:
            out.append(current)
            current, total = [], 0
    if current and out:
        out[-1].extend(current)
    return out


def _series(steps: pl.DataFrame, horizon: str) -> dict[str, object]:
    windows = steps.partition_by("fold", maintain_order=True)
    held = [int((w["position"] != 0).sum()) for w in windows]
    counted = units(held, horizon_seconds(horizon) >= POOLED_FROM_SECONDS)
    sharpes = []
    for unit in counted:
        pnl = np.concatenate([windows[i]["pnl"].to_numpy() for i in unit])
        value = sharpe_ratio(pnl, horizon)
        sharpes.append(np.nan if value is None else value)
    finite = [s for s in sharpes if np.isfinite(s)]
    return {
        "n_windows": len(windows),
        "n_counted": len(counted),
        "n_steps": steps.height,
        "n_held": sum(held),
        "evidence_sharpe": float(np.mean(finite)) if finite else None,
    }


def evidence_table(steps: pl.DataFrame) -> pl.DataFrame:
    """Return ``EVIDENCE_SCHEMA`` per series of the trading steps (:func:`core.evaluation.metrics.trading_steps`)."""
    rows = []
    for key, part in steps.sort([*SERIES_KEYS, "fold", "ts_event"]).group_by(SERIES_KEYS, maintain_order=True):
        rows.append({**dict(zip(SERIES_KEYS, key, strict=True)), **_series(part, str(key[3]))})
    return pl.DataFrame(rows, schema=EVIDENCE_SCHEMA)


def verdict(n_counted: pl.Expr, sharpe: pl.Expr, rank_ic: pl.Expr) -> pl.Expr:
    """The verdict of a series (see the module docstring) as a polars expression."""
    return (
        pl.when(n_counted < MIN_UNITS)
        .then(pl.lit(INSUFFICIENT))
        .when((sharpe > 0) & (rank_ic > 0))
        .then(pl.lit(FOR))
        .otherwise(pl.lit(AGAINST))
    )
