"""``python -m bench serve``: ``GET /predict/{symbol}`` of the real app under open-loop load, with an alias swap.

The world (``bench/serve_world.py``: 5 symbols x 1h / 4h, Ridge) is built once per ``--home``. First the app's
in-process cost (``routes.predict.answer`` after ``state.tick(force_aliases=True)``; one alias poll). Then per
offered rate a fresh server: ``create_app`` under uvicorn (one worker, ``log_level="warning"``,
``alias_poll_seconds=1``) in a process pinned to core 0, the load generator in one pinned to core 1 (with this
process, whose swaps run at nice 19). Open loop: request ``i`` is due at ``t0 + i / rate`` and sent then, whatever
the earlier ones did (raw asyncio HTTP/1.1 keep-alive connections, a new one whenever none is idle); latency runs
from the *due* time to the last byte (no coordinated omission). At 35% of the run ``active`` of one (symbol, 1h)
moves to its other version (``promotion.promote``), at 70% back (``promotion.rollback``); a swap is *seen* at the
first response naming the new version; its window is [call start, seen + 1 s]. Last, the naive server
(``bench/serve_naive.py``) under the same generator at half its sequential capacity (at most 5 req/s).

Percentiles are of the 200 answers; errors (non-200, transport errors, 10 s timeouts) are counted apart, and a
rate counts as "p99 under 50 ms" only with zero errors. One run on 2 cores that other processes share: the share
of the server's core they took during each rate is printed (``server_core_cpu_share.others``).
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import itertools
import json
import math
import multiprocessing as mp
import os
import resource
import socket
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

SERVER_CORE, LOAD_CORE = 0, 1
TIMEOUT_S = 10.0
KEEP_IDLE_S = 4.0  # a pooled connection idle this long is closed, not reused: uvicorn's keep-alive timeout is 5 s
SWAP_HORIZON = "1h"
TARGET_RATE, TARGET_P99_MS, LIMIT_P99_MS = 200, 15.0, 50.0
NAIVE_SECONDS = 6.0


def _pin(core: int) -> bool:
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setaffinity(0, {core})
        return True
    return False


# -- the server process ------------------------------------------------------------------------------------------
def _serve(kind: str, settings, horizons: list[str], port_q) -> None:
    """Child: the app (or the naive one) under uvicorn on a free port of 127.0.0.1, pinned to the server core."""
    os.dup2(2, 1)  # nothing the app prints may reach the bench's JSON on stdout
    _pin(SERVER_CORE)
    import uvicorn

    from bench.serve_naive import create_naive_app
    from quantmm_serving.main import create_app

    app = create_app(settings) if kind == "app" else create_naive_app(settings, horizons)
    sock = socket.create_server(("127.0.0.1", 0), backlog=4096)
    port_q.put(sock.getsockname()[1])
    uvicorn.Server(uvicorn.Config(app, workers=1, log_level="warning", backlog=4096)).run(sockets=[sock])


def _cpu_s(core: int, pid: int) -> tuple[float, float]:
    """CPU seconds so far of one core (/proc/stat: all but idle and iowait) and of one process (all its threads)."""
    tick = os.sysconf("SC_CLK_TCK")
    with open("/proc/stat") as fh:
        v = next([int(x) for x in line.split()[1:]] for line in fh if line.startswith(f"cpu{core} "))
    with open(f"/proc/{pid}/stat") as fh:
        proc = fh.read().rsplit(")", 1)[1].split()
    return (sum(v[:8]) - v[3] - v[4]) / tick, (int(proc[11]) + int(proc[12])) / tick


def _get(port: int, path: str, timeout: float = 30.0) -> tuple[int, bytes]:
    with contextlib.closing(http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)) as conn:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()


@contextlib.contextmanager
def _server(ctx, kind: str, settings, horizons: list[str]):
    """Start a server process, wait until ``/ready`` answers 200; yield (port, startup seconds); stop it."""
    port_q = ctx.Queue()
    proc = ctx.Process(target=_serve, args=(kind, settings, horizons, port_q), daemon=True)
    t0 = time.monotonic()
    proc.start()
    try:
        port = port_q.get(timeout=180)
        while True:
            with contextlib.suppress(OSError):
                if _get(port, "/ready")[0] == 200:
                    break
            if not proc.is_alive() or time.monotonic() - t0 > 180:
                raise RuntimeError(f"{kind} server did not become ready (exit code {proc.exitcode})")
            time.sleep(0.2)
        yield port, round(time.monotonic() - t0, 2), proc.pid
    finally:
        proc.terminate()
        proc.join(30)
        if proc.is_alive():
            proc.kill()
            proc.join()


# -- the load generator process -----------------------------------------------------------------------------------
def _load(port: int, paths: list[str], rate: float, duration: float, watch: str | None, horizon: str, q) -> None:
    """Child: the open-loop generator pinned to the load core; puts ("start", t0) then the records."""
    _pin(LOAD_CORE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard := resource.getrlimit(resource.RLIMIT_NOFILE)[1], hard))
    q.put(asyncio.run(_open_loop(port, paths, rate, duration, watch, horizon, q)))


async def _open_loop(port, paths, rate, duration, watch, horizon, q) -> dict:
    idle: list = []
    stats = {"connections_opened": 0, "idle_connections_dropped": 0, "in_flight": 0, "peak_in_flight": 0}
    wire = [f"GET {p} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode() for p in paths]

    async def connect():
        stats["connections_opened"] += 1
        return await asyncio.open_connection("127.0.0.1", port)

    async def take():
        """An idle connection the server has not closed (uvicorn drops one idle for 5 s), or a new one."""
        while idle:
            reader, writer, since = idle.pop()
            if time.monotonic() - since < KEEP_IDLE_S and not reader.at_eof():
                return reader, writer
            writer.close()
            stats["idle_connections_dropped"] += 1
        return await connect()

    async def fetch(i: int) -> tuple[int, bytes]:
        reader, writer = await take()
        keep = False
        try:
            writer.write(wire[i % len(wire)])
            head = (await reader.readuntil(b"\r\n\r\n")).lower()
            status = int(head[9:12])
            at = head.find(b"content-length:")
            if at < 0:
                return status, await reader.read()
            body = await reader.readexactly(int(head[at + 15 : head.find(b"\r\n", at)]))
            keep = b"connection: close" not in head
            return status, body
        finally:
            if keep:
                idle.append((reader, writer, time.monotonic()))
            else:
                writer.close()

    for i in range(2 * len(paths)):  # warm-up: every symbol's first request (and the connections) before the clock
        await fetch(i)
    for _ in range(max(0, min(64, int(rate // 10) + 4) - len(idle))):  # enough open connections for the rate
        idle.append((*await connect(), time.monotonic()))
    n = int(rate * duration)
    records: list = [None] * n

    async def one(i: int, due: float) -> None:
        stats["in_flight"] += 1
        stats["peak_in_flight"] = max(stats["peak_in_flight"], stats["in_flight"])
        sent, status, err, version = time.monotonic(), 0, None, None
        try:
            status, body = await asyncio.wait_for(fetch(i), TIMEOUT_S)
            if status == 200 and paths[i % len(paths)] == watch:
                version = json.loads(body)["model_versions"].get(horizon)
        except Exception as exc:  # a transport error or a timeout: a failed request
            err = type(exc).__name__
        end = time.monotonic()
        stats["in_flight"] -= 1
        records[i] = (due, sent - due, end - due, status, err, version, end)

    t0 = time.monotonic() + 0.2
    q.put(("start", t0))
    tasks = []
    for i in range(n):
        due = t0 + i / rate
        if (delay := due - time.monotonic()) > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, due)))
    await asyncio.gather(*tasks)
    for _, writer, _ in idle:
        writer.close()
    return {"records": records, **stats}


def _low_priority(fn, *args):
    """Run ``fn`` on a thread at nice 19: the swaps share the generator's core and must not delay its sends."""

    def run():
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
        return fn(*args)

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(run).result()


def _drive(ctx, port: int, paths: list[str], rate: float, duration: float, watch: str | None, swap=None) -> dict:
    """Run the generator against ``port``; ``swap(t0)`` runs in this process meanwhile and returns its events."""
    q = ctx.Queue()
    proc = ctx.Process(target=_load, args=(port, paths, rate, duration, watch, SWAP_HORIZON, q), daemon=True)
    proc.start()
    try:
        _, t0 = q.get(timeout=120)
        events = _low_priority(swap, t0) if swap else []
        result = q.get(timeout=duration + TIMEOUT_S + 120)
    finally:
        proc.join(30)
        if proc.is_alive():
            proc.kill()
    return result | {"events": events}


# -- summaries ----------------------------------------------------------------------------------------------------
def _pct(sorted_ms: list[float], q: float) -> float | None:
    """The nearest-rank ``q`` quantile (None of nothing)."""
    n = len(sorted_ms)
    return round(sorted_ms[min(n - 1, max(0, math.ceil(q * n) - 1))], 2) if n else None


def _latency(records: list) -> dict:
    ok = sorted(r[2] * 1e3 for r in records if r[3] == 200)
    failed = Counter(r[4] or f"HTTP {r[3]}" for r in records if r[3] != 200)
    span = max(r[6] for r in records) - min(r[0] for r in records)
    return {
        "sent": len(records),
        "ok": len(ok),
        "achieved_rps": round(len(ok) / span, 1) if span > 0 else None,
        **{f"p{round(q * 100)}_ms": _pct(ok, q) for q in (0.5, 0.95, 0.99)},
        "max_ms": _pct(ok, 1.0),
        "errors": sum(failed.values()),
        "error_kinds": dict(failed),
        "send_lag_ms_p50_p99": [_pct(lag := sorted(r[1] * 1e3 for r in records), 0.5), _pct(lag, 0.99)],
    }


def _swap_windows(records: list, events: list[dict], duration_end: float) -> dict:
    """Each swap's window [call start, first response naming the new version + 1 s], and what was sent in it."""
    out, total, failed = [], 0, 0
    for ev in events:
        seen = min((r[6] for r in records if r[5] == ev["to"] and r[6] >= ev["start"]), default=None)
        end = (seen + 1.0) if seen is not None else duration_end
        inside = [r for r in records if ev["start"] <= r[0] <= end]
        bad = sum(1 for r in inside if r[3] != 200)
        later = [r for r in records if seen is not None and r[0] > seen and r[6] < ev["until"] and r[5] is not None]
        stale = sum(1 for r in later if r[5] != ev["to"]) if seen is not None else None  # the old version again
        total, failed = total + len(inside), failed + bad
        keep = {k: ev[k] for k in ("action", "model", "from", "to")} | {"call_s": round(ev["call_s"], 3)}
        seen_after = round(seen - ev["start"], 2) if seen is not None else None
        out.append(keep | {"seen_after_s": seen_after, "requests_in_window": len(inside), "failed_in_window": bad})
        out[-1]["old_version_after_seen"] = stale
    return {"windows": out, "requests_in_windows": total, "failed_in_windows": failed}


# -- the bench ----------------------------------------------------------------------------------------------------
def _in_process(settings, n: int, q) -> None:
    """Child: the app's own cost per answer, and per alias poll, on the server core."""
    os.dup2(2, 1)
    _pin(SERVER_CORE)
    from quantmm_serving.main import build_state
    from quantmm_serving.routes.predict import answer

    state = build_state(settings)
    state.tick(force_aliases=True)
    symbols = state.store.snapshot.symbols()
    for s in symbols:  # the first answer of a bar builds its model input
        answer(state, s)
    cycle = itertools.cycle(symbols)
    times = _times_ms(lambda: answer(state, next(cycle)), n)
    polls = _times_ms(state.store.refresh, 20)
    note = "answer(): the route without HTTP; alias poll: one store.refresh(), the app's every alias_poll_seconds"
    q.put(
        {"calls": n, "answer_median_ms": _pct(times, 0.5), "answer_p99_ms": _pct(times, 0.99)}
        | {"alias_poll_median_ms": _pct(polls, 0.5), "note": note}
    )


def _times_ms(fn, n: int) -> list[float]:
    """``n`` timings of ``fn()`` in ms, sorted."""
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1e3)
    return sorted(out)


def bench_serve(home: Path | None = None, duration: float = 15.0, rates: list[float] | None = None) -> dict:
    from bench.serve_world import ensure_world, registry_of, serve_settings
    from quantmm_resources.registry.promotion import current_active, promote, rollback

    started = time.monotonic()
    rates = rates or [50, 100, 200, 300, 400]
    home = home or Path("/tmp/quantmm-bench-serve")
    pinned = _pin(LOAD_CORE)  # this process (the swaps) shares the load generator's core
    with contextlib.redirect_stdout(sys.stderr):
        world = ensure_world(home)
    settings = serve_settings(home, feature_poll_seconds=1.0)
    ctx = mp.get_context("spawn")
    out: dict = {
        "bench": "serve",
        "world": world.describe(),
        "setup": {
            "server": "quantmm_serving.main.create_app under uvicorn (1 worker, auto loop/http, log_level warning)",
            "cores": {"server": SERVER_CORE, "load_generator_and_swaps (nice 19)": LOAD_CORE, "pinned": pinned},
            "poll_seconds": {"alias": settings.alias_poll_seconds, "feature": settings.feature_poll_seconds},
            "load": "open loop, raw asyncio HTTP/1.1 keep-alive, GET /predict/{symbol} cycling over the symbols",
            "duration_s_per_rate": duration,
            "timeout_s": TIMEOUT_S,
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        },
    }
    q = ctx.Queue()
    ctx.Process(target=_in_process, args=(settings, 500, q), daemon=True).start()
    out["in_process"] = q.get(timeout=300)

    paths = [f"/predict/{s}" for s in world.symbols]
    swapped = f"/predict/{world.symbols[0]}"
    name = registry_of(settings).model_name(world.symbols[0], SWAP_HORIZON)
    registry, ops = registry_of(settings), settings.resolved_ops_url
    registry.aliases(name)  # the first MLflow call of this process (imports, engine) happens before the runs

    def swap(t0: float) -> list[dict]:
        events = []
        for at, action in ((0.35, "promote"), (0.70, "rollback")):
            time.sleep(max(0.0, t0 + at * duration - time.monotonic()))
            before = current_active(ops, name)
            start = time.monotonic()
            if action == "promote":
                to = next(v for v in world.versions[name] if v != before)
                promote(registry, ops, name, to, "bench", "bench serve: swap under load", {}, expected_from=before)
            else:
                rollback(registry, ops, name, "bench", "bench serve: swap back under load")
                to = current_active(ops, name)
            ev = {"action": action, "model": name, "from": before, "to": to, "start": start}
            events.append(ev | {"call_s": time.monotonic() - start})
        for ev, nxt in zip(events, [*events[1:], None], strict=True):
            ev["until"] = nxt["start"] if nxt else math.inf
        return events

    runs = []
    for rate in rates:
        with _server(ctx, "app", settings, world.horizons) as (port, startup_s, pid):
            before, t = _cpu_s(SERVER_CORE, pid), time.monotonic()
            result = _drive(ctx, port, paths, float(rate), duration, swapped, swap)
            after, wall = _cpu_s(SERVER_CORE, pid), time.monotonic() - t
        core, server = ((after[k] - before[k]) / wall for k in (0, 1))
        busy = {"busy": round(core, 2), "server_process": round(server, 2), "others": round(max(0, core - server), 2)}
        records = result["records"]
        t_end = max(r[6] for r in records)
        runs.append(
            {"offered_rps": rate, **_latency(records)}
            | {"swap": _swap_windows(records, result["events"], t_end)}
            | {k: result[k] for k in ("connections_opened", "idle_connections_dropped", "peak_in_flight")}
            | {"server_startup_s": startup_s, "server_core_cpu_share": busy}
        )
    out["rates"] = runs
    clean = [r for r in runs if r["errors"] == 0 and r["p99_ms"] is not None and r["p99_ms"] < LIMIT_P99_MS]
    out["highest_rate_p99_under_50ms"] = max((r["offered_rps"] for r in clean), default=None)

    with _server(ctx, "naive", settings, world.horizons) as (port, _, _):
        _get(port, paths[0])  # first request: imports and MLflow's first load
        cycle = itertools.cycle(paths)
        service_ms = _pct(_times_ms(lambda: _get(port, next(cycle)), 3), 0.5)
        naive_rate = round(min(5.0, max(0.5, 500.0 / service_ms)), 2)
        naive = _latency(_drive(ctx, port, paths, naive_rate, NAIVE_SECONDS, None)["records"])
    base = runs[0]
    out["naive"] = {
        "what": "per request: the newest lake partition read, ModelRegistry.load(name, 'active') per horizon",
        "sequential_service_ms": service_ms,
        "offered_rps": naive_rate,
        **naive,
        "ratio_naive_p50_over_app_p50": (
            round(naive["p50_ms"] / base["p50_ms"], 1) if naive["p50_ms"] and base["p50_ms"] else None
        ),
        "app_p50_from": f"the app at {base['offered_rps']} req/s",
    }

    at = next((r for r in runs if r["offered_rps"] == TARGET_RATE), None)
    why = [f"{TARGET_RATE} req/s was not among the offered rates"] if at is None else []
    if at is not None and (at["p99_ms"] is None or at["p99_ms"] >= TARGET_P99_MS):
        why.append(f"p99 {at['p99_ms']} ms at {TARGET_RATE} req/s (target < {TARGET_P99_MS:g} ms)")
    if at is not None and at["errors"]:
        why.append(f"{at['errors']} errors at {TARGET_RATE} req/s")
    if at is not None and at["swap"]["failed_in_windows"]:
        why.append(f"{at['swap']['failed_in_windows']} failed requests in the swap windows")
    out["target"] = {
        "criterion": f"p99 < {TARGET_P99_MS:g} ms at {TARGET_RATE} req/s, zero errors, no failed request in a swap",
        "met": not why,
        "why_not": why,
    }
    out["seconds"] = round(time.monotonic() - started, 1)
    return out
