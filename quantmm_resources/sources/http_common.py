"""Shared plumbing of the real HTTP sources: one httpx client with retries and rate-limit backoff.

- Transport errors and HTTP 5xx are retried with exponential backoff (tenacity).
- HTTP 429 / 418 are retried after the ``Retry-After`` header (seconds or an HTTP date) when present,
  else with the same backoff; a ``Retry-After`` longer than ``max_retry_after_s`` fails at once.
- Any other 4xx, or a retryable failure after the retry budget, raises :class:`SourceHTTPError`
  naming the URL, the status and an excerpt of the body.

Tests inject an ``httpx.MockTransport`` (or a whole ``httpx.Client``), a fake ``sleep`` and a fixed clock
through :meth:`HttpSourceResource.with_http`; nothing here waits or touches the network in tests.
Also holds the few frame helpers every HTTP source uses (window filter, de-duplication, column order).
"""

from __future__ import annotations

import email.utils
import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Self

import dagster as dg
import httpx
import polars as pl
import tenacity
from pydantic import Field, PrivateAttr

from quantmm_assets.core.schemas import RAW_SCHEMAS

logger = logging.getLogger(__name__)

DEFAULT_USER_AGENT = "quantmm/0.1 (crypto research data client; python-httpx)"
RETRY_AFTER_STATUSES = frozenset({418, 429})
BODY_EXCERPT_CHARS = 300

Sleep = Callable[[float], None]
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """Return the current instant as a tz-aware UTC datetime."""
    return datetime.now(UTC)


class SourceHTTPError(RuntimeError):
    """A request a source could not complete: a 4xx, or a retryable failure past the retry budget."""

    def __init__(self, url: str, status: int | None, body: str, reason: str = "") -> None:
        self.url = url
        self.status = status
        self.body = body
        detail = f" ({reason})" if reason else ""
        super().__init__(f"GET {url} failed with status {status}{detail}: {body[:BODY_EXCERPT_CHARS]!r}")


class _RetryableResponse(Exception):
    """A 5xx / 429 / 418 response; ``retry_after`` in seconds when the server named one."""

    def __init__(self, response: httpx.Response, retry_after: float | None) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response
        self.retry_after = retry_after


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date); None if absent/bad."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or utc_now())).total_seconds())


class HttpFetcher:
    """GET with timeouts, a User-Agent, retries and ``Retry-After`` handling; see the module docstring."""

    def __init__(
        self,
        *,
        client: httpx.Client | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout_s: float = 30.0,
        user_agent: str = DEFAULT_USER_AGENT,
        max_attempts: int = 5,
        backoff_s: float = 1.0,
        backoff_max_s: float = 60.0,
        max_retry_after_s: float = 300.0,
        sleep: Sleep = time.sleep,
    ) -> None:
        self._owns_client = client is None
        self.client = client or httpx.Client(
            transport=transport, timeout=timeout_s, follow_redirects=True, headers={"User-Agent": user_agent}
        )
        self.max_attempts = max_attempts
        self.max_retry_after_s = max_retry_after_s
        self._sleep = sleep
        self._backoff = tenacity.wait_exponential(multiplier=backoff_s, max=backoff_max_s)

    def get(self, url: str, params: Mapping[str, Any] | None = None) -> httpx.Response:
        """GET ``url``; return the 2xx/3xx response or raise :class:`SourceHTTPError`."""
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.max_attempts),
            wait=self._wait,
            retry=tenacity.retry_if_exception_type((httpx.TransportError, _RetryableResponse)),
            sleep=self._sleep,
            before_sleep=self._log_retry,
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    return self._send(url, params)
        except _RetryableResponse as exc:
            raise SourceHTTPError(
                str(exc.response.request.url),
                exc.response.status_code,
                exc.response.text,
                reason=f"gave up after {self.max_attempts} attempts",
            ) from None
        except httpx.TransportError as exc:
            raise SourceHTTPError(url, None, repr(exc), reason=f"gave up after {self.max_attempts} attempts") from exc
        raise AssertionError("unreachable: tenacity either returns or raises")  # pragma: no cover

    def close(self) -> None:
        """Close the client if this fetcher created it."""
        if self._owns_client:
            self.client.close()

    def _send(self, url: str, params: Mapping[str, Any] | None) -> httpx.Response:
        response = self.client.get(url, params=params)
        status = response.status_code
        if status in RETRY_AFTER_STATUSES or status >= 500:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if status in RETRY_AFTER_STATUSES and retry_after is not None and retry_after > self.max_retry_after_s:
                raise SourceHTTPError(
                    str(response.request.url),
                    status,
                    response.text,
                    reason=f"Retry-After {retry_after:.0f}s exceeds {self.max_retry_after_s:.0f}s",
                )
            raise _RetryableResponse(response, retry_after if status in RETRY_AFTER_STATUSES else None)
        if status >= 400:
            raise SourceHTTPError(str(response.request.url), status, response.text)
        return response

    def _wait(self, state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _RetryableResponse) and exc.retry_after is not None:
            return exc.retry_after
        return float(self._backoff(state))

    @staticmethod
    def _log_retry(state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        logger.warning("HTTP attempt %d failed (%s); retrying in %.1fs", state.attempt_number, exc, wait)


class HttpSourceResource(dg.ConfigurableResource):
    """Config and test seams shared by the HTTP sources; mix in after the abstract source class."""

    timeout_s: float = Field(default=30.0, description="Per-request timeout in seconds.")
    user_agent: str = Field(default=DEFAULT_USER_AGENT, description="User-Agent header sent with every request.")
    max_attempts: int = Field(default=5, description="Attempts per request (transport errors, 5xx, 429, 418).")
    backoff_s: float = Field(default=1.0, description="Base of the exponential backoff, seconds.")
    backoff_max_s: float = Field(default=60.0, description="Cap of one backoff wait, seconds.")
    max_retry_after_s: float = Field(
        default=300.0, description="Fail instead of sleeping when a 429/418 asks to wait longer than this."
    )

    # Test seams and the lazily built fetcher. Kept in a dict: pydantic binds callables stored directly
    # as private attributes (they have ``__get__``), which would turn an injected ``sleep`` into a method.
    _seams: dict[str, Any] = PrivateAttr(default_factory=dict)

    def with_http(
        self,
        *,
        transport: httpx.BaseTransport | None = None,
        client: httpx.Client | None = None,
        sleep: Sleep | None = None,
        clock: Clock | None = None,
    ) -> Self:
        """Inject a transport or client, a sleep function and a clock (tests); return ``self``."""
        self._seams.update(transport=transport, client=client, fetcher=None)
        if sleep is not None:
            self._seams["sleep"] = sleep
        if clock is not None:
            self._seams["clock"] = clock
        return self

    def http_get(self, url: str, params: Mapping[str, Any] | None = None) -> httpx.Response:
        """GET through the shared fetcher (built on first use)."""
        fetcher = self._seams.get("fetcher")
        if fetcher is None:
            fetcher = self._seams["fetcher"] = HttpFetcher(
                client=self._seams.get("client"),
                transport=self._seams.get("transport"),
                timeout_s=self.timeout_s,
                user_agent=self.user_agent,
                max_attempts=self.max_attempts,
                backoff_s=self.backoff_s,
                backoff_max_s=self.backoff_max_s,
                max_retry_after_s=self.max_retry_after_s,
                sleep=self.pause,
            )
        return fetcher.get(url, params)

    def now(self) -> datetime:
        """The current instant (injectable clock)."""
        return self._seams.get("clock", utc_now)()

    def pause(self, seconds: float) -> None:
        """Sleep through the injectable sleep function."""
        self._seams.get("sleep", time.sleep)(seconds)

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        fetcher = self._seams.pop("fetcher", None)
        if fetcher is not None:
            fetcher.close()


# ---- frame helpers shared by the HTTP sources -------------------------------------------------------


def to_epoch_ms(ts: datetime) -> int:
    """Epoch milliseconds of a tz-aware datetime."""
    return int(ts.timestamp() * 1000)


def window_filter(df: pl.DataFrame, start: datetime, end: datetime, column: str = "ts_event") -> pl.DataFrame:
    """Keep rows with ``start <= ts < end``, and rows whose timestamp did not parse (core rejects them)."""
    ts = pl.col(column)
    return df.filter(ts.is_null() | ((ts >= pl.lit(start)) & (ts < pl.lit(end))))


def drop_exact_duplicates(df: pl.DataFrame, key: list[str]) -> pl.DataFrame:
    """Drop rows identical in every column to an earlier row (pagination overlap: the same row sent twice).

    Rows that share ``key`` but differ anywhere are all kept: which one is right is not ours to decide, core
    quarantines the clash as a duplicate key. Rows with a null in ``key`` (malformed wire items, identical
    once parsed) are all kept too: core rejects each. Order is kept (first copy of each row)."""
    has_null = pl.any_horizontal([pl.col(c).is_null() for c in key])
    if not df.select(has_null.any()).item():
        return df.unique(keep="first", maintain_order=True)
    flagged = df.with_columns(has_null.alias("_null_key"), pl.int_range(pl.len()).alias("_row"))
    complete = flagged.filter(~pl.col("_null_key")).unique(subset=df.columns, keep="first", maintain_order=True)
    merged = pl.concat([complete, flagged.filter(pl.col("_null_key"))], how="vertical").sort("_row")
    return merged.drop("_null_key", "_row")


def to_source_frame(df: pl.DataFrame, asset: str, fill_dtype: pl.DataType = pl.Utf8) -> pl.DataFrame:
    """Order ``df`` as the source columns of ``asset``, adding absent ones as nulls of ``fill_dtype``."""
    columns = RAW_SCHEMAS[asset].source_columns
    missing = [pl.lit(None, dtype=fill_dtype).alias(c) for c in columns if c not in df.columns]
    return df.with_columns(missing).select(columns)


def finish_pages(frames: list[pl.DataFrame], asset: str, start: datetime, end: datetime) -> pl.DataFrame:
    """Stack pages, drop exact duplicate rows (page overlap), keep the window, sort by time."""
    if not frames:
        return to_source_frame(pl.DataFrame(schema={"ts_event": pl.Datetime("us", "UTC")}), asset)
    df = drop_exact_duplicates(pl.concat(frames, how="vertical"), list(RAW_SCHEMAS[asset].key))
    return window_filter(df, start, end).sort("ts_event", nulls_last=True, maintain_order=True)
