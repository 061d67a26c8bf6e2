"""The two gates on a candidate's inputs: leakage (from its lineage) and data quality (coverage of its window).

Both return a :class:`Checklist` of :class:`~core.gates.model_gate.Criterion` rows, evaluated in full (every
criterion even after one fails), with the same Markdown and JSON shape as the model gate's report.

- **Leakage gate**: for every (asset, blocking check) of the features, labels and folds the candidate was trained
  on, the results in the runs its lineage names (not the latest runs of those assets): every run passed, and the
  check compared rows over them (a check that compared nothing vouches for nothing).
- **Data-quality gate**: the required data kinds (default perp bars and funding) cover at least ``threshold`` of
  the symbol's listed days in the training window; the other kinds report their coverage and lower the report's
  confidence but never fail it (real sets have text on a sixth of their days, and some have no spot market).
"""

from __future__ import annotations

from dataclasses import dataclass

from quantmm_assets.core.gates.model_gate import Criterion, _jsonable

DEFAULT_REQUIRED_KINDS = ("perp_bars_5m", "funding")
COVERAGE_THRESHOLD = 0.95


@dataclass(frozen=True)
class Checklist:
    """A gate made of criteria that must all pass; ``confidence`` lists what lowers trust without failing."""

    gate: str
    subject: str
    criteria: tuple[Criterion, ...]
    confidence: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        """Every decisive criterion (``passed`` not None) passed, and there is at least one."""
        decisive = [c for c in self.criteria if c.passed is not None]
        return bool(decisive) and all(c.passed for c in decisive)

    @property
    def deciding(self) -> str:
        failed = [c.name for c in self.criteria if c.passed is False]
        if failed:
            return failed[0]
        return "all criteria" if self.passed else "nothing to check"

    def to_dict(self) -> dict:
        rows = [{k: getattr(c, k) for k in ("name", "value", "threshold", "passed", "why")} for c in self.criteria]
        verdict = "pass" if self.passed else "fail"
        doc = {"gate": self.gate, "subject": self.subject, "verdict": verdict, "deciding": self.deciding}
        return _jsonable({**doc, "criteria": rows, "confidence": list(self.confidence)})

    def to_markdown(self) -> str:
        lines = [
            f"{self.gate} for {self.subject}",
            "",
            "| criterion | value | threshold | pass/fail | why |",
            "|---|---|---|---|---|",
        ]
        for c in self.criteria:
            mark = "n/a" if c.passed is None else ("pass" if c.passed else "fail")
            cells = [c.name, "" if c.value is None else str(c.value), c.threshold, mark, c.why]
            lines.append("| " + " | ".join(s.replace("|", "\\|") for s in cells) + " |")
        if not self.criteria:
            lines.append("| (none) | | | fail | nothing was there to check, which is not a pass |")
        lines += ["", f"**Verdict: {'pass' if self.passed else 'fail'}** (deciding: {self.deciding})"]
        if self.confidence:
            lines += ["", "Lower confidence (reported, not failed): " + "; ".join(self.confidence)]
        return "\n".join(lines)


@dataclass(frozen=True)
class CheckRun:
    """One blocking check's result in one run named by the lineage."""

    asset: str
    check: str
    run_id: str
    status: str  # passed | failed | not run
    compared: int


def leakage_gate(subject: str, results: list[CheckRun], expected: dict[str, list[str]]) -> Checklist:
    """``expected``: asset -> its blocking checks; ``results``: their outcome in each run of the lineage."""
    criteria = []
    for asset, checks in sorted(expected.items()):
        for check in checks:
            mine = [r for r in results if r.asset == asset and r.check == check]
            bad = [r for r in mine if r.status != "passed"]
            compared = sum(r.compared for r in mine)
            name = f"{asset}.{check}"
            if not mine:
                why = "the lineage names no run of this asset: nothing vouches for it"
                criteria.append(Criterion(name, 0, "every run passed, rows compared > 0", False, why))
                continue
            if bad:
                runs = ", ".join(f"{r.run_id[:8] or 'runless'} {r.status}" for r in bad[:5])
                why = f"{len(bad)} of the {len(mine)} run(s) behind the training data did not pass it ({runs})"
            elif compared == 0:
                why = f"it passed in {len(mine)} run(s) but compared nothing there, so it vouches for nothing"
            else:
                why = f"it passed in all {len(mine)} run(s) behind the training data, comparing {compared} rows"
            ok = not bad and compared > 0
            criteria.append(Criterion(name, compared, "every run passed, rows compared > 0", ok, why))
    return Checklist("Leakage gate", subject, tuple(criteria))


def data_quality_gate(
    subject: str,
    coverage: dict[str, float | None],
    required: tuple[str, ...] | list[str] = DEFAULT_REQUIRED_KINDS,
    threshold: float = COVERAGE_THRESHOLD,
) -> Checklist:
    """``coverage``: data kind -> the share of the symbol's listed days covered in the training window (None: no
    listed day in the window, i.e. nothing to compare)."""
    criteria, confidence = [], []
    unknown = [k for k in required if k not in coverage]
    if unknown:
        raise ValueError(f"data_quality_gate: unknown required data kinds {unknown}; known: {sorted(coverage)}")
    for kind in required:
        value = coverage[kind]
        if value is None:
            why = "the symbol has no listed day in the training window: nothing to compare, which is not a pass"
            criteria.append(Criterion(f"coverage.{kind}", None, f">= {threshold:.0%}", False, why))
            continue
        ok = value >= threshold
        why = f"{value:.1%} of the listed days in the training window have {kind}" + ("" if ok else ", too few")
        criteria.append(Criterion(f"coverage.{kind}", round(value, 4), f">= {threshold:.0%}", ok, why))
    for kind, value in sorted(coverage.items()):
        if kind in required:
            continue
        shown = "no listed day" if value is None else f"{value:.1%}"
        criteria.append(Criterion(f"coverage.{kind}", value, "reported", None, f"optional kind: {shown} covered"))
        if value is None or value < threshold:
            confidence.append(f"{kind} covers {shown} of the window")
    return Checklist("Data-quality gate", subject, tuple(criteria), tuple(confidence))
