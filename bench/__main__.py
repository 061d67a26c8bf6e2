"""``python -m bench ingest|features|train|gates|serve|paper``: the benchmarks, printed as JSON (``make bench`` runs
all six)."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path


def cmd_ingest(args: argparse.Namespace) -> int:
    from bench.ingest import bench_ingest

    print(json.dumps(bench_ingest(args.data), indent=2))
    return 0


def cmd_features(args: argparse.Namespace) -> int:
    from bench.features import bench_features

    out = bench_features(args.data, args.home)
    print(json.dumps(out, indent=2, default=str))
    return 0 if out["partitioned_build"]["success"] and out["one_pass_floor"]["equal_within_1e-9"] else 1


def cmd_train(args: argparse.Namespace) -> int:
    from bench.train import bench_train

    print(json.dumps(bench_train(args.data, args.home, args.backbones, args.text_encoder), indent=2, default=str))
    return 0


def cmd_gates(args: argparse.Namespace) -> int:
    from bench.gates import bench_gates

    out = bench_gates(args.data, args.home, args.backbones, args.text_encoder)
    print(json.dumps(out, indent=2, default=str))
    return 0 if out["training"]["success"] and out["registration"]["success"] else 1


def cmd_serve(args: argparse.Namespace) -> int:
    from bench.serve import bench_serve

    print(json.dumps(bench_serve(args.home, args.duration, args.rates), indent=2, default=str))
    return 0


def cmd_paper(args: argparse.Namespace) -> int:
    from bench.paper import bench_paper

    out = bench_paper(args.home, args.synthetic_home, args.days)
    print(json.dumps(out, indent=2, default=str))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    sub = p.add_subparsers(dest="bench", required=True)
    data = {"type": Path, "default": None, "help": "default: ../shared/data beside the repository"}
    ing = sub.add_parser("ingest", help="import ../shared/data's bars, funding and mark prices through Dagster")
    ing.add_argument("--data", **data)
    ing.set_defaults(func=cmd_ingest)
    feat = sub.add_parser("features", help="the feature layer on ../shared/data: partitioned vs one-pass, MiniLM")
    feat.add_argument("--data", **data)
    feat.add_argument("--home", type=Path, help="bench home (kept; its raw lake is reused when present)")
    feat.set_defaults(func=cmd_features)
    train = sub.add_parser("train", help="every backbone through the walk-forward on ../shared/data, with baselines")
    train.add_argument("--data", **data)
    train.add_argument("--home", type=Path, help="bench home (its lake is reused when it holds the feature matrix)")
    train.add_argument("--backbones", nargs="*", default=None, help="default: every registered backbone")
    train.add_argument("--text-encoder", choices=["minilm", "hashing"], default="minilm")
    train.set_defaults(func=cmd_train)
    gates = sub.add_parser("gates", help="the promotion gates on ../shared/data (1h, 4h, 1d) and the registry timings")
    gates.add_argument("--data", **data)
    gates.add_argument("--home", type=Path, help="bench home (its lake is reused when it holds the feature matrix)")
    gates.add_argument("--backbones", nargs="*", default=None, help="default: ridge lightgbm")
    gates.add_argument("--text-encoder", choices=["minilm", "hashing"], default="minilm")
    gates.set_defaults(func=cmd_gates)
    serve = sub.add_parser("serve", help="GET /predict of the served app under open-loop load, with an alias swap")
    serve.add_argument("--home", type=Path, help="bench home (its served world is built once and reused)")
    serve.add_argument("--duration", type=float, default=15.0, help="seconds of load per offered rate")
    serve.add_argument("--rates", type=float, nargs="+", default=[50, 100, 200, 300, 400, 500], help="offered req/s")
    serve.set_defaults(func=cmd_serve)
    paper = sub.add_parser("paper", help="the paper replay: 30 days x 10 synthetic symbols, 30 days x 5 real ones")
    paper.add_argument("--home", type=Path, help="the bench home `bench gates` built (real data; skipped when absent)")
    paper.add_argument(
        "--synthetic-home",
        type=Path,
        default=Path(tempfile.gettempdir()) / "quantmm-bench-paper",
        help="the synthetic world (built once, reused when present; default: quantmm-bench-paper in the temp dir)",
    )
    paper.add_argument("--days", type=int, default=30, help="days replayed")
    paper.set_defaults(func=cmd_paper)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
