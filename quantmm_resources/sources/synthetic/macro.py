"""Seeded synthetic macro series: daily weekday observations of mean-reverting random walks.

Pure numpy/polars (no Dagster, no I/O). Independent of the market paths: each series draws one
shock per day from ``day_rng(seed, "macro", series_id, day)`` with ``day`` counted from the origin,
and the recursion is causal, so a window fetched alone equals the same window of a longer fetch.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl

from quantmm_resources.sources.synthetic.base import SOURCE, day_rng, ts_series

# Macro: (source start level, daily step sd, mean-reversion per day, long-run level, decimals, log scale).
MACRO_MODELS: dict[str, tuple[float, float, float, float, int, bool]] = {
    "vix": (13.5, 0.075, 0.05, 17.0, 2, True),
    "us10y": (4.19, 0.06, 0.01, 4.2, 2, False),
    "dollar_index": (127.0, 0.003, 0.002, 127.0, 4, True),
}


def macro_frame(
    seed: int, origin: datetime, start: datetime, end: datetime, source_series: dict[str, str]
) -> pl.DataFrame:
    """Return daily macro observations on weekdays in [start, end): independent random walks."""
    d0 = max(0, int(np.ceil((start - origin) / timedelta(days=1))))
    d1 = max(d0, int(np.ceil((end - origin) / timedelta(days=1))))
    days = np.arange(d1)
    weekday = (origin.weekday() + days) % 7 < 5
    keep = days[d0:][weekday[d0:]]
    frames = []
    for series_id, (level, sd, kappa, mean, decimals, log_scale) in MACRO_MODELS.items():
        eps = np.array([day_rng(seed, "macro", series_id, int(d)).standard_normal() for d in days]) * weekday
        x0, target = (np.log(level), np.log(mean)) if log_scale else (level, mean)
        # x[d] = x[d-1] + kappa * (target - x[d-1]) on weekdays + sd * eps[d]  (an AR(1) in x - target)
        phi = 1.0 - kappa * weekday
        x = np.empty(d1)
        prev = x0 - target
        for d in range(d1):
            prev = phi[d] * prev + sd * eps[d]
            x[d] = prev
        values = np.exp(x + target) if log_scale else x + target
        frames.append(
            pl.DataFrame(
                {
                    "series_id": series_id,
                    "ts_event": ts_series(origin, keep, timedelta(days=1)),
                    "value": np.round(values[keep], decimals),
                    "source_series": source_series[series_id],
                    "source": SOURCE,
                }
            )
        )
    if not frames:
        return pl.DataFrame()
    return pl.concat(frames).with_columns(pl.col("series_id", "source_series", "source").cast(pl.Utf8))
