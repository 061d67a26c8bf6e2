"""What the app holds between requests, and the background work that keeps it current.

One :class:`ServingState` per app: the model store (aliases followed), the feature window (new bars followed), the
prediction-log writer and the metrics. :meth:`ServingState.tick` is one round of the background work (the lifespan
runs it on a timer; tests call it): reload when an alias moved, re-read when a bar landed, and for every symbol whose
bar moved, predict its active *and* shadow versions once and log them (off the request path, so the log holds
every bar once whatever the traffic, and the candidate's live record builds up while nobody acts on it).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from quantmm_assets.core.portfolio.allocator import AllocatorConfig
from quantmm_resources.lake import LakeLayout
from quantmm_resources.paper_store import last_step
from quantmm_resources.settings import QuantmmSettings
from quantmm_serving.feature_window import FeatureWindow, SymbolWindow
from quantmm_serving.inference import HorizonPrediction, predict_versions
from quantmm_serving.metrics import ServingMetrics
from quantmm_serving.model_store import LoadedVersion, ModelStore
from quantmm_serving.prediction_writer import PredictionWriter

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Health:
    """The app's state in words: what is degraded and why, and whether it is ready."""

    degraded: list[str]
    ready: bool
    not_ready: list[str]
    expected_contract: str | None
    lake_contract: str | None


class ServingState:
    """The app's models, features, log writer and metrics, and their background refresh."""

    def __init__(self, settings: QuantmmSettings, store: ModelStore, lake: LakeLayout, writer: PredictionWriter):
        self.settings, self.store, self.lake, self.writer = settings, store, lake, writer
        self.window = FeatureWindow(lake)
        self.metrics = ServingMetrics()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_alias_poll = 0.0
        self._failures_seen = 0
        self._tick_lock = threading.Lock()
        self.allocator = AllocatorConfig()
        self._references: dict[tuple[str, str], tuple] = {}

    # -- background --------------------------------------------------------------------------------------------
    def tick(self, force_aliases: bool = False) -> list[str]:
        """One round: follow the aliases (every ``alias_poll_seconds``), re-read moved bars, log their predictions.
        Return the symbols whose bar moved. One round at a time (the refresher and a promotion may both ask)."""
        with self._tick_lock:
            return self._tick(force_aliases)

    def _tick(self, force_aliases: bool) -> list[str]:
        now = time.monotonic()
        if force_aliases or now - self._last_alias_poll >= self.settings.alias_poll_seconds:
            self._last_alias_poll = now
            swaps_before = self.store.swaps
            self.store.refresh()
            if self.store.registry_error:
                self.metrics.registry_errors.inc()
            self.metrics.model_swaps.inc(self.store.swaps - swaps_before)
            self.window.resize(max(v.input_rows for v in self._versions()) if self._versions() else 1)
        moved = self.window.refresh(self.store.snapshot.symbols(with_shadow=True))
        for symbol in moved:
            self.log_bar(symbol)
        self.metrics.prediction_log_pending.set(self.writer.pending)
        failures = self.writer.failures
        self.metrics.prediction_log_failures.inc(max(0, failures - self._failures_seen))
        self._failures_seen = max(failures, self._failures_seen)
        return moved

    def _versions(self) -> list[LoadedVersion]:
        snap = self.store.snapshot
        return [*snap.active.values(), *snap.shadow.values()]

    def log_bar(self, symbol: str) -> None:
        """Predict the current bar of ``symbol`` with its active and shadow versions and queue the log rows."""
        window = self.window.current(symbol)
        if window is None:
            return
        snap, contract, rows = self.store.snapshot, self.lake_contract(), []
        for role, versions in (("active", snap.active), ("shadow", snap.shadow)):
            mine = [v for (s, _h), v in versions.items() if s == symbol and v.contract_version == contract]
            try:
                predicted = predict_versions(window, mine)
            except Exception:
                log.exception("predicting %s %s on %s failed", symbol, role, window.bar_ts)
                continue
            for p in predicted:
                rows.append(p.log_row(role))
                self.metrics.predictions.labels(symbol, p.horizon, role).inc()
        self.writer.submit(rows)

    def start(self) -> None:
        """Load the models and the features once, then keep them current on a thread."""
        self.tick(force_aliases=True)
        self.writer.start()
        self._thread = threading.Thread(target=self._run, name="serving-refresh", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        every = min(self.settings.feature_poll_seconds, self.settings.alias_poll_seconds)
        while not self._stop.wait(every):
            try:
                self.tick()
            except Exception:  # never let the refresher die: the next round tries again
                log.exception("serving refresh failed")

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.writer.close()

    # -- the request path --------------------------------------------------------------------------------------
    def predict(
        self, symbol: str, horizons: list[str] | None = None
    ) -> tuple[SymbolWindow | None, list[HorizonPrediction]]:
        """The active versions' predictions for ``symbol``'s current bar (queued for the log)."""
        snap = self.store.snapshot
        window = self.window.current(symbol)
        if window is None:
            return None, []
        contract = self.lake_contract()
        versions = [snap.active[(symbol, h)] for h in horizons or snap.horizons(symbol) if (symbol, h) in snap.active]
        out = predict_versions(window, [v for v in versions if v.contract_version == contract])
        for p in out:
            self.metrics.predictions.labels(symbol, p.horizon, "active").inc()
        self.writer.submit(p.log_row("active") for p in out)
        return window, out

    def current_weights(self, book: str = "paper") -> dict[str, float]:
        """The paper book's current weights per symbol at its last step (empty before it holds a position)."""
        last = last_step(self.settings.resolved_ops_url, book)
        if last is None or not last["equity"] > 0:
            return {}
        marks = last["state"]["marks"]
        return {
            s: float(q) * float(marks[s]) / last["equity"] for s, q in last["state"]["positions"].items() if s in marks
        }

    def reference(self, version: LoadedVersion) -> tuple:
        """The reference predictions a version ships (ts_us, values), read once per version."""
        key = (version.name, version.version)
        if key not in self._references:
            ts, values = self.store.registry.reference_series(version.name, version.version)
            if ts.size and (ts < 0).all():
                raise ValueError(
                    f"the reference of {version.name} v{version.version} has no timestamps: it cannot be thinned"
                )
            self._references[key] = (ts, values)
        return self._references[key]

    # -- health --------------------------------------------------------------------------------------------------
    def lake_contract(self) -> str | None:
        cached = getattr(self, "_contract", None)
        if cached is None or time.monotonic() - cached[1] > self.settings.feature_poll_seconds:
            try:
                version = str(self.lake.feature_contract()["version"])
            except (FileNotFoundError, KeyError, ValueError):
                version = None
            self._contract = cached = (version, time.monotonic())
        return cached[0]

    def degraded_reasons(self, symbol: str | None = None) -> list[str]:
        """Why the answers are degraded (all symbols, or one): registry down, a failed load, an old model, stale
        features, a failing prediction-log store."""
        reasons = []
        if self.store.registry_error:
            reasons.append(self.store.registry_error)
        now = datetime.now(UTC)
        max_age = timedelta(days=self.settings.model_max_age_days)
        stale = timedelta(minutes=self.settings.feature_staleness_minutes)
        snap = self.store.snapshot
        for (s, h), v in sorted(snap.active.items()):
            if symbol not in (None, s):
                continue
            if v.contract_version != self.lake_contract():
                reasons.append(
                    f"{v.name} v{v.version} expects feature contract {v.contract_version}, the lake's is "
                    f"{self.lake_contract()}: its horizon is not answered until a version on it is promoted"
                )
            if v.name in self.store.load_errors:
                reasons.append(f"{v.name}: {self.store.load_errors[v.name]}; serving v{v.version}")
            if v.trained_until is not None:
                age = now - v.trained_until
                self.metrics.model_age.labels(s, h).set(age.total_seconds())
                if age > max_age:
                    reasons.append(
                        f"{v.name} v{v.version} was trained on data up to {v.trained_until:%Y-%m-%d %H:%M} "
                        f"({age.days} days ago; limit {self.settings.model_max_age_days:g} days)"
                    )
        for s in snap.symbols():
            if symbol not in (None, s):
                continue
            window = self.window.current(s)
            if window is None:
                reasons.append(self.window.errors.get(s, f"no feature rows of {s} read yet"))
                continue
            age = now - window.bar_ts
            self.metrics.feature_staleness.labels(s).set(age.total_seconds())
            if age > stale:
                reasons.append(
                    f"{s}: newest feature row is {window.bar_ts:%Y-%m-%d %H:%M} UTC, {_span(age)} old "
                    f"(limit {self.settings.feature_staleness_minutes:g} minutes)"
                )
        if self.writer.rejected:
            reasons.append(
                f"{self.writer.rejected} prediction(s) not logged (not finite), last: {self.writer.last_rejected}"
            )
        if self.writer.last_error:
            reasons.append(
                f"prediction log writes failing ({self.writer.pending} rows queued): {self.writer.last_error}"
            )
        self.metrics.degraded.set(1 if reasons else 0)
        return reasons

    def health(self) -> Health:
        reasons = self.degraded_reasons()
        snap = self.store.snapshot
        lake_contract = self.lake_contract()
        expected = sorted(snap.contract_versions())
        not_ready = []
        if not snap.active:
            not_ready.append("no active model: promote a candidate (quantmm registry promote, or POST /registry/...)")
        stale = sorted(v.name for v in snap.active.values() if v.contract_version != lake_contract)
        if stale:  # any active version on another contract: its horizon would go unanswered
            not_ready.append(
                f"feature contract changed: the active models expect contract {', '.join(expected)}, the lake's "
                f"feature_matrix_main is contract {lake_contract or '(none)'} ({len(stale)} of {len(snap.active)} "
                f"active versions, e.g. {stale[0]}): retrain and promote models on it"
            )
        missing = [s for s in snap.symbols() if self.window.current(s) is None]
        if missing:
            not_ready.append(f"no feature rows yet for {missing}")
        self.metrics.ready.set(0 if not_ready else 1)
        return Health(reasons, not not_ready, not_ready, expected[0] if len(expected) == 1 else None, lake_contract)


def _span(delta: timedelta) -> str:
    minutes = delta.total_seconds() / 60
    return (
        f"{minutes:.0f} minutes"
        if minutes < 120
        else f"{minutes / 60:.1f} hours"
        if minutes < 2880
        else f"{minutes / 1440:.1f} days"
    )
