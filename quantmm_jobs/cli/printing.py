"""What the operator commands print about their runs."""

from __future__ import annotations

import sys

from quantmm_jobs.cli.runs import RangeRun


def print_runs(runs: list[RangeRun]) -> None:
    """Print each run: assets, partitions, rows, quarantined rows, checks and the failed ones."""
    for r in runs:
        status = "ok" if r.success else "FAILED"
        print(
            f"\n[{status}] {', '.join(r.assets)}  partitions {r.partition_range} ({r.partitions})  "
            f"{r.wall_seconds:.1f}s  run {r.run_id[:8]}"
        )
        for asset, n in r.rows.items():
            quarantined = f"   {r.rejected[asset]:>6,} quarantined" if asset in r.rejected else ""
            print(f"    {asset:<22} {n:>10,} rows{quarantined}")
        failed, warned = r.failed_checks, r.warned_checks
        passed = len(r.checks) - len(failed) - len(warned)
        print(f"    checks: {passed}/{len(r.checks)} passed" + (f", {len(warned)} warned" if warned else ""))
        for name, verdict in {**failed, **warned}.items():
            print(f"      {name}: {verdict[:160]}")


def report_failures(runs: list[RangeRun]) -> int:
    """Name every failed check and step with the run's partitions on stderr; return the exit status (1: a failure)."""
    failed = [r for r in runs if not r.success]
    for r in failed:
        what = ", ".join(r.failed_checks) or "no check failed"
        print(f"quantmm: run {r.run_id[:8]} failed over partitions {r.partition_range}: {what}", file=sys.stderr)
        for name, verdict in r.failed_checks.items():
            print(f"  check {name}: {verdict[:400]}", file=sys.stderr)
            for finding in r.findings.get(name, []):
                print(f"    {finding[:300]}", file=sys.stderr)
        for step, message in r.errors.items():
            print(f"  step {step}: {message.splitlines()[0][:400] if message else 'failed'}", file=sys.stderr)
    return 1 if failed else 0
