"""The leakage and data-quality gates on a candidate's inputs (core.gates.input_gates)."""

import json

import pytest

from quantmm_assets.core.gates.input_gates import CheckRun, data_quality_gate, leakage_gate

EXPECTED = {"feature_matrix_main": ["asof_alignment", "truncation_invariance"], "walk_forward_folds": ["fold_hygiene"]}


def _runs(**overrides) -> list[CheckRun]:
    base = [
        CheckRun("feature_matrix_main", "asof_alignment", "run-a", "passed", 40),
        CheckRun("feature_matrix_main", "asof_alignment", "run-b", "passed", 40),
        CheckRun("feature_matrix_main", "truncation_invariance", "run-a", "passed", 50),
        CheckRun("feature_matrix_main", "truncation_invariance", "run-b", "passed", 50),
        CheckRun("walk_forward_folds", "fold_hygiene", "run-c", "passed", 6),
    ]
    return [overrides.get(f"{r.check}:{r.run_id}", r) for r in base]


def test_the_leakage_gate_passes_when_every_run_of_the_lineage_passed_and_compared_rows():
    gate = leakage_gate("BTCUSDT 1h", _runs(), EXPECTED)
    assert gate.passed and gate.deciding == "all criteria"
    assert [c.value for c in gate.criteria] == [80, 100, 6]  # rows compared summed over the runs


def test_one_failed_run_of_the_lineage_fails_the_leakage_gate_naming_it():
    failed = CheckRun("feature_matrix_main", "truncation_invariance", "run-b0000000", "failed", 50)
    gate = leakage_gate("BTCUSDT 1h", _runs(**{"truncation_invariance:run-b": failed}), EXPECTED)
    assert not gate.passed and gate.deciding == "feature_matrix_main.truncation_invariance"
    bad = next(c for c in gate.criteria if not c.passed)
    assert "1 of the 2 run(s)" in bad.why and "run-b000 failed" in bad.why
    assert [c.passed for c in gate.criteria] == [True, False, True]  # every criterion evaluated


def test_a_check_that_compared_nothing_vouches_for_nothing():
    empty = [CheckRun("walk_forward_folds", "fold_hygiene", "run-c", "passed", 0)]
    gate = leakage_gate("BTCUSDT 1h", [r for r in _runs() if r.asset != "walk_forward_folds"] + empty, EXPECTED)
    assert not gate.passed and gate.deciding == "walk_forward_folds.fold_hygiene"
    assert "compared nothing" in gate.criteria[-1].why


def test_an_asset_the_lineage_does_not_name_fails():
    gate = leakage_gate("BTCUSDT 1h", [r for r in _runs() if r.asset != "walk_forward_folds"], EXPECTED)
    assert not gate.passed and "names no run" in gate.criteria[-1].why


def test_nothing_to_check_is_not_a_pass():
    gate = leakage_gate("BTCUSDT 1h", [], {})
    assert not gate.passed and gate.deciding == "nothing to check"
    assert "not a pass" in gate.to_markdown()


COVERAGE = {"perp_bars_5m": 0.99, "funding": 0.97, "spot_bars_5m": None, "social_posts": 0.17, "macro": 1.0}


def test_required_kinds_decide_the_data_quality_gate_and_the_others_only_lower_confidence():
    gate = data_quality_gate("ETHUSDT 4h", COVERAGE)
    assert gate.passed
    assert [c.name for c in gate.criteria if c.passed is not None] == ["coverage.perp_bars_5m", "coverage.funding"]
    assert gate.confidence == (
        "social_posts covers 17.0% of the window",
        "spot_bars_5m covers no listed day of the window",
    )
    doc = json.loads(json.dumps(gate.to_dict()))
    assert doc["verdict"] == "pass" and len(doc["criteria"]) == 5


def test_thin_funding_fails_the_data_quality_gate_at_the_threshold():
    assert data_quality_gate("X 1h", {**COVERAGE, "funding": 0.95}).passed  # at the threshold: passes
    gate = data_quality_gate("X 1h", {**COVERAGE, "funding": 0.9499})
    assert not gate.passed and gate.deciding == "coverage.funding" and "too few" in gate.criteria[1].why


def test_a_required_kind_with_no_listed_day_compares_nothing_and_fails():
    gate = data_quality_gate("NEWUSDT 1h", {**COVERAGE, "perp_bars_5m": None})
    assert not gate.passed and "nothing to compare" in gate.criteria[0].why
    with pytest.raises(ValueError, match="unknown required data kinds"):
        data_quality_gate("X 1h", COVERAGE, required=("order_book",))


THRESHOLD = "every run passed, rows compared > 0"


def _rows(gate):
    return [(c.name, c.value, c.threshold, c.passed) for c in gate.criteria]


def test_the_leakage_criteria_row_by_row_and_one_row_compared_is_enough():
    one = [CheckRun("feature_matrix_main", "asof_alignment", "", "passed", 1)]  # a runless vouch comparing 1 row
    gate = leakage_gate(
        "BTCUSDT 1h", one, {"walk_forward_folds": ["fold_hygiene"], "feature_matrix_main": ["asof_alignment"]}
    )
    assert _rows(gate) == [
        ("feature_matrix_main.asof_alignment", 1, THRESHOLD, True),  # sorted by asset; the missing one still follows
        ("walk_forward_folds.fold_hygiene", 0, THRESHOLD, False),
    ]
    assert gate.criteria[0].why == "it passed in all 1 run(s) behind the training data, comparing 1 rows"
    assert gate.criteria[1].why == "the lineage names no run of this asset: nothing vouches for it"
    failed = [CheckRun("feature_matrix_main", "asof_alignment", "", "failed", 40)]
    (row,) = leakage_gate("X 1h", failed, {"feature_matrix_main": ["asof_alignment"]}).criteria
    assert row.why == "1 of the 1 run(s) behind the training data did not pass it (runless failed)"


def test_a_failing_checklist_reports_fail_in_json_and_markdown():
    gate = leakage_gate("BTCUSDT 1h", [], {"walk_forward_folds": ["fold_hygiene"]})
    assert gate.to_dict() == {
        "gate": "Leakage gate",
        "subject": "BTCUSDT 1h",
        "verdict": "fail",
        "deciding": "walk_forward_folds.fold_hygiene",
        "criteria": [
            {
                "name": "walk_forward_folds.fold_hygiene",
                "value": 0,
                "threshold": THRESHOLD,
                "passed": False,
                "why": "the lineage names no run of this asset: nothing vouches for it",
            }
        ],
        "confidence": [],
    }
    assert gate.to_markdown().splitlines() == [
        "Leakage gate for BTCUSDT 1h",
        "",
        "| criterion | value | threshold | pass/fail | why |",
        "|---|---|---|---|---|",
        f"| walk_forward_folds.fold_hygiene | 0 | {THRESHOLD} | fail | the lineage names no run of this asset: "
        "nothing vouches for it |",
        "",
        "**Verdict: fail** (deciding: walk_forward_folds.fold_hygiene)",
    ]


def test_the_data_quality_criteria_row_by_row():
    gate = data_quality_gate(
        "ETHUSDT 4h", {"perp_bars_5m": 0.98765, "funding": 0.5, "social_posts": 0.95, "macro": None}
    )
    assert _rows(gate) == [
        ("coverage.perp_bars_5m", 0.9877, ">= 95%", True),
        ("coverage.funding", 0.5, ">= 95%", False),
        ("coverage.macro", None, "reported", None),
        ("coverage.social_posts", 0.95, "reported", None),
    ]
    whys = [c.why for c in gate.criteria]
    assert whys == [
        "98.8% of the listed days in the training window have perp_bars_5m",
        "50.0% of the listed days in the training window have funding, too few",
        "optional kind: no listed day covered",
        "optional kind: 95.0% covered",
    ]
    assert gate.confidence == ("macro covers no listed day of the window",)  # 95% exactly does not lower it
    markdown = gate.to_markdown()
    assert markdown.endswith("**Verdict: fail** (deciding: coverage.funding)\n\nLower confidence (reported, not "
                             "failed): macro covers no listed day of the window")  # fmt: skip
    assert "| coverage.macro |  | reported | n/a | optional kind: no listed day covered |" in markdown


def test_a_required_kind_with_no_listed_day_does_not_stop_the_others_being_checked():
    gate = data_quality_gate("NEWUSDT 1h", {"perp_bars_5m": None, "funding": 0.2})
    assert _rows(gate) == [("coverage.perp_bars_5m", None, ">= 95%", False), ("coverage.funding", 0.2, ">= 95%", False)]


def test_a_passing_checklist_in_markdown_and_json_and_a_missing_asset_does_not_stop_the_next():
    runs = [CheckRun("walk_forward_folds", "fold_hygiene", "run-c", "passed", 6)]
    gate = leakage_gate(
        "X 1h", runs, {"feature_matrix_main": ["asof_alignment"], "walk_forward_folds": ["fold_hygiene"]}
    )
    assert [c.name for c in gate.criteria] == ["feature_matrix_main.asof_alignment", "walk_forward_folds.fold_hygiene"]
    assert [c.passed for c in gate.criteria] == [False, True]
    ok = leakage_gate("X|Y 1h", runs, {"walk_forward_folds": ["fold_hygiene"]})
    why = "it passed in all 1 run(s) behind the training data, comparing 6 rows"
    assert ok.to_markdown().splitlines()[0] == "Leakage gate for X|Y 1h"
    assert ok.to_markdown().splitlines()[4:] == [
        f"| walk_forward_folds.fold_hygiene | 6 | {THRESHOLD} | pass | {why} |",
        "",
        "**Verdict: pass** (deciding: all criteria)",
    ]
    empty = leakage_gate("X 1h", [], {}).to_markdown().splitlines()
    assert empty[4] == "| (none) | | | fail | nothing was there to check, which is not a pass |"
    quality = data_quality_gate("A\\|B 1d", {"perp_bars_5m": 1.0, "funding": 1.0, "macro": 0.1, "social_posts": 0.2})
    doc = quality.to_dict()
    assert (doc["gate"], doc["subject"], doc["verdict"]) == ("Data-quality gate", "A\\|B 1d", "pass")
    assert quality.to_markdown().endswith(
        "Lower confidence (reported, not failed): macro covers 10.0% of the window; social_posts covers 20.0% of the "
        "window"
    )
    piped = data_quality_gate("Z 1h", {"perp_bars_5m": None, "funding": 1.0}).to_markdown()
    assert (
        "| coverage.perp_bars_5m |  | >= 95% | fail | the symbol has no listed day in the training window: nothing to "
        "compare, which is not a pass |" in piped
    )
    bad = [CheckRun("feature_matrix_main", "asof_alignment", f"r{i}", "failed", 1) for i in range(7)]
    (row,) = leakage_gate("X 1h", bad, {"feature_matrix_main": ["asof_alignment"]}).criteria
    assert (
        row.why == "7 of the 7 run(s) behind the training data did not pass it (r0 failed, r1 failed, r2 failed, "
        "r3 failed, r4 failed)"
    )  # the first five named
    table = leakage_gate("a|b", [], {"x|y": ["c"]}).to_markdown()
    assert "| x\\|y.c | 0 |" in table  # a pipe inside a cell is escaped


def test_a_check_with_no_run_does_not_stop_the_next_check_of_the_same_asset():
    runs = [CheckRun("feature_matrix_main", "truncation_invariance", "r", "passed", 50)]
    gate = leakage_gate("X 1h", runs, {"feature_matrix_main": ["asof_alignment", "truncation_invariance"]})
    assert [(c.name, c.passed) for c in gate.criteria] == [
        ("feature_matrix_main.asof_alignment", False),
        ("feature_matrix_main.truncation_invariance", True),
    ]
