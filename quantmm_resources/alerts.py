"""Alerts: a log line always, and a JSON POST to the configured webhook (``QUANTMM_ALERT_WEBHOOK``) when set.

Used by the failure sensor (failed runs) and by ``candidate_models`` (refused gates). A post that fails is logged
with the webhook's host only (its path may hold a secret token), never raised: an alert must not break a run.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.parse
import urllib.request

from quantmm_resources.settings import get_settings

log = logging.getLogger(__name__)
ALERT_TIMEOUT_S = 5.0


def alert_webhook() -> str | None:
    """The URL alerts are POSTed to (settings ``alert_webhook``, ``QUANTMM_ALERT_WEBHOOK``), or None."""
    return get_settings().alert_webhook or None


def post_alert(url: str, payload: dict[str, object], timeout: float = ALERT_TIMEOUT_S) -> bool:
    """POST ``payload`` as JSON to ``url``; a failure is logged, never raised. Return whether it was delivered."""
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    host = urllib.parse.urlsplit(url).netloc
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
        return True
    except (urllib.error.URLError, OSError, ValueError) as exc:
        log.warning(f"failure alert not delivered to {host}: {exc}")
        return False


def send_alert(payload: dict[str, object]) -> bool:
    """Log ``payload["text"]`` and POST the payload to the webhook when one is configured; return whether it was
    delivered (False without a webhook)."""
    log.warning(str(payload.get("text", payload)))
    url = alert_webhook()
    return bool(url) and post_alert(url, payload)
