"""``quantmm registry list | promote | rollback | history``: the registry from the command line.

Promotion and rollback go through the one gated promotion function (``quantmm_resources.registry.gated_promotion``);
the operator is ``--operator`` or the OS user, and every move is a row of the promotion ledger in the operational
store.
"""

from __future__ import annotations

import json

import polars as pl

from quantmm_jobs.cli.runs import instance_for
from quantmm_resources.environment import build_resources
from quantmm_resources.registry import history
from quantmm_resources.registry.gated_promotion import (
    GATES,
    gate_status,
    operator_name,
    promote_candidate,
    rollback_active,
)
from quantmm_resources.settings import QuantmmSettings


def _registry(settings: QuantmmSettings):
    return build_resources(settings)["registry"]


def _split(name: str) -> tuple[str, str]:
    _, symbol, horizon = name.split(".", 2)
    return symbol, horizon


def registry_rows(settings: QuantmmSettings) -> list[dict]:
    """Per registered (symbol, horizon): candidate / active / previous versions and the gate verdict with the
    criterion that decided it."""
    registry, instance = _registry(settings), instance_for(settings)
    rows = []
    for name in registry.registered_names():
        symbol, horizon = _split(name)
        aliases = registry.aliases(name)
        status = gate_status(instance, symbol, horizon)
        failed = [g for g in GATES if status.checks.get(g) != "passed"]
        verdict = "pass" if status.passed else ("not gated" if status.version is None else "refused")
        deciding = f"{failed[0]}: {status.deciding.get(failed[0], status.checks.get(failed[0]))}" if failed else ""
        rows.append(
            {
                "model": name,
                "candidate": aliases.get("candidate", "-"),
                "active": aliases.get("active", "-"),
                "previous": aliases.get("previous", "-"),
                "gated_version": status.version or "-",
                "gates": verdict,
                "decided_by": deciding or "all gates passed",
            }
        )
    return rows


def cmd_list(settings: QuantmmSettings, as_json: bool) -> int:
    rows = registry_rows(settings)
    if as_json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no registered model yet: quantmm train registers the candidates")
        return 0
    with pl.Config(tbl_rows=len(rows), tbl_cols=10, fmt_str_lengths=80, tbl_hide_dataframe_shape=True):
        print(pl.DataFrame(rows))
    return 0


def cmd_promote(
    settings: QuantmmSettings, symbol: str, horizon: str, operator: str | None, reason: str, version: str | None
) -> int:
    done = promote_candidate(
        instance_for(settings),
        _registry(settings),
        settings.resolved_ops_url,
        symbol,
        horizon,
        operator_name(operator),
        reason,
        version,
    )
    print(f"promoted {done['model']}: active v{done['from'] or '-'} -> v{done['to']} (ledger row {done['ledger_id']})")
    return 0


def cmd_rollback(settings: QuantmmSettings, symbol: str, horizon: str, operator: str | None, reason: str) -> int:
    done = rollback_active(
        _registry(settings), settings.resolved_ops_url, symbol, horizon, operator_name(operator), reason
    )
    print(f"rolled back {symbol} {horizon}: {done}")
    return 0


def cmd_history(settings: QuantmmSettings, symbol: str | None, horizon: str | None) -> int:
    name = f"quantmm.{symbol}.{horizon}" if symbol and horizon else None
    rows = history(settings.resolved_ops_url, name)
    if rows.is_empty():
        print("the promotion ledger is empty")
        return 0
    shown = rows.drop([c for c in ("gate_report",) if c in rows.columns])
    with pl.Config(tbl_rows=rows.height, tbl_cols=12, fmt_str_lengths=60, tbl_hide_dataframe_shape=True):
        print(shown)
    return 0
