"""Writes served predictions to the prediction log, batched, off the request path.

A request only appends its rows to an in-memory queue (a key already queued or written is skipped: the log keeps
the first prediction of a (symbol, horizon, bar, version, role); a row without a finite ``expected_return``, which
the log refuses, is counted in :attr:`rejected` and named, not queued); a background thread writes the queue every
``interval`` seconds, or at once when ``batch`` rows wait, and :meth:`close` writes what is left. A failed write keeps
the rows queued for the next attempt (and counts the failure), so nothing is lost while the store is down.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Iterable

import polars as pl

from quantmm_resources.prediction_log import KEY, PREDICTION_LOG_SCHEMA, write_predictions

log = logging.getLogger(__name__)
MAX_REMEMBERED = 200_000  # keys remembered as written (then the store's first-write-wins takes over)


class PredictionWriter:
    """A queue of prediction-log rows and the thread that writes it."""

    def __init__(
        self,
        url: str,
        interval: float = 1.0,
        batch: int = 500,
        write: Callable[[str, pl.DataFrame], int] = write_predictions,
    ):
        self.url, self.interval, self.batch, self._write = url, float(interval), int(batch), write
        self._queue: list[dict] = []
        self._seen: set[tuple] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.written = 0
        self.failures = 0
        self.rejected = 0
        self.last_rejected: str | None = None
        self.last_error: str | None = None

    def submit(self, rows: Iterable[dict]) -> int:
        """Queue the rows whose key is new; return how many were queued."""
        added = 0
        with self._lock:
            for row in rows:
                er = row.get("expected_return")
                if er is None or not math.isfinite(er):  # the log refuses it: counted and said, never retried
                    self.rejected += 1
                    self.last_rejected = (
                        f"{row.get('symbol')} {row.get('horizon')} v{row.get('model_version')}: "
                        f"expected_return {er!r} at {row.get('bar_ts')}"
                    )
                    log.warning("prediction not logged: %s", self.last_rejected)
                    continue
                key = tuple(row[k] for k in KEY)
                if key in self._seen:
                    continue
                self._seen.add(key)
                self._queue.append(row)
                added += 1
            if len(self._seen) > MAX_REMEMBERED:
                self._seen = {tuple(r[k] for k in KEY) for r in self._queue}
            full = len(self._queue) >= self.batch
        if full:
            self._wake.set()
        return added

    @property
    def pending(self) -> int:
        return len(self._queue)

    def flush(self) -> int:
        """Write every queued row now; return how many rows the store inserted."""
        with self._lock:
            rows, self._queue = self._queue, []
        if not rows:
            return 0
        try:
            frame = pl.DataFrame(rows, schema={c: PREDICTION_LOG_SCHEMA[c] for c in rows[0]})
            inserted = self._write(self.url, frame)
        except Exception as exc:
            with self._lock:
                self._queue = rows + self._queue  # keep them: the next flush tries again
            self.failures += 1
            self.last_error = f"{type(exc).__name__}: {exc}"[:300]
            log.warning("prediction log write failed (%d rows kept queued): %s", len(rows), self.last_error)
            return 0
        self.written += inserted
        self.last_error = None
        return inserted

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="prediction-log-writer", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            self.flush()

    def close(self) -> None:
        """Stop the thread and write what is queued."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self.flush()
