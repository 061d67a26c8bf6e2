"""Leakage check results in Dagster: a failure blocks, a pass passes, and a check that compared nothing is no pass
(WARN severity) that does not stop the pipeline (Dagster blocks only on failed ERROR-severity blocking checks)."""

import dagster as dg
import polars as pl
import pytest

from quantmm_assets.core.leakage.asof import LeakageOutcome, compared_nothing
from quantmm_assets.defs.checks.leakage_checks import MATRIX_CHECKS, matrix_leakage_results
from quantmm_assets.defs.checks.leakage_results import leakage_result

CLEAN = LeakageOutcome("3 rows: all equal", 3)
LEAK = LeakageOutcome("3 rows: 1 differs", 3, ["row at t: x: stored 1 vs recomputed 2"])
NOTHING = compared_nothing("no rows in this run")


def test_results_of_clean_leaky_and_empty_outcomes():
    clean, leak, nothing = (leakage_result("a", "c", o, 0.0) for o in (CLEAN, LEAK, NOTHING))
    assert clean.passed and clean.severity == dg.AssetCheckSeverity.ERROR
    assert not leak.passed and leak.severity == dg.AssetCheckSeverity.ERROR
    assert not nothing.passed and nothing.severity == dg.AssetCheckSeverity.WARN
    assert nothing.metadata["nothing_compared"].value is True and nothing.metadata["compared"].value == 0
    assert nothing.description.startswith("compared nothing") and clean.metadata["nothing_compared"].value is False


def test_a_matrix_run_without_rows_compares_nothing_and_does_not_pass():
    stored = pl.DataFrame(schema={"symbol": pl.Utf8, "ts_event": pl.Datetime("us", "UTC")})
    results = list(matrix_leakage_results(stored, None, lambda *_: None, 384, ["BTCUSDT"]))
    assert [r.check_name for r in results] == list(MATRIX_CHECKS)
    for r in results:
        assert not r.passed and r.severity == dg.AssetCheckSeverity.WARN
        assert r.metadata["nothing_compared"].value is True and "no rows" in r.description


def _graph(outcome: LeakageOutcome) -> list:
    @dg.asset(check_specs=[dg.AssetCheckSpec("leak", asset="upstream", blocking=True)])
    def upstream():
        yield dg.Output(1)
        yield leakage_result("upstream", "leak", outcome, 0.0)

    @dg.asset
    def downstream(upstream: int) -> int:
        return upstream + 1

    return [upstream, downstream]


@pytest.mark.parametrize(("outcome", "runs_on"), [(CLEAN, True), (NOTHING, True), (LEAK, False)])
def test_only_a_leak_stops_the_downstream_assets(outcome: LeakageOutcome, runs_on: bool):
    with dg.instance_for_test() as instance:
        result = dg.materialize(_graph(outcome), instance=instance, raise_on_error=False)
        (evaluation,) = result.get_asset_check_evaluations()
        assert evaluation.passed is outcome.passed
        assert result.success is runs_on
        done = instance.get_latest_materialization_event(dg.AssetKey("downstream"))
        assert (done is not None) is runs_on
