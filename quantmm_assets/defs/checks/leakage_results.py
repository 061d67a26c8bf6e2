"""The Dagster side of the leakage checks computed in core (``core/leakage/``): the as-of check spec of the
derived assets and the check results of their outcomes."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import dagster as dg

from quantmm_assets.core.leakage.asof import LeakageOutcome

ASOF_SAMPLES = 20  # per family asset; feature_matrix_main rebuilds 40 whole rows and 50 cuts
ASOF = "asof_alignment"
ASOF_DESCRIPTION = (
    "Blocking: sampled rows rebuilt from the input rows available at their t (availability recomputed from "
    "ts_event, never the stamped ts_available) equal the stored rows"
)


def asof_spec(asset: str) -> list[dg.AssetCheckSpec]:
    """The blocking as-of alignment check of a derived asset."""
    return [dg.AssetCheckSpec(ASOF, asset=asset, blocking=True, description=ASOF_DESCRIPTION)]


def leakage_result(asset: str, check: str, outcome: LeakageOutcome, seconds: float) -> dg.AssetCheckResult:
    """The check result of a leakage outcome: ERROR severity (blocking where declared so) when the check compared
    something. A check that compared nothing (a run with no rows, partitions before a listing, no fold) is
    ``passed=False`` with WARN severity and ``nothing_compared`` in its metadata: it is not a pass, and it does
    not stop the pipeline, because Dagster (1.13, ``execute_step``) fails the step and skips the downstream
    assets only for a failed blocking check of ERROR severity."""
    nothing = outcome.nothing_compared
    return dg.AssetCheckResult(
        asset_key=asset,
        check_name=check,
        passed=outcome.passed,
        severity=dg.AssetCheckSeverity.WARN if nothing else dg.AssetCheckSeverity.ERROR,
        description=outcome.description,
        metadata={
            "compared": outcome.checked,
            "nothing_compared": nothing,
            "not_compared": len(outcome.skipped),
            "not_compared_why": dg.MetadataValue.json(outcome.skipped[:20]),
            "failures": dg.MetadataValue.json(outcome.failures),
            "check_seconds": round(seconds, 3),
        },
    )


def run_check(asset: str, check: str, fn: Callable[[], LeakageOutcome]) -> Iterator[dg.AssetCheckResult]:
    t0 = time.perf_counter()
    outcome = fn()
    yield leakage_result(asset, check, outcome, time.perf_counter() - t0)
