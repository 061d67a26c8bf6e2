"""Shared primitives of the synthetic generators: seeded per-day generators, caches, timestamps.

Pure numpy/polars (no Dagster, no I/O). ``day_rng(seed, stream, key, day)`` is the unit of
determinism of ``market``, ``derivatives``, ``macro`` and ``text``: every random draw comes from one
of these generators, with ``day`` counted from the origin, so a generated window never depends on the requested one.
"""

from __future__ import annotations

import threading
import zlib
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import polars as pl

SOURCE = "synthetic"
BLOCK_DAYS = 32  # paths grow in blocks of this many days (cache granularity)


def parse_origin(origin: str) -> datetime:
    """Return the origin day (``YYYY-MM-DD``) as a tz-aware UTC midnight."""
    return datetime.combine(date.fromisoformat(origin), datetime.min.time(), tzinfo=UTC)


def _code(name: str) -> int:
    return zlib.crc32(name.encode())


def day_rng(seed: int, stream: str, key: str, day: int) -> np.random.Generator:
    """Return the generator of one (stream, key, day): the unit of determinism."""
    return np.random.default_rng(np.random.SeedSequence([seed % 2**63, _code(stream), _code(key), day]))


def blocks(n_days: int) -> int:
    """Round a day count up to the cache granularity."""
    return max(BLOCK_DAYS, -(-n_days // BLOCK_DAYS) * BLOCK_DAYS)


class GrowCache:
    """Keep the longest path per key; shorter requests are served from its prefix (bounded LRU)."""

    def __init__(self, max_keys: int = 24) -> None:
        self._data: OrderedDict[tuple, tuple[int, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self._max = max_keys

    def get(self, key: tuple, n_days: int, build: Callable[[int], Any]) -> Any:
        with self._lock:
            hit = self._data.get(key)
            if hit is None or hit[0] < n_days:
                hit = (blocks(n_days), build(blocks(n_days)))
                self._data[key] = hit
            self._data.move_to_end(key)
            while len(self._data) > self._max:
                self._data.popitem(last=False)
            return hit[1]

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


def ts_series(origin: datetime, index: np.ndarray, step: timedelta) -> pl.Series:
    """Return the ``ts_event`` column of the steps ``index`` counted from ``origin``."""
    micros = int(origin.timestamp() * 1e6) + index.astype(np.int64) * int(step.total_seconds() * 1e6)
    return pl.Series("ts_event", micros, dtype=pl.Int64).cast(pl.Datetime("us", "UTC"))
