"""The paper-trading records of the operational store: steps, orders, fills, funding payments and the kill switch.

A step is written whole or not at all: its orders, fills and funding rows and the step row (with the book's state
after it) go in one transaction, and the step row's key (book, bar) is unique. A step run twice (a restart, or two
loops racing) therefore writes nothing the second time: the loser's transaction is rolled back, so no order is ever
placed twice.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import polars as pl
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from quantmm_resources.opstore import engine_for, paper_control, paper_fills, paper_funding, paper_orders, paper_steps

TABLES = {"steps": paper_steps, "orders": paper_orders, "fills": paper_fills, "funding": paper_funding}


@dataclass
class StepRecord:
    """Everything one step writes."""

    bar_ts: datetime
    mode: str
    status: str
    equity: float
    cash: float
    gross_exposure: float
    net_exposure: float
    state: dict[str, Any]
    orders: list[dict[str, Any]] = field(default_factory=list)
    fills: list[dict[str, Any]] = field(default_factory=list)
    funding: list[dict[str, Any]] = field(default_factory=list)


def record_step(url: str, book: str, step: StepRecord) -> bool:
    """Write the step and its rows in one transaction; return False (writing nothing) when the step is recorded."""
    row = {
        "book": book,
        "bar_ts": step.bar_ts,
        "mode": step.mode,
        "status": step.status,
        "equity": step.equity,
        "cash": step.cash,
        "gross_exposure": step.gross_exposure,
        "net_exposure": step.net_exposure,
        "state": json.dumps(step.state, sort_keys=True, default=str),
        "recorded_at": datetime.now(UTC),
    }
    try:
        with engine_for(url).begin() as conn:
            conn.execute(insert(paper_steps), [row])
            for table, rows in ((paper_orders, step.orders), (paper_fills, step.fills), (paper_funding, step.funding)):
                if rows:
                    conn.execute(insert(table), [{"book": book, **r} for r in rows])
    except IntegrityError:
        if step_recorded(url, book, step.bar_ts):
            return False
        raise
    return True


def step_recorded(url: str, book: str, bar_ts: datetime) -> bool:
    with engine_for(url).connect() as conn:
        found = conn.execute(
            select(paper_steps.c.id).where(paper_steps.c.book == book, paper_steps.c.bar_ts == bar_ts)
        ).first()
    return found is not None


def last_step(url: str, book: str) -> dict[str, Any] | None:
    """The newest step of ``book`` (its state parsed), or None before the first."""
    query = select(paper_steps).where(paper_steps.c.book == book).order_by(paper_steps.c.bar_ts.desc()).limit(1)
    with engine_for(url).connect() as conn:
        found = conn.execute(query).first()
    if found is None:
        return None
    out = dict(found._mapping)
    out["bar_ts"] = _utc(out["bar_ts"])
    out["state"] = json.loads(out["state"])
    return out


def read(url: str, what: str, book: str) -> pl.DataFrame:
    """The rows of one table (steps, orders, fills, funding) of ``book``, in insertion order; datetimes in UTC."""
    table = TABLES[what]
    with engine_for(url).connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(select(table).where(table.c.book == book).order_by(table.c.id))]
    schema = {c.name: _dtype(c) for c in table.columns}
    if not rows:
        return pl.DataFrame(schema=schema)
    for r in rows:
        for c, t in schema.items():
            if isinstance(t, pl.Datetime) and r[c] is not None:
                r[c] = _utc(r[c])
    return pl.DataFrame(rows, schema=schema)


def set_halt(url: str, book: str, halted: bool, reason: str, operator: str) -> None:
    """Engage (or release) the kill switch of ``book``."""
    if not reason.strip() or not operator.strip():
        raise ValueError("the kill switch needs a reason and an operator")
    row = {"book": book, "halted": halted, "reason": reason, "operator": operator, "updated_at": datetime.now(UTC)}
    with engine_for(url).begin() as conn:
        conn.execute(paper_control.delete().where(paper_control.c.book == book))
        conn.execute(insert(paper_control), [row])


def halt_state(url: str, book: str) -> dict[str, Any] | None:
    """The kill switch of ``book`` (None: never set)."""
    with engine_for(url).connect() as conn:
        found = conn.execute(select(paper_control).where(paper_control.c.book == book)).first()
    return dict(found._mapping) if found else None


def _utc(ts: datetime) -> datetime:
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def _dtype(column) -> pl.DataType:
    name = type(column.type).__name__
    return {
        "Integer": pl.Int64,
        "Float": pl.Float64,
        "Boolean": pl.Boolean,
        "DateTime": pl.Datetime("us", "UTC"),
    }.get(name, pl.Utf8)
