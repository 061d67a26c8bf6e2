"""Walk-forward folds with purging and embargo, and a purged k-fold inside each train window (DESIGN section 3).

One :class:`FoldSpec` serves every backbone. Folds are intervals ``[start, end)`` over *sample times* ``t``
(the feature / label row time); a sample at ``t`` has label windows ending at most ``t + purge`` (purge =
the longest label horizon). The walk-forward test windows sit on a fixed grid anchored at the start of the
data and the fold number is the grid index, so extending the data never moves (or renumbers) an earlier fold:
its train, test and inner intervals, and hence its out-of-sample predictions, stay the same. Hygiene is
checked by :func:`fold_violations` from the intervals alone.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl

from quantmm_assets.core.schemas import UTC_TS

WALK_FORWARD, INNER = "walk_forward", "inner"
TRAIN, TEST, VALIDATION = "train", "test", "validation"
EVAL_ROLE = {WALK_FORWARD: TEST, INNER: VALIDATION}
FOLD_SCHEMA: dict[str, pl.DataType] = {
    "fold": pl.Int32,
    "kind": pl.Utf8,
    "inner": pl.Int32,
    "role": pl.Utf8,
    "start": UTC_TS,
    "end": UTC_TS,
}
DAY = timedelta(days=1)
REFIT_FOLD = -1  # the fold number of the final refit's intervals


@dataclass(frozen=True)
class FoldSpec:
    """The fold specification shared by every model (expanding train windows unless ``expanding=False``)."""

    n_folds: int = 3
    test_days: int = 30
    min_train_days: int = 90
    embargo: timedelta = field(default=timedelta(days=1))
    purge: timedelta = field(default=timedelta(days=7))  # = the longest label horizon
    inner_k: int = 3
    expanding: bool = True
    train_days: int = 365  # rolling train length, used only when expanding is False

    def __post_init__(self) -> None:
        if self.n_folds < 1 or self.test_days < 1 or self.min_train_days < 1:
            raise ValueError(f"n_folds, test_days and min_train_days must be >= 1: {self}")
        if self.inner_k < 2:
            raise ValueError(f"inner_k must be >= 2, got {self.inner_k}")
        if self.embargo < timedelta(0) or self.purge < timedelta(0):
            raise ValueError(f"purge and embargo must be >= 0: {self}")
        if not self.expanding and self.train_days < self.min_train_days:
            raise ValueError(f"train_days ({self.train_days}) < min_train_days ({self.min_train_days})")

    def to_params(self, prefix: str = "folds.") -> dict[str, Any]:
        """Return the spec and its hash as a flat dict (durations in days)."""
        params = {f"{prefix}{k}": v for k, v in self.plain().items()}
        params[f"{prefix}hash"] = self.spec_hash()
        return params

    def spec_hash(self) -> str:
        """Return the first 12 hex digits of the sha256 of the spec as sorted JSON."""
        return hashlib.sha256(json.dumps(self.plain(), sort_keys=True).encode()).hexdigest()[:12]

    @classmethod
    def from_plain(cls, plain: dict[str, Any]) -> FoldSpec:
        """Return the spec of a :meth:`plain` dict (durations in float days)."""
        rest = {k: v for k, v in plain.items() if k not in ("embargo_days", "purge_days")}
        return cls(**rest, embargo=timedelta(days=plain["embargo_days"]), purge=timedelta(days=plain["purge_days"]))

    def plain(self) -> dict[str, Any]:
        """Return the fields with the durations as float days (``embargo_days``, ``purge_days``)."""
        d = {k: v for k, v in asdict(self).items() if k not in ("embargo", "purge")}
        return d | {"embargo_days": self.embargo / DAY, "purge_days": self.purge / DAY}


def _utc(ts: datetime) -> datetime:
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def _row(fold: int, kind: str, inner: int | None, role: str, start: datetime, end: datetime) -> dict[str, Any]:
    return {"fold": fold, "kind": kind, "inner": inner, "role": role, "start": start, "end": end}


def _split(start: datetime, end: datetime, k: int) -> list[tuple[datetime, datetime]]:
    """Split ``[start, end)`` into ``k`` contiguous blocks of (to the microsecond) equal length."""
    span = (end - start) // timedelta(microseconds=1)
    edges = [start + timedelta(microseconds=span * i // k) for i in range(k)] + [end]
    return list(zip(edges[:-1], edges[1:], strict=True))


def walk_forward_folds(
    first_t: datetime, last_t: datetime, spec: FoldSpec, anchor: datetime | None = None
) -> pl.DataFrame:
    """Return the fold intervals (``FOLD_SCHEMA``) for samples with times in ``[first_t, last_t]``.

    The test windows lie on a grid anchored at ``anchor`` (the partitions' start; ``first_t`` when None):
    candidate ``k = 0, 1, 2, ...`` is ``[a + k * test_days, a + (k + 1) * test_days)`` with ``a = anchor +
    min_train_days + purge + embargo``. A candidate is a fold only when its train window holds ``min_train_days``
    from the day of ``first_t`` (so the first label of a day, at 00:05, costs no window): with data starting after
    the anchor the first candidates are skipped, never shifted, so two runs
    whose data starts on different days (a partition materialized later, a retrain) share their windows and fold
    numbers; data before the anchor trains but opens no earlier window.

    ``last_t`` is the last instant the data covers; a test sample at ``s`` needs its labels, i.e. data until ``s +
    purge``, so a candidate is usable when it ends at or before ``E = last_t - purge``. The folds are the newest
    ``n_folds`` usable candidates, and the fold number is the grid index ``k`` (ascending = older to newer; not
    necessarily starting at 0). Fold ``k`` trains on ``[train_start, test_start_k - purge - embargo)``, with
    ``train_start = first_t`` (expanding) or ``max(first_t, train_end - train_days)`` (rolling): every train label
    window ends before ``test_start_k - embargo``. Inside each train window, ``inner_k`` contiguous validation
    blocks ``[vs, ve)``; their train parts are ``[train_start, vs - purge)`` and ``[ve + purge + embargo,
    train_end)``, empty parts omitted.

    Fold ``k``'s intervals depend only on the anchor, ``first_t``, ``k`` and the spec, never on ``last_t``:
    extending the data (same ``first_t``) adds newer folds and drops the oldest ones past ``n_folds``, but every
    fold present before and after keeps its number and identical intervals (walk-forward and inner). Data after the
    newest usable window's end (less than one test window, plus the purge) is in no test window until the next grid
    window completes. Raises ValueError when fewer than ``n_folds`` candidates are usable (the data span is shorter
    than ``min_train_days + purge + embargo + n_folds * test_days + purge``), or an inner split has no train
    interval.
    """
    first_t, last_t = _utc(first_t), _utc(last_t)
    anchor = first_t if anchor is None else _utc(anchor)
    test_len = timedelta(days=spec.test_days)
    gap = spec.purge + spec.embargo
    origin = anchor + timedelta(days=spec.min_train_days) + gap  # start of grid window 0
    test_end = last_t - spec.purge  # a usable test window ends at or before this
    n_end = max(0, (test_end - origin) // test_len)  # candidates 0 .. n_end - 1 end in time
    # the first candidate whose train window holds min_train_days counted from the day of the first sample (a
    # partition day's first label is at 00:05): k * test_len >= that day - anchor, and never below 0
    first_day = datetime.combine(first_t.date(), datetime.min.time(), UTC)
    k_first = max(0, -((anchor - first_day) // test_len))
    n_usable = max(0, n_end - k_first)
    if n_usable < spec.n_folds:
        needed = timedelta(days=spec.min_train_days) + gap + spec.n_folds * test_len + spec.purge
        raise ValueError(
            f"data span {first_t:%Y-%m-%d %H:%M} .. {last_t:%Y-%m-%d %H:%M} ({(last_t - first_t) / DAY:.2f} days) "
            f"is too short for the fold spec: it needs at least {needed / DAY:.2f} days = min_train_days "
            f"{spec.min_train_days} + purge + embargo + {spec.n_folds} x {spec.test_days} test days + purge "
            f"({n_usable} complete test window(s) fit"
            + (
                f"; the data starts after the grid's anchor {anchor:%Y-%m-%d}: its first {k_first} window(s) lack "
                "train data)"
                if k_first
                else ")"
            )
        )
    rows: list[dict[str, Any]] = []
    for k in range(n_end - spec.n_folds, n_end):
        test_start = origin + k * test_len
        train_end = test_start - gap
        train_start = first_t if spec.expanding else max(first_t, train_end - timedelta(days=spec.train_days))
        rows += [
            _row(k, WALK_FORWARD, None, TRAIN, train_start, train_end),
            _row(k, WALK_FORWARD, None, TEST, test_start, test_start + test_len),
        ]
        rows += _inner_rows(k, train_start, train_end, spec)
    return pl.DataFrame(rows, schema=FOLD_SCHEMA, orient="row")


def _inner_rows(fold: int, train_start: datetime, train_end: datetime, spec: FoldSpec) -> list[dict[str, Any]]:
    """The purged k-fold inside the train window ``[train_start, train_end)`` of ``fold``."""
    rows: list[dict[str, Any]] = []
    for i, (vs, ve) in enumerate(_split(train_start, train_end, spec.inner_k)):
        parts = [(train_start, vs - spec.purge), (ve + spec.purge + spec.embargo, train_end)]
        trains = [(a, b) for a, b in parts if a < b]
        if not trains:
            raise ValueError(f"fold {fold} inner split {i}: no train data left after purge and embargo")
        rows += [_row(fold, INNER, i, TRAIN, a, b) for a, b in trains if b <= vs]
        rows.append(_row(fold, INNER, i, VALIDATION, vs, ve))
        rows += [_row(fold, INNER, i, TRAIN, a, b) for a, b in trains if a >= ve]
    return rows


def refit_intervals(first_t: datetime, last_t: datetime, spec: FoldSpec) -> pl.DataFrame:
    """Return the intervals of the final refit (``FOLD_SCHEMA``, fold ``REFIT_FOLD``, no test window).

    The refit trains on every sample whose labels are complete, minus the embargo: ``[first_t, last_t - purge -
    embargo)`` (rolling specs keep the last ``train_days``), with the same purged k-fold inside it.
    """
    first_t, last_t = _utc(first_t), _utc(last_t)
    train_end = last_t - spec.purge - spec.embargo
    train_start = first_t if spec.expanding else max(first_t, train_end - timedelta(days=spec.train_days))
    if train_end - train_start < timedelta(days=spec.min_train_days):
        raise ValueError(
            f"refit window {train_start:%Y-%m-%d} .. {train_end:%Y-%m-%d} is shorter than min_train_days "
            f"{spec.min_train_days}"
        )
    rows = [_row(REFIT_FOLD, WALK_FORWARD, None, TRAIN, train_start, train_end)]
    return pl.DataFrame(rows + _inner_rows(REFIT_FOLD, train_start, train_end, spec), schema=FOLD_SCHEMA, orient="row")


def _fmt(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%d %H:%M:%S")


def fold_violations(folds: pl.DataFrame, purge: timedelta, embargo: timedelta) -> list[str]:
    """Return the hygiene violations of ``folds`` (empty = clean), checked from the intervals alone.

    Per (fold, kind, inner) group, with evaluation intervals ``[a, b)`` (test / validation): a train
    interval before one must end at or before ``a - purge`` (``a - purge - embargo`` for walk-forward); one
    after must start at or after ``b + purge + embargo``; none may overlap. Also: walk-forward test windows
    of different folds must not overlap, inner intervals must lie inside their fold's walk-forward train
    window, intervals must be non-empty, and kinds / roles must be known.
    """
    out: list[str] = []
    rows = folds.select(list(FOLD_SCHEMA)).to_dicts()
    groups: dict[tuple[int, str, int | None], list[dict[str, Any]]] = {}
    for r in rows:
        if r["kind"] not in EVAL_ROLE or r["role"] not in (TRAIN, EVAL_ROLE[r["kind"]]):
            out.append(f"fold {r['fold']}: unknown kind/role {r['kind']!r}/{r['role']!r}")
            continue
        if r["kind"] == WALK_FORWARD and r["inner"] is not None:
            out.append(f"fold {r['fold']}: walk_forward row with inner={r['inner']}")
        if r["kind"] == INNER and r["inner"] is None:
            out.append(f"fold {r['fold']}: inner row without an inner index")
        if r["start"] is None or r["end"] is None or r["start"] >= r["end"]:
            out.append(f"fold {r['fold']} {r['kind']} inner={r['inner']} {r['role']}: empty interval")
            continue
        groups.setdefault((r["fold"], r["kind"], r["inner"]), []).append(r)
    for (fold, kind, inner), members in sorted(
        groups.items(), key=lambda kv: (kv[0][0], kv[0][1], -1 if kv[0][2] is None else kv[0][2])
    ):
        name = f"fold {fold} {kind}" if inner is None else f"fold {fold} {kind} {inner}"
        evals = [m for m in members if m["role"] != TRAIN]
        trains = [m for m in members if m["role"] == TRAIN]
        if not evals:
            out.append(f"{name}: no {EVAL_ROLE[kind]} interval")
        if not trains:
            out.append(f"{name}: no train interval")
        before_gap = purge + embargo if kind == WALK_FORWARD else purge
        for ev in evals:
            a, b = ev["start"], ev["end"]
            for tr in trains:
                s, e = tr["start"], tr["end"]
                span = f"train [{_fmt(s)}, {_fmt(e)}) vs {ev['role']} [{_fmt(a)}, {_fmt(b)})"
                if s < b and a < e:
                    out.append(f"{name}: {span} overlap")
                elif e <= a and e > a - before_gap:
                    need = "purge + embargo" if kind == WALK_FORWARD else "purge"
                    out.append(f"{name}: {span}: train ends {(a - e) / DAY:.3f} days before, {need} needs more")
                elif s >= b and s < b + purge + embargo:
                    out.append(
                        f"{name}: {span}: train starts {(s - b) / DAY:.3f} days after, purge + embargo needs more"
                    )
    tests = sorted(
        (r for r in rows if r["kind"] == WALK_FORWARD and r["role"] == TEST and r["start"] is not None),
        key=lambda r: r["start"],
    )
    for i, x in enumerate(tests):
        for y in tests[i + 1 :]:
            if x["fold"] != y["fold"] and y["start"] < x["end"] and x["start"] < y["end"]:
                out.append(f"walk_forward test windows of folds {x['fold']} and {y['fold']} overlap")
    wf_train: dict[int, list[tuple[datetime, datetime]]] = {}
    for r in rows:
        if r["kind"] == WALK_FORWARD and r["role"] == TRAIN and r["start"] is not None:
            wf_train.setdefault(r["fold"], []).append((r["start"], r["end"]))
    for r in rows:
        if r["kind"] != INNER or r["start"] is None or r["end"] is None:
            continue
        if not any(s <= r["start"] and r["end"] <= e for s, e in wf_train.get(r["fold"], [])):
            out.append(
                f"fold {r['fold']} inner {r['inner']} {r['role']} [{_fmt(r['start'])}, {_fmt(r['end'])}) "
                "is not inside the fold's walk_forward train window"
            )
    return out


def assign_samples(ts: pl.Series, folds: pl.DataFrame, fold: int, kind: str, inner: int | None, role: str) -> pl.Series:
    """Return the Boolean mask of the sample times ``ts`` inside the selected intervals ``[start, end)``.

    Raises ValueError when no interval matches the selection (a mistyped role or kind).
    """
    inner_sel = pl.col("inner").is_null() if inner is None else pl.col("inner") == inner
    sel = folds.filter((pl.col("fold") == fold) & (pl.col("kind") == kind) & (pl.col("role") == role) & inner_sel)
    if sel.is_empty():
        raise ValueError(f"no fold interval for fold={fold} kind={kind!r} inner={inner} role={role!r}")
    t = pl.col("t").cast(UTC_TS)
    cond = pl.any_horizontal([(t >= s) & (t < e) for s, e in sel.select("start", "end").iter_rows()])
    return ts.to_frame("t").select(cond.fill_null(False).alias("in_fold")).to_series()
