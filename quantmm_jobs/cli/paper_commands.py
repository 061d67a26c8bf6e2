"""``quantmm serve`` (the HTTP app under uvicorn) and ``quantmm paper replay | live | kill | resume | status``."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, date, datetime, time, timedelta

from quantmm_resources.paper_store import halt_state, set_halt
from quantmm_resources.registry.gated_promotion import operator_name
from quantmm_resources.settings import QuantmmSettings, get_settings


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from quantmm_serving.main import create_app

    print(f"serving on http://{args.host}:{args.port} (docs at /docs; Ctrl-C stops)")
    uvicorn.run(create_app(get_settings()), host=args.host, port=args.port, log_level=args.log_level)
    return 0


def _config(args: argparse.Namespace, default_book: str):
    from quantmm_serving.paper.engine import PaperConfig

    return PaperConfig(book=args.book or default_book, initial_cash=args.cash)


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def cmd_paper(args: argparse.Namespace) -> int:
    settings = get_settings()
    if args.paper_cmd == "replay":
        return paper_replay(settings, args)
    if args.paper_cmd == "live":
        from quantmm_serving.paper.run import run_live_step

        print(json.dumps(run_live_step(settings, _config(args, "paper")), indent=2, default=str))
        return 0
    book = args.book or "paper"
    if args.paper_cmd in ("kill", "resume"):
        halted = args.paper_cmd == "kill"
        set_halt(settings.resolved_ops_url, book, halted, args.reason, operator_name(args.operator))
        print(f"paper book {book!r}: {'halted (kill switch engaged)' if halted else 'resumed'}: {args.reason}")
        return 0
    from quantmm_serving.paper.run import summarize

    print(
        json.dumps(
            {**summarize(settings.resolved_ops_url, book), "kill_switch": halt_state(settings.resolved_ops_url, book)},
            indent=2,
            default=str,
        )
    )
    return 0


def paper_replay(settings: QuantmmSettings, args: argparse.Namespace) -> int:
    from quantmm_serving.paper.run import run_replay

    end = _start_of(args.end) + timedelta(days=1) - timedelta(minutes=5)
    start = _start_of(args.start)
    book = f"replay-{args.start:%Y%m%d}-{args.end:%Y%m%d}"  # a range of its own (--book to continue another)
    summary = run_replay(settings, start, end, _config(args, book), args.symbols, progress=print)
    print(json.dumps(summary, indent=2, default=str))
    return 0


def add_commands(sub: argparse._SubParsersAction, day) -> None:
    s = sub.add_parser("serve", help="the HTTP app (predictions, portfolio, registry, monitoring) under uvicorn")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--log-level", default="info")
    s.set_defaults(func=cmd_serve)

    p = sub.add_parser("paper", help="the paper-trading loop: replay a range, step live, kill switch, status")
    ps = p.add_subparsers(dest="paper_cmd", required=True)
    pr = ps.add_parser("replay", help="step through [START, END] quickly, never with a model that saw the step")
    pr.add_argument("--start", type=day, required=True)
    pr.add_argument("--end", type=day, required=True, help="last day, inclusive")
    pr.add_argument("--symbols", nargs="*", help="default: every universe symbol")
    pl = ps.add_parser("live", help="one step on the newest complete bar with the active models")
    pk = ps.add_parser("kill", help="engage the kill switch: the loop places no order until resumed")
    pu = ps.add_parser("resume", help="release the kill switch")
    pst = ps.add_parser("status", help="equity, PnL and its parts, the kill switch")
    for cmd in (pr, pl, pk, pu, pst):
        cmd.add_argument("--book", help="the paper book (default: 'replay-START-END' for replay, else 'paper')")
    for cmd in (pr, pl):
        cmd.add_argument("--cash", type=float, default=100_000.0, help="initial cash of a new book (quote units)")
    for cmd in (pk, pu):
        cmd.add_argument("--reason", required=True)
        cmd.add_argument("--operator", help="who (default: the OS user)")
    p.set_defaults(func=cmd_paper)
