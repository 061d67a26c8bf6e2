"""Pool text embeddings into per-time post and comment latents of one symbol (sparse 5m grid).

Pure numpy/scipy/polars (no Dagster, no I/O). At each grid time ``t`` the posts (and, separately, the
comments) available in ``(t - window, t]`` are averaged with the weights of ``core.text.features``:
``1 + ln(1 + max(engagement, 0))`` once the engagement is observed (``engagement_observed_at <= t``), else 1.
The item-to-row memberships form a sparse weight matrix (about ``window / 5m`` entries per item), so every row
is one sparse product away, with no loop over the grid.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl
from scipy import sparse

from quantmm_assets.core.schemas import UTC_TS
from quantmm_assets.core.text.features import STEP, grid_index, grid_size, observed_engagement


def latent_schema(dim: int) -> dict[str, pl.DataType]:
    """Columns of ``pool_latents`` for embeddings of width ``dim``."""
    return {
        "symbol": pl.Utf8,
        "ts_event": UTC_TS,
        "ts_available": UTC_TS,
        "post_latent": pl.Array(pl.Float32, dim),
        "comment_latent": pl.Array(pl.Float32, dim),
        "post_n": pl.Int32,
        "comment_n": pl.Int32,
    }


def _memberships(k_in: np.ndarray, k_out: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (item, k) for every grid index k in ``[k_in, k_out)`` clipped to ``[0, n)``."""
    lo, hi = np.clip(k_in, 0, n), np.clip(k_out, 0, n)
    lengths = np.maximum(hi - lo, 0)
    item = np.repeat(np.arange(len(lo)), lengths)
    first = np.repeat(np.cumsum(lengths) - lengths, lengths)
    k = np.repeat(lo, lengths) + (np.arange(len(item)) - first)
    return item, k


def _array_column(name: str, values: np.ndarray, present: np.ndarray, dim: int) -> pl.Series:
    """A ``pl.Array(Float32, dim)`` column from a 2D array; rows where ``present`` is False are null."""
    flat = pl.Series(name, values.astype(np.float32, copy=False).reshape(-1))
    col = flat.reshape((len(values), dim)) if len(values) else pl.Series(name, [], dtype=pl.Array(pl.Float32, dim))
    return pl.select(pl.when(pl.Series(present)).then(col).otherwise(None).alias(name)).to_series()


def pool_latents(
    items: pl.DataFrame,
    vectors: np.ndarray,
    symbol: str,
    start: datetime,
    end: datetime,
    window: timedelta = timedelta(hours=1),
) -> pl.DataFrame:
    """Weighted mean post and comment embeddings at the grid times ``start + i * 5m < end`` that have text.

    ``vectors[i]`` embeds ``items`` row ``i`` (``core.text.scoring.text_items`` rows). A row is emitted for
    every grid time with at least one item available in ``(t - window, t]``; a kind without items there has a
    null latent and a zero count.
    """
    vectors = np.asarray(vectors)
    if vectors.ndim != 2 or len(vectors) != len(items):
        raise ValueError(f"vectors must be [len(items), d]; got {vectors.shape} for {len(items)} items")
    dim = vectors.shape[1]
    n = grid_size(start, end)
    k_in = grid_index(items["ts_available"], start)  # first t >= ts_available
    k_out = grid_index(items["ts_available"] + window, start)  # first t >= ts_available + window (exclusive)
    k_seen = grid_index(items["engagement_observed_at"], start)  # first t >= observed_at
    item, k = _memberships(k_in, k_out, n)
    weight = 1.0 + np.log1p(observed_engagement(items))[item] * (k >= k_seen[item])
    is_post = (items["kind"] == "post").fill_null(False).to_numpy().astype(bool)[item]
    active = np.unique(k)
    row = np.searchsorted(active, k)
    n_rows = len(active)

    wide = vectors.astype(np.float64)
    pooled = {}
    for kind, mask in (("post", is_post), ("comment", ~is_post)):
        w = sparse.csr_array((weight[mask], (row[mask], item[mask])), shape=(n_rows, len(items)))
        total = np.asarray(w.sum(axis=1)).reshape(-1)
        summed = w @ wide
        with np.errstate(divide="ignore", invalid="ignore"):
            mean = np.where(total[:, None] > 0, summed / total[:, None], 0.0)
        count = np.bincount(row[mask], minlength=n_rows).astype(np.int32)
        pooled[kind] = (_array_column(f"{kind}_latent", mean, count > 0, dim), count)

    step = pl.Series(active.astype(np.int64) * (STEP // timedelta(microseconds=1))).cast(pl.Duration("us"))
    times = pl.Series([start] * n_rows, dtype=UTC_TS) + step if n_rows else pl.Series([], dtype=UTC_TS)
    frame = pl.DataFrame(
        {
            "symbol": pl.Series([symbol] * n_rows, dtype=pl.Utf8),
            "ts_event": times,
            "ts_available": times,
            "post_latent": pooled["post"][0],
            "comment_latent": pooled["comment"][0],
            "post_n": pl.Series(pooled["post"][1], dtype=pl.Int32),
            "comment_n": pl.Series(pooled["comment"][1], dtype=pl.Int32),
        }
    )
    return frame.cast(latent_schema(dim))
