"""The demo's end: the app serving the promoted model over HTTP (uvicorn on loopback), then a short paper replay."""

from __future__ import annotations

import json
import socket
import threading
import time
from datetime import UTC, datetime, timedelta

import httpx
import uvicorn

from quantmm_resources.settings import QuantmmSettings
from quantmm_serving.main import create_app
from quantmm_serving.paper.engine import PaperConfig
from quantmm_serving.paper.run import run_replay

REPLAY_DAYS = 5


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_one_prediction(settings: QuantmmSettings, symbol: str) -> bool:
    """Start the app under uvicorn, ask ``/predict/{symbol}`` and ``/health``, print both, stop it."""
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.1)
        base = f"http://127.0.0.1:{port}"
        answer = httpx.get(f"{base}/predict/{symbol}", timeout=30)
        print(f"\nGET {base}/predict/{symbol} -> {answer.status_code}")
        print(json.dumps(answer.json(), indent=1)[:2500])
        health = httpx.get(f"{base}/health", timeout=30).json()
        print(f"GET /health -> {health['status']}: models {health['models']}")
        return answer.status_code == 200
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def replay_last_days(settings: QuantmmSettings, symbol: str, last_day) -> bool:
    """Replay the last days of the world with the paper loop; print its summary."""
    end = datetime.combine(last_day, datetime.min.time(), tzinfo=UTC) - timedelta(minutes=5)
    start = end - timedelta(days=REPLAY_DAYS) + timedelta(minutes=5)
    print(f"\npaper replay {start:%Y-%m-%d} .. {end:%Y-%m-%d %H:%M} of {symbol} (book 'demo'):")
    summary = run_replay(settings, start, end, PaperConfig(book="demo"), [symbol])
    shown = {
        k: summary.get(k)
        for k in (
            "steps",
            "orders",
            "fills",
            "equity",
            "pnl",
            "fees",
            "slippage",
            "impact",
            "funding",
            "statuses",
            "sources",
            "refused",
            "seconds",
        )
    }
    print(json.dumps(shown, indent=1, default=str))
    print(
        "`quantmm paper status --book demo` and GET /paper/pnl?book=demo show it again; `quantmm serve` serves the app"
    )
    return summary.get("steps", 0) > 0
