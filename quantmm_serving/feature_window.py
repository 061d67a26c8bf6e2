"""The features inference reads: the newest rows of ``feature_matrix_main`` per symbol, held in memory.

The app does not compute features of its own: it reads the rows the feature refresh materializes into the lake
(the same code and feature contract as training, so a served row *is* the training row of that bar). Per symbol
it keeps the newest ``rows`` rows of the newest ``days`` partitions; :meth:`FeatureWindow.refresh` re-reads a
symbol only when one of those partition files changed (a new bar landed), and the model input of a bar is built
once per (bar, feature set) and reused by every request until the next bar.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from quantmm_assets.models.data import ModelData, model_data
from quantmm_resources.lake import LakeLayout
from quantmm_resources.registry.pyfunc_model import empty_labels

MATRIX = "feature_matrix_main"
BARS_PER_DAY = 288
_MISSING = object()


@dataclass
class SymbolWindow:
    """The newest feature rows of one symbol; the last row is the bar the app predicts from."""

    symbol: str
    rows: pl.DataFrame
    stamp: tuple[tuple[str, int, int], ...]
    _inputs: dict[tuple, ModelData] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def bar_ts(self) -> datetime:
        return self.rows["ts_event"][-1]

    def model_input(self, feature_names: tuple[str, ...], horizons: tuple[str, ...], latent_dim: int) -> ModelData:
        """The model data of the window for one feature set (built on the first request of the bar, then reused)."""
        key = (feature_names, horizons, latent_dim)
        found = self._inputs.get(key)
        if found is None:
            with self._lock:
                found = self._inputs.get(key)
                if found is None:
                    found = model_data(self.rows, empty_labels(), list(feature_names), horizons, latent_dim=latent_dim)
                    self._inputs[key] = found
        return found

    def cached(self, key: tuple, build: Callable[[], Any]) -> Any:
        """A value derived from the bar alone (e.g. its cost_h under one cost config), built once per bar."""
        found = self._inputs.get(key, _MISSING)
        if found is _MISSING:
            found = self._inputs[key] = build()
        return found

    def last_index(self, data: ModelData) -> np.ndarray:
        """The row index of the current bar in ``data`` (model_data sorts by time: the last row)."""
        return np.array([data.n - 1])


class FeatureWindow:
    """Per symbol, the newest feature rows of the lake, re-read when their partition files change."""

    def __init__(self, lake: LakeLayout, rows: int = 288, days: int = 2):
        self.lake, self.rows, self.days = lake, int(rows), int(days)
        self._windows: dict[str, SymbolWindow] = {}
        self.errors: dict[str, str] = {}

    def resize(self, rows: int) -> None:
        """Hold at least ``rows`` rows per symbol (a window backbone's input); a larger need re-reads every symbol."""
        if rows > self.rows:
            self.rows = int(rows)
            self.days = max(self.days, self.rows // BARS_PER_DAY + 2)  # whole days around the window
            self._windows.clear()

    def current(self, symbol: str) -> SymbolWindow | None:
        """The window of ``symbol`` (None before its first rows are read)."""
        return self._windows.get(symbol)

    def refresh(self, symbols: list[str]) -> list[str]:
        """Re-read the symbols whose newest partitions changed; return those whose current bar moved."""
        moved = []
        for symbol in symbols:
            files = self.lake.newest_partition_files(MATRIX, symbol, self.days)
            stamp = tuple(_stamp(p) for p in files)
            held = self._windows.get(symbol)
            if not files or (held is not None and held.stamp == stamp):
                if not files:
                    self.errors[symbol] = f"no {MATRIX} rows of {symbol} in the lake: materialize the features"
                continue
            try:
                rows = pl.concat([pl.read_parquet(p) for p in files], how="diagonal_relaxed")
            except Exception as exc:  # a file replaced while read: try again at the next refresh
                self.errors[symbol] = f"reading {MATRIX} of {symbol} failed: {type(exc).__name__}: {exc}"[:300]
                continue
            rows = rows.filter(pl.col("symbol") == symbol).sort("ts_event").tail(self.rows)
            if rows.height == 0:
                self.errors[symbol] = f"the newest {MATRIX} partitions of {symbol} hold no rows"
                continue
            self.errors.pop(symbol, None)
            new = SymbolWindow(symbol, rows, stamp)
            if held is None or held.bar_ts != new.bar_ts:
                moved.append(symbol)
            self._windows[symbol] = new
        return moved


def _stamp(path: Path) -> tuple[str, int, int]:
    st = path.stat()
    return str(path), st.st_mtime_ns, st.st_size
