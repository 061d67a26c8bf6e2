"""The inputs of the leakage and data-quality gates, read from the instance and the lake (the pure rules are in
``core.gates.input_gates``)."""

from __future__ import annotations

from datetime import date
from typing import Any

import dagster as dg

from quantmm_assets.core.gates.input_gates import Checklist, CheckRun, data_quality_gate, leakage_gate
from quantmm_assets.core.readiness.audit import ReadinessWindow, audit
from quantmm_assets.defs.matrix_assets import feature_matrix_main, labels_multi_horizon, walk_forward_folds
from quantmm_resources.instance_lineage import blocking_checks, check_results
from quantmm_resources.lake import LakeLayout
from quantmm_resources.lake_views import daily_counts
from quantmm_resources.settings import get_settings

GUARDED = (feature_matrix_main, labels_multi_horizon, walk_forward_folds)


def leakage_from_lineage(instance: dg.DagsterInstance, lineage: dict[str, Any], subject: str) -> Checklist:
    """The leakage gate over the runs a training run's lineage names (``lineage["partitions"]``)."""
    expected = {a.key.to_user_string(): blocking_checks(a) for a in GUARDED}
    runs: dict[str, set[str]] = {name: set() for name in expected}
    for entry in lineage.get("partitions", []):
        if entry.get("asset") in runs and entry.get("run_id") is not None:
            runs[entry["asset"]].add(entry["run_id"])
    results = []
    for asset in GUARDED:
        name = asset.key.to_user_string()
        for check in expected[name]:
            found = check_results(instance, asset.key, check, runs[name])
            for run_id in sorted(runs[name]):
                verdict = found.get(run_id)
                status, compared = (verdict.status, verdict.compared) if verdict else ("not run", 0)
                results.append(CheckRun(name, check, run_id, status, compared))
    return leakage_gate(subject, results, expected)


def coverage_gate(
    lake: LakeLayout,
    symbol: str,
    subject: str,
    first: date,
    last: date,
    required: list[str],
    threshold: float,
) -> Checklist:
    """The data-quality gate over [first, last] (the candidate's training window) for ``symbol``."""
    report = audit(daily_counts(lake), get_settings().universe(), ReadinessWindow("training", first, last))
    coverage: dict[str, float | None] = {}
    for kind, entry in report["kinds"].items():
        per = entry["per_symbol"]
        coverage[kind] = (per.get(symbol) or per.get("*") or {}).get("coverage")
    return data_quality_gate(subject, coverage, tuple(required), threshold)
