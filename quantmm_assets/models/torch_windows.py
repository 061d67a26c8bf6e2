"""Windows of the 5-minute feature matrix for the torch backbones, gathered lazily per batch (DESIGN section 3).

The window of row ``i`` holds the rows of the same symbol at ``t_i, t_i - 5m, ..., t_i - (L - 1) * 5m`` (oldest
first, row ``i`` last); a grid time without a row is all zeros with its ``present`` channel 0. Rows after
``t_i`` are never looked up. Only ``(B, L)`` row indices and a ``(B, L, C)`` batch exist at a time: the
``n x L x f`` tensor is never materialized.

:class:`WindowPrep` holds everything fitted for a network's inputs and targets, on train rows only: the base flat
feature median / scale and missing-indicator columns (the window holds the base columns only, never the text flat
columns ``TEXT_FLAT_COLUMNS``: y_base must not see text), the known symbols, the text projection
(:func:`~quantmm_assets.models.fusion.fit_projection`), the median / scale of the text flat columns (delta inputs
beside the projected latents; fitted on the train rows with text), the count-column scalers of the gate and the
target scales (``ret`` by its train std per horizon, ``log rv`` by its train mean / std). Without a text path no
text flat column is used anywhere. :func:`make_batch` turns rows
into tensors and :class:`BatchStream` yields seeded shuffled training batches of them.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from quantmm_assets.models.data import ModelData, base_and_text_columns
from quantmm_assets.models.fusion import COUNT_COLUMNS, MIN_TEXT_ROWS, TextProjection, fit_projection

GRID_US = 300_000_000  # 5 minutes in microseconds
CLIP = 10.0  # standardized features are clipped to +-CLIP
MAX_PROJECTION_ROWS = 50_000  # the text PCA is fitted on at most this many evenly spaced train rows with text
LOG_RV_FLOOR = 1e-8


def row_step_us(t: np.ndarray, symbol_code: np.ndarray) -> int:
    """Return the rows' time step: the median gap between consecutive rows of a symbol (5m rows: 5 minutes,
    hourly rows: an hour), at least the 5-minute grid. A window is ``input_size`` steps of it."""
    order = np.lexsort((t, symbol_code))
    gaps = np.diff(t[order].astype(np.int64))[np.diff(symbol_code[order]) == 0]
    gaps = gaps[gaps > 0]
    return max(GRID_US, int(np.median(gaps))) if len(gaps) else GRID_US


class WindowIndex:
    """Look up the grid rows of each row's window in one :class:`ModelData` (built per data, never stored)."""

    def __init__(self, t: np.ndarray, symbol_code: np.ndarray, input_size: int, step_us: int = GRID_US) -> None:
        self.input_size, self.step_us = int(input_size), int(step_us)
        code = symbol_code.astype(np.int64) - (int(symbol_code.min()) if len(symbol_code) else 0)
        t0 = int(t.min()) if len(t) else 0
        margin = self.input_size * self.step_us
        self.span = (int(t.max()) - t0 if len(t) else 0) + margin + 1
        if (int(code.max()) + 1 if len(code) else 1) * self.span >= 2**62:
            raise ValueError("WindowIndex: time span x symbols overflows the int64 row keys")
        keys = code * self.span + (t.astype(np.int64) - t0 + margin)
        self.order = np.argsort(keys, kind="stable")
        self.sorted_keys = keys[self.order]
        self.keys = keys

    def rows(self, idx: np.ndarray) -> np.ndarray:
        """Return the (len(idx), L) row indices of the windows of ``idx`` (oldest first), -1 where absent."""
        lags = np.arange(self.input_size - 1, -1, -1, dtype=np.int64) * self.step_us
        wanted = self.keys[idx][:, None] - lags[None, :]
        pos = np.clip(np.searchsorted(self.sorted_keys, wanted), 0, len(self.sorted_keys) - 1)
        found = self.sorted_keys[pos] == wanted
        return np.where(found, self.order[pos], -1)


def _robust_scale(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the per-column nan-median and scale (IQR / 1.349, else std, else 1) of ``x``."""
    f = x.shape[1]
    if not len(x) or not f:
        return np.zeros(f), np.ones(f)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
        med = np.nanmedian(x, axis=0)
        q75, q25 = np.nanpercentile(x, [75, 25], axis=0)
        std = np.nanstd(x, axis=0)
    scale = (q75 - q25) / 1.349
    scale = np.where(np.isfinite(scale) & (scale > 1e-12), scale, std)
    scale = np.where(np.isfinite(scale) & (scale > 1e-12), scale, 1.0)
    return np.nan_to_num(med, nan=0.0), scale


@dataclass(frozen=True)
class WindowPrep:
    """Input and target transforms of one network, fitted on its train rows."""

    base_cols: np.ndarray  # (b,) indices of the base (non-text) flat features: the window's feature channels
    center: np.ndarray  # (b,) float32 train median of each base feature
    scale: np.ndarray  # (b,) float32 robust train scale
    missing_cols: np.ndarray  # positions in base_cols with NaN in train: one indicator channel each ...
    aggregate_missing: bool  # ... or one channel, the fraction of those features missing at the step
    symbols: np.ndarray  # known symbol codes, sorted; others map to one "unknown" embedding
    projection: TextProjection | None  # None: no text path
    text_cols: np.ndarray  # indices of the text flat features fed to delta (empty without a text path)
    text_center: np.ndarray  # (len(text_cols),) train median over rows with text
    text_scale: np.ndarray  # (len(text_cols),) robust train scale over rows with text
    count_cols: np.ndarray  # indices of COUNT_COLUMNS among the features (gate inputs)
    count_mean: np.ndarray
    count_std: np.ndarray
    ret_scale: np.ndarray  # (H,) train std of ret
    rv_mean: np.ndarray  # (H,) train mean of log rv
    rv_scale: np.ndarray  # (H,) train std of log rv

    @property
    def n_channels(self) -> int:
        n_missing = min(len(self.missing_cols), 1) if self.aggregate_missing else len(self.missing_cols)
        return len(self.center) + n_missing + 1

    @property
    def text_dim(self) -> int:
        return 0 if self.projection is None else self.projection.k

    @property
    def delta_dim(self) -> int:
        """Width of the delta head's input: the projected latents and the text flat columns (0: no text path)."""
        return 0 if self.projection is None else self.projection.k + len(self.text_cols)

    @property
    def n_gate_extra(self) -> int:
        return 2 + len(self.count_cols)

    def windows(self, x: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Return the (B, L, C) float32 windows for window rows ``rows`` (B, L) from :meth:`WindowIndex.rows`."""
        present = rows >= 0
        raw = x[np.where(present, rows, 0)][..., self.base_cols]
        z = np.clip((raw - self.center) / self.scale, -CLIP, CLIP)
        missing = np.isnan(raw[..., self.missing_cols]).astype(np.float32)
        if self.aggregate_missing and len(self.missing_cols):
            missing = missing.mean(axis=-1, keepdims=True)
        out = np.concatenate([np.nan_to_num(z, nan=0.0), missing, np.ones(rows.shape + (1,), np.float32)], axis=-1)
        out[~present] = 0.0
        return out.astype(np.float32, copy=False)

    def symbol_index(self, code: np.ndarray) -> np.ndarray:
        """Map symbol codes to embedding rows (``len(symbols)`` for a symbol unseen in train)."""
        pos = np.clip(np.searchsorted(self.symbols, code), 0, max(len(self.symbols) - 1, 0))
        known = len(self.symbols) > 0 and self.symbols[pos] == code
        return np.where(known, pos, len(self.symbols)).astype(np.int64)

    def text_inputs(self, data: ModelData, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return the delta inputs (B, k + text flat columns), text presence (B,) and gate extras (B, 2 + counts)
        of rows ``idx``; the delta inputs are 0 on rows without text."""
        has = data.text_mask[idx] if self.projection is not None else np.zeros(len(idx), bool)
        proj = np.zeros((len(idx), self.delta_dim), np.float32)
        if has.any():
            sel = idx[has]
            flat = (data.x[sel][:, self.text_cols] - self.text_center) / self.text_scale
            flat = np.clip(np.nan_to_num(flat, nan=0.0), -CLIP, CLIP)
            proj[has] = np.column_stack([np.clip(self.projection.transform(data.text[sel]), -CLIP, CLIP), flat])
        dim = data.latent_dim
        flags = [(np.abs(data.text[idx, :dim]).sum(axis=1) > 0), (np.abs(data.text[idx, dim:]).sum(axis=1) > 0)]
        counts = np.log1p(np.clip(np.nan_to_num(data.x[idx][:, self.count_cols].astype(np.float64)), 0.0, None))
        extra = np.column_stack([*flags, (counts - self.count_mean) / self.count_std]).astype(np.float32)
        return proj, has, extra * has[:, None]

    def targets(self, data: ModelData, idx: np.ndarray, cols: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """Return the standardized ``ret`` and ``log rv`` targets (B, len(cols)), NaN where the label is incomplete."""
        ok = data.label_ok[idx][:, cols] & np.isfinite(data.ret[idx][:, cols]) & np.isfinite(data.rv[idx][:, cols])
        ret = data.ret[idx][:, cols] / self.ret_scale[cols]
        log_rv = (np.log(np.maximum(data.rv[idx][:, cols], LOG_RV_FLOOR)) - self.rv_mean[cols]) / self.rv_scale[cols]
        return np.where(ok, ret, np.nan).astype(np.float32), np.where(ok, log_rv, np.nan).astype(np.float32)


def fit_prep(
    data: ModelData, rows: np.ndarray, text_dim: int, use_text: bool, aggregate_missing: bool = False
) -> WindowPrep:
    """Fit a :class:`WindowPrep` on train rows ``rows`` (text path only with >= MIN_TEXT_ROWS text rows)."""
    base_cols, text_cols = (np.array(c, np.int64) for c in base_and_text_columns(data.feature_names))
    x = data.x[rows][:, base_cols]
    center, scale = _robust_scale(x)
    projection = None
    text_rows = rows[data.text_mask[rows]]
    if use_text and len(text_rows) >= MIN_TEXT_ROWS:
        step = -(-len(text_rows) // MAX_PROJECTION_ROWS)
        projection = fit_projection(data.text[text_rows[::step]], text_dim)
        projection = projection if projection.k > 0 else None
    text_cols = text_cols if projection is not None else text_cols[:0]
    text_center, text_scale = _robust_scale(data.x[text_rows][:, text_cols].astype(np.float64))
    count_cols = np.array([data.feature_names.index(c) for c in COUNT_COLUMNS if c in data.feature_names], np.int64)
    counts = np.log1p(np.clip(np.nan_to_num(data.x[text_rows][:, count_cols].astype(np.float64)), 0.0, None))
    count_std = counts.std(axis=0) if len(counts) else np.ones(len(count_cols))
    ok = data.label_ok[rows] & np.isfinite(data.ret[rows]) & np.isfinite(data.rv[rows])
    ret = np.where(ok, data.ret[rows], np.nan)
    log_rv = np.where(ok, np.log(np.maximum(data.rv[rows], LOG_RV_FLOOR)), np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # horizons without a complete label
        ret_scale, rv_mean, rv_scale = np.nanstd(ret, axis=0), np.nanmean(log_rv, axis=0), np.nanstd(log_rv, axis=0)

    def positive(v: np.ndarray) -> np.ndarray:
        return np.where(np.isfinite(v) & (v > 1e-12), v, 1.0)

    return WindowPrep(
        base_cols=base_cols,
        center=center.astype(np.float32),
        scale=scale.astype(np.float32),
        missing_cols=np.flatnonzero(np.isnan(x).any(axis=0)).astype(np.int64),
        aggregate_missing=aggregate_missing,
        symbols=np.unique(data.symbol_code[rows]).astype(np.int64),
        projection=projection,
        text_cols=text_cols,
        text_center=text_center.astype(np.float32),
        text_scale=text_scale.astype(np.float32),
        count_cols=count_cols,
        count_mean=counts.mean(axis=0) if len(counts) else np.zeros(len(count_cols)),
        count_std=positive(count_std),
        ret_scale=positive(ret_scale),
        rv_mean=np.nan_to_num(rv_mean, nan=0.0),
        rv_scale=positive(rv_scale),
    )


def make_batch(data: ModelData, index: WindowIndex, prep: WindowPrep, idx: np.ndarray,
               cols: list[int] | None = None) -> dict[str, torch.Tensor]:  # fmt: skip
    """Return the input tensors of rows ``idx`` (and the targets of horizons ``cols`` when given)."""
    text, has, extra = prep.text_inputs(data, idx)
    out = {
        "window": torch.from_numpy(prep.windows(data.x, index.rows(idx))),
        "symbol": torch.from_numpy(prep.symbol_index(data.symbol_code[idx])),
        "text": torch.from_numpy(text),
        "has": torch.from_numpy(has),
        "extra": torch.from_numpy(extra),
    }
    if cols is not None:
        ret, log_rv = prep.targets(data, idx, cols)
        out.update(ret=torch.from_numpy(ret), log_rv=torch.from_numpy(log_rv))
    return out


class BatchStream(torch.utils.data.IterableDataset):
    """Endless seeded epochs of shuffled training batches (an epoch's last partial batch is dropped)."""

    def __init__(self, make: Callable[[np.ndarray], dict[str, torch.Tensor]], rows: np.ndarray, size: int, seed: int):
        self.make, self.rows, self.size, self.seed = make, rows, max(1, min(size, len(rows))), seed

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        rng = np.random.default_rng(self.seed)
        while True:
            perm = rng.permutation(self.rows)
            for start in range(0, len(perm) - self.size + 1, self.size):
                yield self.make(perm[start : start + self.size])
