"""``frozen_baseline`` and ``candidate_models`` (symbol x horizon) with the three promotion gates as blocking checks.

``candidate_models`` registers, per (symbol, horizon), the refit of the backbone ranked best as a new version of
``quantmm.{symbol}.{horizon}`` with alias ``candidate`` (``quantmm_resources.registry``) and evaluates the gates on
it; each check's metadata holds its report (Markdown for the UI, JSON for the ledger), and the reports go to the
version's MLflow run too. A gate that fails is a normal outcome, not a crash: the leakage gate fails with ERROR
severity (something is wrong with the data), the data-quality and model gates with WARN (the run succeeds, the
promotion function refuses). The promotion function (``quantmm_resources.registry.gated_promotion``) reads
these results.
"""

from dataclasses import replace
from datetime import date, datetime

import dagster as dg
import polars as pl

from quantmm_assets.core.evaluation.report import markdown_table
from quantmm_assets.core.gates.input_gates import COVERAGE_THRESHOLD, DEFAULT_REQUIRED_KINDS, Checklist
from quantmm_assets.core.gates.model_gate import Criterion, model_gate
from quantmm_assets.core.labels import HORIZONS
from quantmm_assets.defs.candidates import CandidateEvidence, active_rows, gather_evidence
from quantmm_assets.defs.gate_inputs import coverage_gate, leakage_from_lineage
from quantmm_assets.defs.model_assets import fold_spec
from quantmm_assets.defs.partitions import symbols
from quantmm_assets.defs.report_assets import backbone_report
from quantmm_assets.models.baselines import frozen_baseline_config, frozen_baseline_sha256
from quantmm_resources.alerts import send_alert
from quantmm_resources.lake import LakeResource
from quantmm_resources.mlflow_tracking import MlflowTracking
from quantmm_resources.registry import ModelRegistry
from quantmm_resources.registry.gated_promotion import GATES

candidate_partitions = dg.MultiPartitionsDefinition(
    {"horizon": dg.StaticPartitionsDefinition(list(HORIZONS)), "symbol": symbols}
)
GATE_DESCRIPTIONS = {
    "leakage_gate": "Blocking: the leakage checks of the features, labels and folds this candidate was trained on "
    "passed in the runs its lineage names (not the latest runs of those assets), and each compared rows",
    "data_quality_gate": "Blocking: the required data kinds cover the symbol's training window; the other kinds "
    "report their coverage and lower the confidence",
    "model_gate": "Blocking: the candidate beats the strongest comparator on its own windows (window wins, a "
    "selection-aware block bootstrap over every configuration tried, drawdown, turnover, calibration)",
}
assert tuple(GATE_DESCRIPTIONS) == GATES  # the promotion function reads these checks by name
SEVERITY = {"leakage_gate": dg.AssetCheckSeverity.ERROR}  # the others: WARN (see the module docstring)


class CandidateConfig(dg.Config):
    """The gates' configuration (the model gate's thresholds are :class:`GateLimits`, production defaults)."""

    required_kinds: list[str] = list(DEFAULT_REQUIRED_KINDS)
    coverage_threshold: float = COVERAGE_THRESHOLD


@dg.asset(
    group_name="registry",
    io_manager_key="lake_io_manager",
    kinds={"python"},
    description="The baseline configuration the model gate compares with (the zero and momentum rules, Ridge on "
    "price features), frozen with its sha256: candidate_models refuses to gate against a baseline that changed "
    "since, until this asset is re-materialized deliberately.",
)
def frozen_baseline(lake: LakeResource) -> dg.MaterializeResult:
    config = frozen_baseline_config()
    digest = frozen_baseline_sha256(config)
    lake.write_side_json("frozen_baseline", "config.json", {"sha256": digest, "config": config})
    return dg.MaterializeResult(metadata={"sha256": digest, "config": dg.MetadataValue.json(config)})


def _frozen_sha(lake: LakeResource) -> str:
    try:
        frozen = lake.read_side_json("frozen_baseline", "config.json")["sha256"]
    except (FileNotFoundError, KeyError) as exc:
        raise ValueError("candidate_models: materialize frozen_baseline first") from exc
    if frozen != frozen_baseline_sha256():
        raise ValueError(
            f"the baseline configuration changed since it was frozen (sha256 {frozen[:12]} frozen, "
            f"{frozen_baseline_sha256()[:12]} in the code): re-materialize frozen_baseline deliberately"
        )
    return frozen


@dg.asset(
    partitions_def=candidate_partitions,
    group_name="registry",
    deps=[dg.AssetDep(backbone_report), frozen_baseline],
    check_specs=[
        dg.AssetCheckSpec(n, asset="candidate_models", blocking=True, description=d)
        for n, d in GATE_DESCRIPTIONS.items()
    ],
    kinds={"mlflow"},
    pool="quantmm_models",
    description="Per symbol x horizon: the refit of the backbone ranked best, registered as a version of "
    "quantmm.{symbol}.{horizon} with alias candidate, its lineage as tags, and its three promotion gates.",
)
def candidate_models(
    context: dg.AssetExecutionContext,
    config: CandidateConfig,
    walk_forward_folds: pl.DataFrame,
    lake: LakeResource,
    mlflow: MlflowTracking,
    registry: ModelRegistry,
):
    keys = context.partition_key.keys_by_dimension
    symbol, horizon = keys["symbol"], keys["horizon"]
    subject = f"{symbol} {horizon}"
    baseline_sha = _frozen_sha(lake)
    evidence = gather_evidence(lake, symbol, horizon)
    name = registry.model_name(symbol, horizon)
    evidence, active_why = _with_active(evidence, lake, registry, name, walk_forward_folds)
    gate = _model_gate(evidence, subject)
    run_lineage = mlflow.load_lineage(evidence.run_id)
    model = mlflow.load_pickle(evidence.run_id)
    leakage = leakage_from_lineage(context.instance, run_lineage, subject)
    window = run_lineage["window"]
    first, last = (
        _day(window.get(f"refit_{e}") or window[f"{d}_date"]) for e, d in (("start", "first"), ("end", "last"))
    )
    quality = coverage_gate(lake, symbol, subject, first, last, config.required_kinds, config.coverage_threshold)
    contract = lake.feature_contract()
    lineage = run_lineage | {"symbol": symbol, "horizon": horizon, "frozen_baseline_sha256": baseline_sha}
    version = registry.register_candidate(
        model=model,
        symbol=symbol,
        horizon=horizon,
        signal=evidence.signal,
        contract_version=run_lineage["feature_contract_version"],
        feature_names=[n for n in contract["columns"] if n != "symbol_code"],  # as load_model_data reads them
        latent_dim=int(contract["latent_dim"]),
        lineage=lineage,
        reference=_reference(evidence),
        input_example=_example(lake, symbol),
    )
    reports = {"leakage_gate": leakage, "data_quality_gate": quality, "model_gate": gate}
    registry.log_gate_reports(name, version, {k: r.to_dict() for k, r in reports.items()})
    verdict = "pass" if _passed(gate) else "refused"
    context.log.info(f"{name} v{version}: candidate {evidence.candidate}; model gate {verdict} ({gate.deciding})")
    refused = {k: r.deciding for k, r in reports.items() if not _passed(r)}
    if refused:
        why = "; ".join(f"{k} ({v})" for k, v in refused.items())
        send_alert({"text": f"{name} v{version} refused by {why}", "model": name, "version": version, "gates": refused})
    yield dg.MaterializeResult(
        metadata={
            "model_name": name,
            "model_version": version,
            "backbone": evidence.candidate,
            "model_gate": getattr(gate, "verdict", verdict),
            "deciding": gate.deciding,
            "active_comparator": active_why,
            "ranking": dg.MetadataValue.md(_ranking_md(evidence.ranking)),
        }
    )
    for check, report in reports.items():
        passed = _passed(report)
        yield dg.AssetCheckResult(
            check_name=check,
            passed=passed,
            severity=SEVERITY.get(check, dg.AssetCheckSeverity.WARN),
            description=f"{name} v{version}: {'pass' if passed else 'refused'} ({report.deciding})",
            metadata={
                "model_version": version,
                "report": dg.MetadataValue.md(report.to_markdown()),
                "gate_report": dg.MetadataValue.json(report.to_dict()),
            },
        )


def _with_active(
    evidence: CandidateEvidence, lake: LakeResource, registry: ModelRegistry, name: str, folds: pl.DataFrame
) -> tuple[CandidateEvidence, str]:
    """The evidence with the active version's rows where it may compare (``candidates.active_rows``), and why."""
    active = registry.aliases(name).get("active") if name in registry.registered_names() else None
    if active is None:
        return evidence, "no active version"
    until = datetime.fromisoformat(registry.lineage(name, active)["window"]["refit_end"])
    backbone = registry.load(name, active).unwrap_python_model().backbone
    rows, why = active_rows(lake, evidence, folds, backbone, until, fold_spec(lake).embargo)
    if rows is None:
        return evidence, why
    joined = pl.concat([evidence.predictions, rows.select(evidence.predictions.columns)])
    return replace(evidence, predictions=joined), why


def _model_gate(evidence: CandidateEvidence, subject: str):
    """The model gate's report; a gate that cannot be evaluated (e.g. the candidate has no scored step) is a
    refusal that says why, not a crash."""
    try:
        return model_gate(
            evidence.steps(),
            evidence.symbol,
            evidence.horizon,
            evidence.candidate,
            evidence.comparators(),
            evidence.configurations,
        )
    except ValueError as exc:
        why = f"the model gate could not be evaluated: {exc}"
        return Checklist("Model gate", subject, (Criterion("evaluable", None, "evaluable", False, why),))


def _passed(report) -> bool:
    """A gate report's decision: the model gate's verdict, or a checklist's."""
    return report.verdict == "pass" if hasattr(report, "verdict") else report.passed


def _day(text: str) -> date:
    """The UTC day of an ISO date or datetime (the lineage's window)."""
    return datetime.fromisoformat(str(text)).date()


def _reference(evidence: CandidateEvidence) -> pl.DataFrame:
    """The candidate's out-of-sample predictions for (symbol, horizon): the reference drift is measured against."""
    mine = evidence.predictions.filter(pl.col("backbone") == evidence.candidate).sort("ts_event")
    return mine.select("ts_event", "expected_return")


def _example(lake: LakeResource, symbol: str, rows: int = 5) -> pl.DataFrame:
    """A few feature-matrix rows of ``symbol`` (the newest partition): the version's input example."""
    keys = [k for k in lake.partition_keys("feature_matrix_main") if k.endswith(f"|{symbol}")]
    if not keys:
        raise ValueError(f"candidate_models: no feature_matrix_main partition of {symbol}")
    columns = ["symbol", "ts_event", *lake.feature_contract()["columns"]]  # not ts_available: not a model input
    return lake.read_partitions("feature_matrix_main", [keys[-1]]).select(columns).head(rows)


def _ranking_md(ranking: pl.DataFrame) -> str:
    cols = ["backbone", "verdict", "rank", "evidence_sharpe", "n_counted", "n_held", "n_steps", "mean_rank_ic"]
    return markdown_table(ranking.select([c for c in cols if c in ranking.columns]))
