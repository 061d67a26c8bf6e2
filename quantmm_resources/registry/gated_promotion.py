"""The one gated promotion function, and rollback: nothing moves ``active`` around them.

:func:`promote_candidate` reads, from the Dagster instance, the latest materialization of the ``candidate_models``
partition of (symbol, horizon) and the results of its blocking checks in that run, and refuses unless every one
passed *for the version being promoted* (the run's ``model_version``); then the ledger records the move in one
compare-and-swap transaction and the MLflow aliases follow (``quantmm_resources.registry.promotion``). Callers: the
``promote_job`` (UI), ``active_models`` (the optional automation), the CLI (``quantmm registry promote``) and the
serving API; it lives beside the registry, not in the Dagster layer, so that all of them can reach it.
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from typing import Any

import dagster as dg

from quantmm_resources.instance_lineage import PASSED, check_results
from quantmm_resources.registry.model_registry import ModelRegistry
from quantmm_resources.registry.promotion import current_active, promote, rollback

CANDIDATE_ASSET = dg.AssetKey("candidate_models")
GATES = ("leakage_gate", "data_quality_gate", "model_gate")  # the blocking checks of candidate_models


class PromotionRefused(ValueError):
    """The gates do not allow this promotion (the message says which and why)."""


@dataclass(frozen=True)
class GateStatus:
    """The gate results of the latest candidate run of one (symbol, horizon)."""

    model_name: str
    version: str | None  # the version the latest candidate run registered and gated
    run_id: str | None
    checks: dict[str, str]  # gate -> passed | failed | not run
    reports: dict[str, Any]  # gate -> its JSON report
    deciding: dict[str, str]  # gate -> the criterion that decided

    @property
    def passed(self) -> bool:
        return self.version is not None and all(self.checks.get(g) == PASSED for g in GATES)

    def refusal(self) -> str:
        """One line saying why the gates refuse ('' when they pass)."""
        if self.version is None:
            return f"{self.model_name}: no candidate_models run registered a version: run quantmm train"
        bad = [f"{g} {self.checks.get(g, 'not run')} ({self.deciding.get(g, '?')})" for g in GATES]
        bad = [b for b, g in zip(bad, GATES, strict=True) if self.checks.get(g) != PASSED]
        return f"{self.model_name} v{self.version}: " + "; ".join(bad) if bad else ""


def operator_name(given: str | None) -> str:
    """The operator named on the command line, else the OS user."""
    return given or getpass.getuser()


def partition_key(symbol: str, horizon: str) -> str:
    """The ``candidate_models`` partition key of (symbol, horizon) (dimensions in name order: horizon, symbol)."""
    return dg.MultiPartitionKey({"horizon": horizon, "symbol": symbol})


def gate_status(instance: dg.DagsterInstance, symbol: str, horizon: str) -> GateStatus:
    """Read the latest candidate run of (symbol, horizon) and its gate results from ``instance``."""
    name = ModelRegistry.model_name(symbol, horizon)
    key = str(partition_key(symbol, horizon))
    result = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=CANDIDATE_ASSET, asset_partitions=[key]), limit=1
    )
    if not result.records:
        return GateStatus(name, None, None, {}, {}, {})
    record = result.records[0]
    metadata = record.asset_materialization.metadata if record.asset_materialization else {}
    version = str(metadata["model_version"].value) if "model_version" in metadata else None
    checks, reports, deciding = {}, {}, {}
    for gate in GATES:
        verdict = check_results(instance, CANDIDATE_ASSET, gate, {record.run_id}).get(record.run_id)
        checks[gate] = verdict.status if verdict else "not run"
        report = verdict.metadata.get("gate_report") if verdict else None
        if isinstance(report, dict):
            reports[gate] = report
            deciding[gate] = str(report.get("deciding", ""))
    return GateStatus(name, version, record.run_id, checks, reports, deciding)


def promote_candidate(
    instance: dg.DagsterInstance,
    registry: ModelRegistry,
    ops_url: str,
    symbol: str,
    horizon: str,
    operator: str,
    reason: str,
    version: str | None = None,
) -> dict[str, Any]:
    """Promote the gated candidate of (symbol, horizon) to ``active``; refuse unless its gates all passed.

    ``version``: the version the operator means to promote (default: the one the latest candidate run gated); a
    version other than that one is refused (only a gated version moves). Returns the ledger row's summary.
    """
    status = gate_status(instance, symbol, horizon)
    if status.version is None:
        raise PromotionRefused(status.refusal())
    if version is not None and str(version) != status.version:
        raise PromotionRefused(
            f"{status.model_name}: version {version} was not gated by the latest candidate run (which gated "
            f"v{status.version}): only a gated version can be promoted"
        )
    if not status.passed:
        raise PromotionRefused("promotion refused: " + status.refusal())
    candidate = registry.aliases(status.model_name).get("candidate")
    if candidate != status.version:
        raise PromotionRefused(
            f"{status.model_name}: the candidate alias points at v{candidate}, the gates passed for v{status.version}: "
            "re-run candidate_models"
        )
    before = current_active(ops_url, status.model_name)
    report = {"run_id": status.run_id, "gates": status.reports}
    ledger_id = promote(registry, ops_url, status.model_name, status.version, operator, reason, report, before)
    return {"model": status.model_name, "from": before, "to": status.version, "ledger_id": ledger_id}


def rollback_active(registry: ModelRegistry, ops_url: str, symbol: str, horizon: str, operator: str, reason: str):
    """Restore the previously active version of (symbol, horizon) (a ledger row of its own)."""
    return rollback(registry, ops_url, ModelRegistry.model_name(symbol, horizon), operator, reason)
