"""Pure ASGI middleware: request metrics (count and latency per route template), the request-body size limit and
load shedding."""

from __future__ import annotations

import json
import time
from typing import Any

from quantmm_serving.metrics import ServingMetrics

Scope = dict[str, Any]


class RequestMetrics:
    """Count and time every HTTP request by its route template (``/predict/{symbol}``), method and status."""

    def __init__(self, app: Any, metrics: ServingMetrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start, status = time.perf_counter(), [500]

        async def sending(message: dict) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self.metrics.latency.labels(route, scope["method"]).observe(time.perf_counter() - start)
            self.metrics.requests.labels(route, scope["method"], str(status[0])).inc()


class BodyLimit:
    """Refuse a request body over ``limit`` bytes with 413, by its Content-Length or while it streams in."""

    def __init__(self, app: Any, limit: int):
        self.app, self.limit = app, int(limit)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or ()).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await _too_large(send, self.limit, int(declared))
            return
        seen, refused = [0], [False]

        async def receiving() -> dict:
            message = await receive()
            if message["type"] == "http.request":
                seen[0] += len(message.get("body", b""))
                if seen[0] > self.limit:
                    refused[0] = True
                    raise _TooLarge
            return message

        try:
            await self.app(scope, receiving, send)
        except _TooLarge:
            await _too_large(send, self.limit, seen[0])


class LoadShedding:
    """Answer 503 (with ``Retry-After``) when more than ``limit`` requests are in flight, instead of queueing work
    whose callers will have given up; health, readiness and metrics are always answered."""

    EXEMPT = ("/health", "/ready", "/metrics")

    def __init__(self, app: Any, limit: int):
        self.app, self.limit, self.in_flight = app, int(limit), 0

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("path") in self.EXEMPT:
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limit:
            body = json.dumps(
                {"detail": f"overloaded: {self.in_flight} requests in flight (limit {self.limit}); retry shortly"}
            ).encode()
            headers = [
                (b"content-type", b"application/json"),
                (b"retry-after", b"1"),
                (b"content-length", str(len(body)).encode()),
            ]
            await send({"type": "http.response.start", "status": 503, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1


class _TooLarge(Exception):
    pass


async def _too_large(send: Any, limit: int, size: int) -> None:
    body = json.dumps({"detail": f"request body of {size} bytes or more is over the limit of {limit} bytes"}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
