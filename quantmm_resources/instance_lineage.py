"""Partition lineage: which run vouches for each partition a training run reads, and whether it passed.

Dagster's blocking checks stop the downstream steps of the *same* run only; a later training run reads every
Parquet file in the lake whatever its checks said. So before it trains, the model stage asks the instance, for
every partition it reads (``feature_matrix_main`` and ``labels_multi_horizon`` per date x symbol, the unpartitioned
``walk_forward_folds``): the run that last materialized it (its storage id, run id, data version) and that run's
results of the asset's blocking checks. The checks are not partitioned: they sample rows of the whole run (40 rows
and 50 cuts for the matrix), so a run's result vouches for every partition the run materialized, and the lineage
records how many rows it compared.

A partition is *vouched* when its latest materialization's run has a result for every blocking check of the asset
and none failed. A check that compared nothing (the run had no rows to compare, e.g. days before a listing) is not
a failure: it is recorded with ``compared = 0`` and the leakage gate later requires that something was compared.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import dagster as dg
from dagster._core.definitions.data_version import DATA_VERSION_TAG

STORAGE_ID_CHUNK = 500
CHECK_HISTORY_PAGE = 1000
PASSED, FAILED, NOT_RUN = "passed", "failed", "not run"


@dataclass(frozen=True)
class CheckVerdict:
    """One blocking check's result in the run that vouches for a partition."""

    status: str  # passed | failed | not run
    compared: int  # rows (or cuts) the check compared in that run; 0 when it compared nothing
    description: str = ""
    metadata: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)  # the result's metadata


@dataclass(frozen=True)
class PartitionVouch:
    """The run that last materialized one partition and its blocking checks."""

    asset: str
    partition: str | None
    run_id: str | None
    storage_id: int | None
    data_version: str | None
    materialized_at: str | None
    checks: dict[str, CheckVerdict] = field(default_factory=dict)

    @property
    def vouched(self) -> bool:
        return self.run_id is not None and bool(self.checks) and all(c.status == PASSED for c in self.checks.values())

    def why_not(self) -> str:
        """One line naming what keeps the partition from being vouched ('' when it is)."""
        if self.run_id is None:
            return "never materialized through Dagster (no run vouches for it)"
        bad = [f"{name} {c.status}" for name, c in sorted(self.checks.items()) if c.status != PASSED]
        return ", ".join(bad) if bad else ("" if self.checks else "the asset declares no blocking check")

    def record(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["vouched"] = self.vouched
        return doc


def blocking_checks(asset: dg.AssetsDefinition) -> list[str]:
    """The names of the blocking checks ``asset`` declares."""
    return sorted(spec.name for spec in asset.check_specs if spec.blocking)


def _latest_materializations(
    instance: dg.DagsterInstance, key: dg.AssetKey, partitions: list[str] | None
) -> dict[str | None, tuple[int, str, float]]:
    """``{partition: (storage_id, run_id, timestamp)}`` of the latest materialization of each partition."""
    if partitions is None:
        records = instance.fetch_materializations(key, limit=1).records
        if not records:
            return {}
        return {None: (int(records[0].storage_id), records[0].run_id, float(records[0].timestamp))}
    ids = instance.get_latest_storage_id_by_partition(key, dg.DagsterEventType.ASSET_MATERIALIZATION)
    wanted = [ids[p] for p in partitions if p in ids]
    out: dict[str | None, tuple[int, str, float]] = {}
    for i in range(0, len(wanted), STORAGE_ID_CHUNK):
        records = instance.get_asset_event_summary_records(
            dg.DagsterEventType.ASSET_MATERIALIZATION, asset_key=key, storage_ids=wanted[i : i + STORAGE_ID_CHUNK]
        )
        for rec in records:
            out[rec.partition] = (int(rec.storage_id), rec.run_id, float(rec.timestamp))
    return out


def _data_versions(instance: dg.DagsterInstance, key: dg.AssetKey, partitioned: bool) -> dict[str | None, str]:
    if not partitioned:
        event = instance.get_latest_materialization_event(key)
        mat = event.asset_materialization if event else None
        tags = (mat.tags or {}) if mat else {}
        return {None: tags[DATA_VERSION_TAG]} if DATA_VERSION_TAG in tags else {}
    tags = instance.event_log_storage.get_latest_tags_by_partition(
        key, dg.DagsterEventType.ASSET_MATERIALIZATION, [DATA_VERSION_TAG]
    )
    return {p: t[DATA_VERSION_TAG] for p, t in tags.items() if DATA_VERSION_TAG in t}


def check_results(
    instance: dg.DagsterInstance, key: dg.AssetKey, check: str, run_ids: set[str]
) -> dict[str, CheckVerdict]:
    """The newest evaluation of ``check`` in each of ``run_ids`` (newest first, paged until all are found)."""
    found: dict[str, CheckVerdict] = {}
    cursor = None
    while run_ids - set(found):
        page = instance.event_log_storage.get_asset_check_execution_history(
            dg.AssetCheckKey(key, check), limit=CHECK_HISTORY_PAGE, cursor=cursor
        )
        for rec in page:
            if rec.run_id not in run_ids or rec.run_id in found or rec.evaluation is None:
                continue  # newest first: the first evaluation seen of a run is its last
            ev = rec.evaluation
            meta = {k: getattr(v, "value", v) for k, v in (ev.metadata or {}).items()}
            compared = int(meta.get("compared", 0) or 0)
            nothing = bool(meta.get("nothing_compared", False))
            status = PASSED if ev.passed or nothing else FAILED
            found[rec.run_id] = CheckVerdict(status, 0 if nothing else compared, ev.description or "", meta)
        if len(page) < CHECK_HISTORY_PAGE:
            break
        cursor = page[-1].id
    return found


def partition_lineage(
    instance: dg.DagsterInstance, asset: dg.AssetsDefinition, partitions: Iterable[str] | None = None
) -> list[PartitionVouch]:
    """Return the vouch of each of ``partitions`` of ``asset`` (``None``: the asset is unpartitioned)."""
    key = asset.key
    parts = None if partitions is None else sorted(set(partitions))
    latest = _latest_materializations(instance, key, parts)
    versions = _data_versions(instance, key, parts is not None)
    run_ids = {run for _, run, _ in latest.values()}
    results = {check: check_results(instance, key, check, run_ids) for check in blocking_checks(asset)}
    out = []
    for p in [None] if parts is None else parts:
        if p not in latest:
            out.append(PartitionVouch(key.to_user_string(), p, None, None, None, None))
            continue
        storage_id, run_id, ts = latest[p]
        checks = {c: r.get(run_id, CheckVerdict(NOT_RUN, 0)) for c, r in results.items()}
        at = datetime.fromtimestamp(ts, UTC).isoformat()
        out.append(PartitionVouch(key.to_user_string(), p, run_id, storage_id, versions.get(p), at, checks))
    return out


def unvouched_message(vouches: list[PartitionVouch], limit: int = 12) -> str:
    """A message naming the partitions no passing run vouches for and why (the first ``limit``)."""
    bad = [v for v in vouches if not v.vouched]
    lines = [f"  {v.asset} {v.partition or '(unpartitioned)'}: {v.why_not()}" for v in bad[:limit]]
    more = f"\n  ... and {len(bad) - limit} more" if len(bad) > limit else ""
    return "\n".join(lines) + more
