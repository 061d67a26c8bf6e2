"""Correlation clusters of symbols for the allocator's cluster cap (correlation de-duplication).

Two symbols are *linked* when the Pearson correlation of their per-bar returns over the bars both have (finite
``ret`` at the same ``ts_event``) is at least the threshold; a pair with fewer than ``min_obs`` such bars, or with
constant returns on them, is not linked and a note says why. The comparison allows a rounding tolerance of
``CORR_TOL``, so that ``threshold = 1`` links perfectly correlated series (computed, their correlation may be
1 - 2e-16). Clusters are the connected components of the links
(single linkage); a symbol without returns is its own cluster. Cluster ids count from 0 in the order of each
cluster's smallest symbol, so the output does not depend on row order.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import polars as pl

RETURN_COLUMNS = ("symbol", "ts_event", "ret")
CORR_TOL = 1e-9


def _returns_matrix(returns: pl.DataFrame, symbols: list[str]) -> np.ndarray:
    """Return a (bars, symbols) matrix of returns, NaN where a symbol has no finite return at a bar."""
    missing = [c for c in RETURN_COLUMNS if c not in returns.columns]
    if missing:
        raise ValueError(f"returns: missing columns {missing}; expected {list(RETURN_COLUMNS)}")
    frame = returns.select(pl.col("symbol").cast(pl.Utf8), pl.col("ts_event"), pl.col("ret").cast(pl.Float64)).filter(
        pl.col("symbol").is_in(symbols) & pl.col("ts_event").is_not_null()
    )
    dup = frame.filter(pl.struct("symbol", "ts_event").is_duplicated())
    if dup.height:
        first = dup.row(0, named=True)
        raise ValueError(
            f"returns: {dup.height} duplicate (symbol, ts_event) rows, e.g. ({first['symbol']}, {first['ts_event']})"
        )
    out = np.full((0 if frame.is_empty() else frame["ts_event"].n_unique(), len(symbols)), np.nan)
    if frame.is_empty():
        return out
    wide = frame.pivot(on="symbol", index="ts_event", values="ret")
    for j, s in enumerate(symbols):
        if s in wide.columns:
            out[:, j] = wide[s].cast(pl.Float64).fill_null(np.nan).to_numpy()
    out[~np.isfinite(out)] = np.nan
    return out


def _correlation(x: np.ndarray, y: np.ndarray) -> float | None:
    """Return the Pearson correlation of x and y, None when either is constant."""
    xc, yc = x - x.mean(), y - y.mean()
    denom = math.sqrt(float(np.dot(xc, xc)) * float(np.dot(yc, yc)))
    return None if denom == 0.0 else float(np.dot(xc, yc)) / denom


def _find(parent: list[int], i: int) -> int:
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


def correlation_clusters(
    returns: pl.DataFrame | None, symbols: Iterable[str], threshold: float, min_obs: int
) -> tuple[dict[str, int], list[str]]:
    """Return the cluster id of each symbol and the notes (unlinked pairs, symbols without returns, clusters)."""
    names = sorted(set(symbols))
    if returns is None or returns.height == 0:
        return {s: i for i, s in enumerate(names)}, ["correlation: no returns given: every symbol is its own cluster"]
    matrix = _returns_matrix(returns, names)
    notes: list[str] = []
    has = ~np.isnan(matrix)
    present = [bool(has[:, j].any()) for j in range(len(names))]
    for j, s in enumerate(names):
        if not present[j]:
            notes.append(f"correlation: {s} has no returns: not linked")
    parent = list(range(len(names)))
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            if not (present[i] and present[j]):
                continue
            pair = f"{names[i]}-{names[j]}"
            mask = has[:, i] & has[:, j]
            n = int(mask.sum())
            if n < min_obs:
                notes.append(f"correlation: {pair} has {n} overlapping returns (< {min_obs}): not linked")
                continue
            corr = _correlation(matrix[mask, i], matrix[mask, j])
            if corr is None:
                notes.append(f"correlation: {pair} is undefined (constant returns over {n} bars): not linked")
            elif corr >= threshold - CORR_TOL:
                parent[_find(parent, j)] = _find(parent, i)
    ids: dict[int, int] = {}
    cluster = {s: ids.setdefault(_find(parent, k), len(ids)) for k, s in enumerate(names)}
    for cid in range(len(ids)):
        members = [s for s in names if cluster[s] == cid]
        if len(members) > 1:
            notes.append(f"correlation: cluster {cid} = {', '.join(members)} (return correlation >= {threshold:g})")
    return cluster, notes
