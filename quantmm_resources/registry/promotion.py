"""The promotion ledger (DESIGN section 4): who moved ``active`` of a registered model, from which version to which.

The ledger (``promotion_ledger`` and ``promotion_heads`` of :mod:`quantmm_resources.opstore`) is authoritative;
the MLflow aliases ``active`` / ``previous`` follow it. A promotion or a rollback is one transaction that inserts the
ledger row and compares-and-swaps the model's head (``UPDATE ... WHERE active_version = :expected`` must hit one row;
the first promotion of a model inserts the head, and a primary-key conflict means another promotion came first), so
of two concurrent promotions from the same head one wins and the other raises :class:`PromotionConflict` having
written nothing. The aliases move after the commit (:func:`promote`, :func:`rollback`); when that fails twice,
:func:`reconcile` sets them from the ledger head.

The gate evaluation is not here: the promotion job / CLI runs the gates and passes their report.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import polars as pl
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from quantmm_resources.opstore import engine_for, promotion_heads, promotion_ledger
from quantmm_resources.registry.model_registry import ModelRegistry

ACTIONS = ("promote", "rollback")
HISTORY_SCHEMA = {
    "id": pl.Int64,
    "model_name": pl.Utf8,
    "action": pl.Utf8,
    "from_version": pl.Utf8,
    "to_version": pl.Utf8,
    "operator": pl.Utf8,
    "reason": pl.Utf8,
    "gate_report": pl.Utf8,  # JSON (null: none)
    "recorded_at": pl.Datetime("us", "UTC"),
}


class PromotionConflict(ValueError):
    """The head moved under a promotion (a lost race, or a stale ``expected_from``): nothing was written."""


class AliasMoveFailed(RuntimeError):
    """The ledger recorded a move but the MLflow aliases could not follow: run :func:`reconcile`."""


class _Lost(Exception):
    pass


def _utc(ts: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes (stored as UTC): make every instant aware."""
    return ts.replace(tzinfo=UTC) if ts is not None and ts.tzinfo is None else ts


def head(url: str, name: str) -> dict[str, Any] | None:
    """Return the head of ``name`` with its ledger row (active_version, ledger_id, from_version, action, ...), or
    None when nothing was ever promoted."""
    query = (
        select(
            promotion_heads.c.active_version,
            promotion_heads.c.ledger_id,
            promotion_heads.c.updated_at,
            promotion_ledger.c.action,
            promotion_ledger.c.from_version,
            promotion_ledger.c.operator,
        )
        .join(promotion_ledger, promotion_ledger.c.id == promotion_heads.c.ledger_id)
        .where(promotion_heads.c.model_name == name)
    )
    with engine_for(url).connect() as conn:
        row = conn.execute(query).first()
    return None if row is None else dict(row._mapping) | {"updated_at": _utc(row.updated_at)}


def current_active(url: str, name: str) -> str | None:
    """Return the ledger's active version of ``name`` (None: never promoted)."""
    query = select(promotion_heads.c.active_version).where(promotion_heads.c.model_name == name)
    with engine_for(url).connect() as conn:
        return conn.execute(query).scalar_one_or_none()


def history(url: str, name: str | None = None) -> pl.DataFrame:
    """Return every ledger row (of ``name``, or of all models), newest first."""
    query = select(promotion_ledger).order_by(promotion_ledger.c.id.desc())
    if name is not None:
        query = query.where(promotion_ledger.c.model_name == name)
    with engine_for(url).connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(query)]
    for r in rows:
        r["recorded_at"] = _utc(r["recorded_at"])
    return pl.DataFrame(rows, schema=HISTORY_SCHEMA) if rows else pl.DataFrame(schema=HISTORY_SCHEMA)


def record_promotion(
    url: str,
    name: str,
    to_version: str,
    operator: str,
    reason: str,
    gate_report: dict[str, Any] | None = None,
    expected_from: str | None = None,
    action: str = "promote",
) -> int:
    """Insert the ledger row and compare-and-swap the head of ``name`` from ``expected_from`` to ``to_version`` in one
    transaction; return the ledger id.

    Raise :class:`PromotionConflict` (nothing written) when the head is not ``expected_from`` (None: no head yet),
    whether the expectation was stale or another promotion won the race; ValueError when ``to_version`` is already
    active, or the operator or the reason is empty.
    """
    to_version, expected_from = str(to_version), None if expected_from is None else str(expected_from)
    if action not in ACTIONS:
        raise ValueError(f"record_promotion: action must be one of {ACTIONS}, got {action!r}")
    if not str(operator).strip() or not str(reason).strip():
        raise ValueError(f"{name}: a {action} needs an operator and a reason (got {operator!r}, {reason!r})")
    actual = current_active(url, name)
    if to_version == actual:
        raise ValueError(f"{name}: version {to_version} is already active; nothing to {action}")
    if actual != expected_from:
        raise PromotionConflict(_conflict(name, to_version, expected_from, actual, "is stale"))
    now = datetime.now(UTC)
    row = {
        "model_name": name,
        "action": action,
        "from_version": expected_from,
        "to_version": to_version,
        "operator": str(operator),
        "reason": str(reason),
        "gate_report": None if gate_report is None else json.dumps(gate_report, sort_keys=True, default=str),
        "recorded_at": now,
    }
    try:
        with engine_for(url).begin() as conn:  # the first statement writes: SQLite takes its write lock here
            ledger_id = int(conn.execute(insert(promotion_ledger).values(**row)).inserted_primary_key[0])
            moved = {"active_version": to_version, "ledger_id": ledger_id, "updated_at": now}
            if expected_from is None:
                conn.execute(insert(promotion_heads).values(model_name=name, **moved))
            else:
                swap = update(promotion_heads).where(
                    promotion_heads.c.model_name == name, promotion_heads.c.active_version == expected_from
                )
                if conn.execute(swap.values(**moved)).rowcount != 1:
                    raise _Lost
    except (_Lost, IntegrityError):
        actual = current_active(url, name)
        raise PromotionConflict(_conflict(name, to_version, expected_from, actual, "lost a race")) from None
    return ledger_id


def _conflict(name: str, to: str, expected: str | None, actual: str | None, what: str) -> str:
    return (
        f"{name}: promotion to version {to} {what}: expected active version {expected or 'none'}, but the ledger's "
        f"active version is {actual or 'none'}; nothing was written (re-read the head and decide again)"
    )


def _move_aliases(registry: ModelRegistry, name: str, to_version: str, previous: str | None, ledger_id: int) -> None:
    """Move the aliases after the ledger commit: retry once, then raise naming :func:`reconcile`."""
    try:
        registry.move_active(name, to_version, previous)
        return
    except Exception:  # any failure of the registry gets one retry
        pass
    try:
        registry.move_active(name, to_version, previous)
    except Exception as exc:
        raise AliasMoveFailed(
            f"{name}: the ledger recorded version {to_version} as active (ledger row {ledger_id}) but moving the "
            f"MLflow aliases failed twice ({type(exc).__name__}: {exc}); run "
            f"quantmm_resources.registry.promotion.reconcile(registry, url, {name!r}) to set them from the ledger"
        ) from exc


def promote(
    registry: ModelRegistry,
    url: str,
    name: str,
    to_version: str,
    operator: str,
    reason: str,
    gate_report: dict[str, Any] | None = None,
    expected_from: str | None = None,
) -> int:
    """Record the promotion of ``to_version`` (compare-and-swap from ``expected_from``), then move ``active`` to it and
    ``previous`` to ``expected_from``; return the ledger id. Gates are the caller's: this records their report."""
    to_version = str(to_version)
    if not registry.has_version(name, to_version):
        raise ValueError(f"{name}: no registered version {to_version} to promote")
    ledger_id = record_promotion(url, name, to_version, operator, reason, gate_report, expected_from)
    _move_aliases(registry, name, to_version, expected_from, ledger_id)
    return ledger_id


def rollback(registry: ModelRegistry, url: str, name: str, operator: str, reason: str) -> int:
    """Make the version active before the current head active again (a ledger row ``rollback``, through the same
    compare-and-swap), then move the aliases; return the ledger id.

    "Before" is the head row's ``from_version``: rolling back twice returns to where the first rollback started.
    """
    now = head(url, name)
    if now is None:
        raise ValueError(f"{name}: nothing to roll back: the ledger has no promotion of this model")
    if now["from_version"] is None:
        raise ValueError(
            f"{name}: cannot roll back: version {now['active_version']} was made active with no version active "
            f"before it (ledger row {now['ledger_id']})"
        )
    back, current = str(now["from_version"]), str(now["active_version"])
    ledger_id = record_promotion(url, name, back, operator, reason, None, expected_from=current, action="rollback")
    _move_aliases(registry, name, back, current, ledger_id)
    return ledger_id


def reconcile(registry: ModelRegistry, url: str, name: str) -> dict[str, str]:
    """Set ``active`` / ``previous`` of ``name`` from the ledger head (the ledger is authoritative); return the
    aliases after. No head: both aliases are removed."""
    now = head(url, name)
    if now is None:
        registry.clear_active(name)
    else:
        registry.move_active(name, str(now["active_version"]), now["from_version"])
    return registry.aliases(name)
