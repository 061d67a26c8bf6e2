"""Text features of one symbol on a dense 5m grid, from the scored items of ``core.text.scoring``.

Pure numpy/polars (no Dagster, no I/O), no loops over rows. An item counts in bucket ``t`` when its
``ts_available`` is in ``(t - 5m, t]``; a window ``W`` at ``t`` is ``(t - W, t]``, i.e. the last ``W / 5m``
buckets. Windows are evaluated by expansion: an item in bucket ``k`` is paired with the grid indices
``k .. k + W/5m - 1`` whose window holds it, and a ``bincount`` of the pairs gives every row's window sum
at once. Each row's sum thus adds only the items of its own window (no long cumulative sums), so a row does
not depend, even in the last bit, on older history or on the chosen ``start``.

Engagement is point-in-time: an item's engagement counts at ``t`` only when it is non-null and was observed
at or before ``t`` (``engagement_observed_at <= t``), so its active range starts at the later of its
availability and its observation. ``sym_*`` features read the items linked to the symbol, ``mkt_*`` the
market-wide items linked to no symbol. Rows at ``t`` depend only on items with ``ts_available <= t``; only
items of the last ``TEXT_LOOKBACK_DAYS`` before ``start`` matter (1 day for the burst z-scores).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

from quantmm_assets.core.schemas import UTC_TS

TEXT_LOOKBACK_DAYS = 2
STEP = timedelta(minutes=5)
HOUR_BUCKETS = 12  # 1h window
BURST_BUCKETS = 288  # 1d window of the burst z-scores
TEXT_BUCKET_FEATURES: tuple[str, ...] = (
    "sym_post_count",
    "sym_comment_count",
    "mkt_post_count",
    "mkt_comment_count",
    "sym_unique_authors_1h",
    "sym_comment_post_ratio_1h",
    "sym_sentiment_1h",
    "mkt_sentiment_1h",
    "sym_engagement_growth_1h",
    "sym_event_density_1h",
    "sym_burst_z_1d",
    "mkt_burst_z_1d",
)
_INT_FEATURES = ("sym_post_count", "sym_comment_count", "mkt_post_count", "mkt_comment_count", "sym_unique_authors_1h")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NEVER = np.iinfo(np.int64).max // 4  # grid index of "not observed"


def to_us(ts: datetime) -> int:
    """Microseconds since the epoch of a tz-aware datetime (exact integer arithmetic)."""
    if ts.tzinfo is None:
        raise ValueError(f"expected a tz-aware UTC datetime, got naive {ts!r}")
    return (ts - _EPOCH) // timedelta(microseconds=1)


def grid_size(start: datetime, end: datetime, step: timedelta = STEP) -> int:
    """Number of grid times ``start + i * step`` before ``end``."""
    return max(0, -(-(to_us(end) - to_us(start)) // (step // timedelta(microseconds=1))))


def grid_index(ts: pl.Series, start: datetime, step: timedelta = STEP) -> np.ndarray:
    """Index of the first grid time ``start + k * step`` at or after each instant (int64; null -> far future)."""
    us = ts.cast(UTC_TS).dt.epoch("us")
    mask = us.is_null().to_numpy()
    raw = us.fill_null(0).to_numpy().astype(np.int64) - to_us(start)
    k = -((-raw) // (step // timedelta(microseconds=1)))
    return np.where(mask, _NEVER, k)


def observed_engagement(items: pl.DataFrame) -> np.ndarray:
    """``max(engagement, 0)`` per item as float; 0 where engagement or its observation time is null."""
    ok = pl.col("engagement").is_not_null() & pl.col("engagement_observed_at").is_not_null()
    expr = pl.when(ok).then(pl.col("engagement").clip(lower_bound=0).cast(pl.Float64)).otherwise(0.0)
    return items.select(expr.alias("e"))["e"].to_numpy().astype(np.float64)


def expand(k: np.ndarray, lo: int, hi: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (item, j) for every grid index ``j`` in ``[k + lo, k + hi)`` within ``[0, size)``."""
    width = hi - lo
    item = np.repeat(np.arange(len(k)), width)
    j = np.repeat(k, width) + lo + np.tile(np.arange(width), len(k))
    keep = (j >= 0) & (j < size)
    return item[keep], j[keep]


def _sum(j: np.ndarray, weights: np.ndarray, size: int) -> np.ndarray:
    """Per grid index: the sum of ``weights`` of the pairs at it (only the items of that window, in item order)."""
    return np.bincount(j, weights=weights, minlength=size).astype(np.float64)


def _unique_authors(author: pl.Series, item: np.ndarray, j: np.ndarray, size: int) -> np.ndarray:
    """Per grid index: distinct non-null authors among the pairs (item, j)."""
    codes = author.rank("dense").cast(pl.Int64).fill_null(-1).to_numpy()
    a = codes[item]
    pairs = np.unique(a[a >= 0] * size + j[a >= 0])
    return np.bincount(pairs % size, minlength=size).astype(np.float64)


def _zscore(counts: np.ndarray, width: int) -> np.ndarray:
    """z of each count against the trailing ``width`` counts (itself included); sample std; nan when std = 0."""
    c = counts.astype(np.int64)
    cs = np.concatenate([[0], np.cumsum(c)])
    cs2 = np.concatenate([[0], np.cumsum(c * c)])
    j = np.arange(width - 1, len(c))
    s = cs[j + 1] - cs[j + 1 - width]
    ss = cs2[j + 1] - cs2[j + 1 - width]
    scaled_var = width * ss - s * s  # width * (width - 1) * sample variance, exact in integers
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (c[j] - s / width) / np.sqrt(scaled_var / (width * (width - 1.0)))
    return np.concatenate([np.full(width - 1, np.nan), np.where(scaled_var > 0, z, np.nan)])


def _grid(start: datetime, n: int) -> pl.Series:
    """The grid times ``start + i * 5m``, i < n, as UTC microseconds."""
    base = pl.Series([start] * n, dtype=UTC_TS) if n else pl.Series([], dtype=UTC_TS)
    return base + pl.Series(np.arange(n, dtype=np.int64) * (STEP // timedelta(microseconds=1))).cast(pl.Duration("us"))


def text_bucket_features(items: pl.DataFrame, symbol: str, start: datetime, end: datetime) -> pl.DataFrame:
    """Dense 5m rows ``t = start, start + 5m, ... < end`` of ``TEXT_BUCKET_FEATURES`` for ``symbol``.

    ``items`` are ``core.text.scoring.text_items`` rows (any history; only the last day before ``start``
    is read). Counts are Int32; ratios, sentiments, growth, density and z-scores Float64 (null where undefined).
    """
    n = grid_size(start, end)
    off = BURST_BUCKETS  # array index j = grid index k + off: buckets from one day before start
    size = n + off
    if "symbol" in items.columns:
        items = items.filter(pl.col("symbol") == symbol)
    k = grid_index(items["ts_available"], start) + off
    keep = (k >= 0) & (k < size)
    items, k = items.filter(pl.Series(keep, dtype=pl.Boolean)), k[keep]
    ke = np.maximum(grid_index(items["engagement_observed_at"], start) + off, k)  # engagement known from here
    eng = observed_engagement(items)  # max(engagement, 0), 0 when unobserved
    lg = np.log1p(eng)  # weight 1 + lg once the engagement is observed
    linked = items["linked"].fill_null(False).to_numpy().astype(bool)
    post = (items["kind"] == "post").fill_null(False).to_numpy().astype(bool)
    senti = items["sentiment"].fill_null(0.0).to_numpy().astype(np.float64)
    tokens = items["tokens"].cast(pl.Float64).fill_null(0.0).to_numpy()
    events = items["event_words"].cast(pl.Float64).fill_null(0.0).to_numpy()
    h = HOUR_BUCKETS
    item, j = expand(k, 0, h, size)  # item i is in the 1h window of j
    seen = j >= ke[item]  # its engagement observed by then
    w = 1.0 + lg[item] * seen
    sym = linked[item]

    out: dict[str, np.ndarray] = {}
    for side, m in (("sym", linked), ("mkt", ~linked)):
        for kind, km in (("post", post), ("comment", ~post)):
            out[f"{side}_{kind}_count"] = np.bincount(k[m & km], minlength=size).astype(np.float64)
        total = out[f"{side}_post_count"] + out[f"{side}_comment_count"]
        out[f"{side}_burst_z_1d"] = _zscore(total, BURST_BUCKETS)
        pm = m[item]
        num, den = _sum(j[pm], (w * senti[item])[pm], size), _sum(j[pm], w[pm], size)
        with np.errstate(divide="ignore", invalid="ignore"):
            out[f"{side}_sentiment_1h"] = np.where(den > 0, num / den, np.nan)

    out["sym_unique_authors_1h"] = _unique_authors(items["author"], item[sym], j[sym], size)
    posts_1h = _sum(j[sym], post[item][sym].astype(np.float64), size)
    comments_1h = _sum(j[sym], (~post[item][sym]).astype(np.float64), size)
    out["sym_comment_post_ratio_1h"] = comments_1h / (posts_1h + 1.0)
    e_now = _sum(j[sym], (eng[item] * seen)[sym], size)  # available in (t - 1h, t], observed by t
    item2, j2 = expand(k, h, 2 * h, size)  # available in (t - 2h, t - 1h]
    sym2 = linked[item2]
    e_prev = _sum(j2[sym2], (eng[item2] * (j2 >= ke[item2]))[sym2], size)
    out["sym_engagement_growth_1h"] = np.log1p(e_now) - np.log1p(e_prev)
    tok_1h = _sum(j[sym], tokens[item][sym], size)
    ev_1h = _sum(j[sym], events[item][sym], size)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["sym_event_density_1h"] = np.where(tok_1h > 0, ev_1h / tok_1h, np.nan)

    times = _grid(start, n)
    columns = {
        name: pl.Series(name, np.rint(v[off:]) if name in _INT_FEATURES else v[off:], nan_to_null=True)
        for name, v in ((f, out[f]) for f in TEXT_BUCKET_FEATURES)
    }
    frame = pl.DataFrame(
        {"symbol": pl.Series([symbol] * n, dtype=pl.Utf8), "ts_event": times, "ts_available": times, **columns}
    )
    return frame.with_columns([pl.col(c).cast(pl.Int32) for c in _INT_FEATURES])
