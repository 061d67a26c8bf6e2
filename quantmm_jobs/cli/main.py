"""``quantmm`` command line: demo, bundle import/export, features, train, registry, readiness audit, serve, paper."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path

from quantmm_jobs.cli.paper_commands import add_commands as add_paper_commands
from quantmm_jobs.cli.printing import print_runs, report_failures
from quantmm_resources.settings import get_settings


def cmd_demo(args: argparse.Namespace) -> int:
    from quantmm_jobs.cli.demo import run_demo

    return run_demo(history=args.days, symbols=args.symbols)


def cmd_bundle_import(args: argparse.Namespace) -> int:
    from quantmm_jobs.cli.bundle_import import import_bundle

    runs = import_bundle(Path(args.dir), start=args.start, end=args.end, symbols=args.symbols)
    print_runs(runs)
    return report_failures(runs)


def cmd_bundle_export(args: argparse.Namespace) -> int:
    from quantmm_resources.bundle_export import export_bundle

    summary = export_bundle(get_settings().lake_dir, Path(args.dir))
    print(json.dumps(summary, indent=2, default=str))
    return 0


def cmd_features(args: argparse.Namespace) -> int:
    from quantmm_jobs.cli.layer_commands import build_features

    folds = {
        "n_folds": args.folds,
        "test_days": args.test_days,
        "min_train_days": args.min_train_days,
        "inner_k": args.inner_k,
        "mode": args.fold_mode,
    }
    fold_config = {k: v for k, v in folds.items() if v is not None} or None
    runs = build_features(get_settings(), args.start, args.end, args.symbols, fold_config)
    print_runs(runs)
    return report_failures(runs)


def cmd_train(args: argparse.Namespace) -> int:
    from quantmm_jobs.cli.layer_commands import report_location, train, train_config
    from quantmm_jobs.cli.runs import instance_for

    settings = get_settings()
    config = train_config(args.horizons, args.row_stride, args.overrides)
    instance = instance_for(settings)
    runs = train(settings, args.backbones, config, instance)
    print_runs(runs)
    if runs[-1].success:
        print(f"\nbackbone report: {report_location(instance)}")
    return report_failures(runs)


def cmd_readiness(args: argparse.Namespace) -> int:
    from quantmm_assets.core.readiness.audit import to_markdown
    from quantmm_assets.defs.readiness import default_plot_path, readiness_report
    from quantmm_resources.lake import LakeResource

    settings = get_settings()
    lake = LakeResource(base_dir=str(settings.lake_dir))
    plot = default_plot_path(lake, args.mode) if args.plot else None
    report = readiness_report(lake, args.mode, args.lookback_days or settings.readiness_lookback_days, plot=plot)
    print(json.dumps(report, indent=2) if args.json else to_markdown(report))
    return 0


def cmd_registry(args: argparse.Namespace) -> int:
    from quantmm_jobs.cli import registry_commands as rc

    settings = get_settings()
    if args.registry_cmd == "list":
        return rc.cmd_list(settings, args.json)
    if args.registry_cmd == "promote":
        return rc.cmd_promote(settings, args.symbol, args.horizon, args.operator, args.reason, args.version)
    if args.registry_cmd == "rollback":
        return rc.cmd_rollback(settings, args.symbol, args.horizon, args.operator, args.reason)
    return rc.cmd_history(settings, args.symbol, args.horizon)


def _day(s: str) -> date:
    return date.fromisoformat(s)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="quantmm", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("demo", help="run the graph on the synthetic sample (ingest to backbone report), print it")
    d.add_argument("--days", type=int, default=45, help="days of history before today (today is added, partial)")
    d.add_argument("--symbols", nargs="*", default=None, help="default: every symbol of the universe")
    d.set_defaults(func=cmd_demo)

    b = sub.add_parser("bundle", help="offline bundle import / export").add_subparsers(dest="bundle_cmd", required=True)
    bi = b.add_parser("import", help="materialize the raw assets from a bundle directory through Dagster")
    bi.add_argument("dir")
    bi.add_argument("--start", type=_day, help="first day (default: the bundle's first)")
    bi.add_argument("--end", type=_day, help="last day, inclusive (default: the bundle's last)")
    bi.add_argument("--symbols", nargs="*", help="default: every universe symbol the bundle has")
    bi.set_defaults(func=cmd_bundle_import)
    be = b.add_parser("export", help="write a bundle from the lake")
    be.add_argument("dir")
    be.set_defaults(func=cmd_bundle_export)

    f = sub.add_parser("features", help="the derived layer, labels and walk-forward folds over the raw lake")
    f.add_argument("--start", type=_day, help="first day (default: the raw lake's first)")
    f.add_argument("--end", type=_day, help="last day, inclusive (default: the raw lake's last)")
    f.add_argument("--symbols", nargs="*", help="default: every universe symbol the raw lake has")
    f.add_argument("--folds", type=int, help="walk-forward folds (default: the FoldConfig default)")
    f.add_argument("--test-days", type=int, help="test days per fold")
    f.add_argument("--min-train-days", type=int, help="days of the first training window")
    f.add_argument("--inner-k", type=int, help="validation blocks of the purged k-fold inside each training window")
    f.add_argument(
        "--fold-mode",
        choices=["production", "research"],
        help="production (default): train windows roll at 365 days; research: all history, only when the "
        "readiness audit passes for the required data kinds",
    )
    f.set_defaults(func=cmd_features)

    t = sub.add_parser("train", help="trained_backbones (one run per backbone), then backbone_report")
    t.add_argument("--backbones", nargs="*", help="default: every registered backbone")
    t.add_argument("--horizons", nargs="*", help="default: every label horizon (1h 4h 1d 7d)")
    t.add_argument("--row-stride", type=int, help="keep every k-th 5-minute row per symbol (12: hourly)")
    t.add_argument("--overrides", help='JSON {"backbone": {"param": value}} over the default grids')
    t.set_defaults(func=cmd_train)

    g = sub.add_parser("registry", help="the MLflow registry: list, promote, rollback, history (the ledger)")
    gs = g.add_subparsers(dest="registry_cmd", required=True)
    gl = gs.add_parser("list", help="per symbol and horizon: candidate, active, previous and the gate verdict")
    gl.add_argument("--json", action="store_true")
    gp = gs.add_parser(
        "promote", help="promote the gated candidate of SYMBOL HORIZON (refused unless its gates passed)"
    )
    gr = gs.add_parser("rollback", help="restore the previously active version of SYMBOL HORIZON")
    for cmd in (gp, gr):
        cmd.add_argument("symbol")
        cmd.add_argument("horizon")
        cmd.add_argument("--operator", help="who does it (default: the OS user); recorded in the ledger")
        cmd.add_argument("--reason", required=True, help="why; recorded in the ledger")
    gp.add_argument("--version", help="the version meant (refused unless it is the one the gates passed)")
    gh = gs.add_parser("history", help="the promotion ledger (newest first), of one SYMBOL HORIZON or all")
    gh.add_argument("symbol", nargs="?")
    gh.add_argument("horizon", nargs="?")
    g.set_defaults(func=cmd_registry)

    r = sub.add_parser("readiness", help="coverage of each data kind and the backfills that would fill gaps")
    r.add_argument("--mode", choices=["production", "research"], default="production")
    r.add_argument("--lookback-days", type=int, default=None)
    r.add_argument("--json", action="store_true")
    r.add_argument("--plot", action="store_true", help="also write the daily coverage heatmap (PNG) and print its path")
    r.set_defaults(func=cmd_readiness)
    add_paper_commands(sub, _day)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError) as exc:
        print(f"quantmm: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
