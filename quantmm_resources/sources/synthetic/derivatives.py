"""Seeded synthetic derivatives: funding settlements, open interest and derivatives metrics.

Pure numpy/polars (no Dagster, no I/O). Every frame is a window cut out of the per-symbol path of
``market.symbol_path`` (perp, spot, mark, open interest, positioning ratios), so it shares
that path's determinism and window invariance. Funding settles at 00/08/16 UTC (the first one 8h after
the origin) at clamp(mean premium over the 8 hours before settlement + ``FUNDING_INTEREST``,
+-``FUNDING_CAP``), against the mark at the settlement.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl

from quantmm_resources.sources.synthetic.base import SOURCE, ts_series
from quantmm_resources.sources.synthetic.market import BAR, BARS_PER_HOUR, SIGNAL_BETA, bar_range, path_through

FUNDING_INTEREST, FUNDING_CAP = 0.0001, 0.0075
FUNDING_HOURS = (0, 8, 16)
PERIOD = "5m"


def funding_frame(
    seed: int, symbol: str, origin: datetime, start: datetime, end: datetime, signal_beta: float = SIGNAL_BETA
) -> pl.DataFrame:
    """Return funding settlements at 00/08/16 UTC in [start, end) (the first one 8h after the origin)."""
    step = timedelta(hours=8)
    k0 = max(1, int(np.ceil((start - origin) / step)))
    k1 = max(k0, int(np.ceil((end - origin) / step)))
    per = 8 * BARS_PER_HOUR
    path = path_through(seed, symbol, origin, k1 * per, signal_beta)
    premium = (path.perp_close[: k1 * per] / path.spot_close[: k1 * per] - 1.0).reshape(-1, per).mean(axis=1)
    k = np.arange(k0, k1)
    rate = np.round(np.clip(premium[k - 1] + FUNDING_INTEREST, -FUNDING_CAP, FUNDING_CAP), 8)
    return pl.DataFrame(
        {
            "symbol": symbol,
            "ts_event": ts_series(origin, k, step),
            "funding_rate": rate,
            "mark_price": path.mark[k * per - 1],
            "source": SOURCE,
        }
    ).with_columns(pl.col("symbol", "source").cast(pl.Utf8))


def open_interest_frame(
    seed: int, symbol: str, origin: datetime, start: datetime, end: datetime, signal_beta: float = SIGNAL_BETA
) -> pl.DataFrame:
    """Return 5m open-interest snapshots (taken at each bar's close) for bars opening in [start, end)."""
    i0, i1 = bar_range(origin, start, end)
    path = path_through(seed, symbol, origin, i1, signal_beta)
    oi = path.open_interest[i0:i1]
    return pl.DataFrame(
        {
            "symbol": symbol,
            "period": PERIOD,
            "ts_event": ts_series(origin, np.arange(i0, i1), BAR),
            "open_interest": oi,
            "open_interest_value": np.round(oi * path.perp_close[i0:i1], 2),
            "source": SOURCE,
        }
    ).with_columns(pl.col("symbol", "period", "source").cast(pl.Utf8))


def derivatives_metrics_frame(
    seed: int, symbol: str, origin: datetime, start: datetime, end: datetime, signal_beta: float = SIGNAL_BETA
) -> pl.DataFrame:
    """Return 5m ratios, basis (perp - spot index) and mark price for periods starting in [start, end)."""
    i0, i1 = bar_range(origin, start, end)
    path = path_through(seed, symbol, origin, i1, signal_beta)
    index, perp = path.spot_close[i0:i1], path.perp_close[i0:i1]
    basis = np.round(perp - index, 8)
    rate = np.round(basis / index, 8)
    return pl.DataFrame(
        {
            "symbol": symbol,
            "period": PERIOD,
            "ts_event": ts_series(origin, np.arange(i0, i1), BAR),
            "long_short_account_ratio": path.ls_account[i0:i1],
            "top_long_short_account_ratio": path.top_ls_account[i0:i1],
            "top_long_short_position_ratio": path.top_ls_position[i0:i1],
            "taker_buy_sell_ratio": path.taker_ratio[i0:i1],
            "basis": basis,
            "basis_rate": rate,
            "annualized_basis_rate": np.round(rate * 3 * 365, 6),
            "mark_price": path.mark[i0:i1],
            "source": SOURCE,
        }
    ).with_columns(pl.col("symbol", "period", "source").cast(pl.Utf8))
