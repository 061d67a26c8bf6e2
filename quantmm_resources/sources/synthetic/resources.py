"""The seeded synthetic sample: the source the demo and most tests read.

Thin Dagster resources over the pure generators beside them: ``market`` (bars), ``derivatives``
(funding, open interest, derivatives metrics), ``macro`` (macro) and ``text`` (posts and comments carrying the
planted sentiment signal). See docs/synthetic_sample.md.

Every fetch is deterministic in ``(seed, origin, symbols, ...)`` and independent of the requested
window: the path is generated from ``origin`` (cached, in blocks of days) and the window is cut out
of it. Requests before ``origin`` and symbols outside ``symbols`` return empty source frames.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial

import polars as pl
from pydantic import Field

from quantmm_assets.core.availability import MACRO_SERIES_SPECS
from quantmm_assets.core.ingest import available_at
from quantmm_assets.core.schemas import RAW_SCHEMAS
from quantmm_resources.sources.base import ExchangeSource, MacroSource, SocialSource, empty_source_frame
from quantmm_resources.sources.synthetic import derivatives as deriv
from quantmm_resources.sources.synthetic import macro, text
from quantmm_resources.sources.synthetic import market as sm

SYNTHETIC_MACRO_SERIES = ("vix", "us10y", "dollar_index")
# Keeps the text per symbol, and so the strength of the text signal, stable as symbols are added.
POSTS_PER_SYMBOL_DAY = 48.0


def _utc(ts: datetime, name: str) -> datetime:
    """Return ``ts`` in UTC; refuse naive datetimes (the source contract is tz-aware UTC)."""
    if ts.tzinfo is None:
        raise ValueError(f"{name} must be a tz-aware UTC datetime, got naive {ts!r}")
    return ts.astimezone(UTC)


def _finish(frame: pl.DataFrame, asset: str) -> pl.DataFrame:
    """Return ``frame`` as a source frame of ``asset``: source columns, in order, canonical dtypes.

    The simulated world ends now: rows that would not be available yet (the rest of today's bars, today's
    macro close) do not exist, exactly as a real API would not have them.
    """
    if frame.is_empty():
        return empty_source_frame(asset)
    schema = RAW_SCHEMAS[asset]
    if "engagement_observed_at" in schema.columns and "engagement_observed_at" not in frame.columns:
        # The simulated counts are drawn at publication and never revised: observed when published.
        frame = frame.with_columns(pl.col("ts_event").alias("engagement_observed_at"))
    frame = frame.select([pl.col(c).cast(schema.columns[c]) for c in schema.source_columns])
    return frame.filter(available_at(asset, frame) <= datetime.now(UTC))


def _window(origin: str, start: datetime, end: datetime) -> tuple[datetime, datetime] | None:
    """Return [start, end) clipped to the origin, or None when nothing is left."""
    start, end = max(_utc(start, "start"), sm.parse_origin(origin)), _utc(end, "end")
    return (start, end) if start < end else None


_SEED = Field(default=7, description="Seed of every random draw; same seed + config = same frames.")
_ORIGIN = Field(default=sm.DEFAULT_ORIGIN, description="First day (YYYY-MM-DD) of the path; before is empty.")
_SYMBOLS = Field(
    default_factory=lambda: list(sm.DEFAULT_SYMBOLS),
    description="Symbols the sample covers; any other symbol returns an empty frame.",
)


class SyntheticExchange(ExchangeSource):
    """5m spot/perp bars, funding, open interest and derivatives metrics of a seeded synthetic market."""

    seed: int = _SEED
    origin: str = _ORIGIN
    symbols: list[str] = _SYMBOLS
    signal_beta: float = Field(
        default=sm.SIGNAL_BETA,
        description="Next-hour drift per unit of latent sentiment, in hourly standard deviations (the planted "
        "text signal's strength; tests of the fusion raise it to make a small sample decisive).",
    )

    def _frame(self, asset: str, symbol: str, start: datetime, end: datetime, build) -> pl.DataFrame:
        """``build(seed, symbol, origin, start, end)`` cut to the configured symbols and the origin."""
        window = _window(self.origin, start, end) if symbol in self.symbols else None
        if window is None:
            return empty_source_frame(asset)
        return _finish(
            build(
                self.seed,
                symbol,
                origin=sm.parse_origin(self.origin),
                start=window[0],
                end=window[1],
                signal_beta=self.signal_beta,
            ),
            asset,
        )

    def fetch_bars(self, symbol: str, market: str, start: datetime, end: datetime) -> pl.DataFrame:
        """Return 5m ``market`` ("spot" | "perp") bars with ``start <= ts_event < end``."""
        if market not in ("spot", "perp"):
            raise ValueError(f"market must be 'spot' or 'perp', got {market!r}")
        return self._frame("market_bars_5m", symbol, start, end, partial(sm.bars_frame, market=market))

    def fetch_funding(self, symbol: str, start: datetime, end: datetime) -> pl.DataFrame:
        """Return funding settlements (00/08/16 UTC) with ``start <= ts_event < end``."""
        return self._frame("funding_rates", symbol, start, end, deriv.funding_frame)

    def fetch_open_interest(self, symbol: str, start: datetime, end: datetime) -> pl.DataFrame:
        """Return 5m open-interest snapshots with ``start <= ts_event < end``."""
        return self._frame("open_interest", symbol, start, end, deriv.open_interest_frame)

    def fetch_derivatives_metrics(self, symbol: str, start: datetime, end: datetime) -> pl.DataFrame:
        """Return 5m ratios, basis and mark price with ``start <= ts_event < end``."""
        return self._frame("derivatives_metrics", symbol, start, end, deriv.derivatives_metrics_frame)


class SyntheticMacro(MacroSource):
    """Daily vix / us10y / dollar_index on weekdays: independent random walks, no predictive content."""

    seed: int = _SEED
    origin: str = _ORIGIN
    symbols: list[str] = _SYMBOLS

    def fetch_macro(self, start: datetime, end: datetime) -> pl.DataFrame:
        """Return observations (00:00 UTC of each weekday) with ``start <= ts_event < end``."""
        window = _window(self.origin, start, end)
        if window is None:
            return empty_source_frame("macro_series")
        sources = {s: MACRO_SERIES_SPECS[s].source_series for s in SYNTHETIC_MACRO_SERIES}
        frame = macro.macro_frame(self.seed, sm.parse_origin(self.origin), *window, sources)
        return _finish(frame, "macro_series")


class SyntheticSocial(SocialSource):
    """Posts and comments naming the symbols; their word choice carries the planted sentiment signal."""

    seed: int = _SEED
    origin: str = _ORIGIN
    symbols: list[str] = _SYMBOLS
    text_signal: bool = Field(default=True, description="False: word choice ignores the latent sentiment.")
    posts_per_day: float | None = Field(
        default=None,
        gt=0,
        description=f"Posts per day (~1.8 comments each); default {POSTS_PER_SYMBOL_DAY:g} per symbol.",
    )

    def _fetch(self, kind: str, asset: str, start: datetime, end: datetime) -> pl.DataFrame:
        window = _window(self.origin, start, end)
        if window is None:
            return empty_source_frame(asset)
        intensity = self.posts_per_day or POSTS_PER_SYMBOL_DAY * len(self.symbols)
        frame = text.social_window(
            self.seed, self.origin, tuple(self.symbols), float(intensity), bool(self.text_signal), *window, kind=kind
        )
        return _finish(frame, asset)

    def fetch_posts(self, start: datetime, end: datetime) -> pl.DataFrame:
        """Return posts published with ``start <= ts_event < end``."""
        return self._fetch("posts", "social_posts_raw", start, end)

    def fetch_comments(self, start: datetime, end: datetime) -> pl.DataFrame:
        """Return comments published with ``start <= ts_event < end`` (their posts may be earlier)."""
        return self._fetch("comments", "social_comments_raw", start, end)
