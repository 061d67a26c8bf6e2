"""Monitoring of the served predictions once their labels complete (the figures state the evidence behind them).

``/monitoring/performance`` (IC, hit rate, after-cost PnL per horizon and role), ``/calibration`` (reliability
table and ECE), ``/vol`` (coverage of the vol forecast), ``/multimodal`` (text coverage, gate openness, text
contribution), ``/shadow`` (the candidate in shadow against the active version on the same bars) and ``/drift``
(the PSI of each active version's live predictions against its reference, the drift sensor's decision).
"""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
from fastapi import APIRouter, HTTPException, Query

from quantmm_assets.core.monitoring.comparison import multimodal_health, shadow_vs_active, vol_coverage
from quantmm_assets.core.monitoring.drift import drift_decision
from quantmm_assets.core.monitoring.realized import calibration_report, join_realized, realized_performance
from quantmm_resources.lake import LakeLayout
from quantmm_resources.prediction_log import read_predictions
from quantmm_serving.deps import SettingsDep, StateDep
from quantmm_serving.records import clean, records

router = APIRouter(prefix="/monitoring", tags=["monitoring"])
LABELS = "labels_multi_horizon"
BY = {"horizon": ("horizon",), "symbol": ("symbol", "horizon"), "version": ("horizon", "model_version")}


def _labels(lake: LakeLayout, log: pl.DataFrame) -> pl.DataFrame:
    if log.is_empty():
        return pl.DataFrame()
    symbols = set(log["symbol"].unique().to_list())
    days = {d.isoformat() for d in log["bar_ts"].dt.date().unique().to_list()}
    keys = [k for k in lake.partition_keys(LABELS) if k[:10] in days and k.split("|")[-1] in symbols]
    return lake.read_partitions(LABELS, keys)


def joined(state, settings, now: datetime | None = None) -> pl.DataFrame:
    """The prediction log joined to the lake's labels as known ``now``."""
    log = read_predictions(settings.resolved_ops_url)
    labels = _labels(state.lake, log)
    if log.is_empty() or labels.is_empty():
        raise HTTPException(status_code=404, detail="nothing to monitor yet: no logged prediction has a label row")
    return join_realized(log, labels, now or datetime.now(UTC))


@router.get("/performance")
def performance(
    state: StateDep, settings: SettingsDep, by: str = Query("horizon", pattern="^(horizon|symbol|version)$")
) -> dict:
    """Realized IC, rank IC, hit rate and after-cost PnL of the logged positions per group and role."""
    frame = realized_performance(joined(state, settings), BY[by])
    return {"by": BY[by], "rows": records(frame)}


@router.get("/calibration")
def calibration(state: StateDep, settings: SettingsDep, buckets: int = Query(10, ge=2, le=50)) -> dict:
    """The confidence reliability table and ECE on realized non-overlapping steps."""
    table, summary = calibration_report(joined(state, settings), buckets)
    return {"summary": records(summary), "reliability": records(table)}


@router.get("/vol")
def vol(state: StateDep, settings: SettingsDep) -> dict:
    """How the realized volatility compares with the vol forecast, and the 90% band's coverage."""
    return {"rows": records(vol_coverage(joined(state, settings)))}


@router.get("/multimodal")
def multimodal(settings: SettingsDep) -> dict:
    """Text coverage, gate openness and text contribution of the logged predictions."""
    log = read_predictions(settings.resolved_ops_url)
    return {"rows": records(multimodal_health(log))}


@router.get("/shadow")
def shadow(state: StateDep, settings: SettingsDep) -> dict:
    """The shadow candidate against the active version on the bars both predicted and that have realized."""
    return {"rows": records(shadow_vs_active(joined(state, settings)))}


@router.get("/drift")
def drift(state: StateDep, settings: SettingsDep) -> dict:
    """Per active version: PSI of its live predictions against its reference, against the calibrated threshold."""
    out = []
    for (symbol, horizon), version in sorted(state.store.snapshot.active.items()):
        live = read_predictions(settings.resolved_ops_url, symbol, horizon, "active", version.version)
        row = {"model": version.name, "version": version.version, "n_logged": live.height}
        try:
            ref_ts, ref = state.reference(version)
            d = drift_decision(
                ref_ts, ref, live["bar_ts"].dt.epoch("us").to_numpy(), live["expected_return"].to_numpy(), horizon
            )
            row |= {
                "psi": d.psi,
                "threshold": d.threshold,
                "drifted": d.drifted,
                "n_live_thinned": d.n_live_thinned,
                "n_reference_thinned": d.n_reference_thinned,
                "reason": d.reason,
            }
        except Exception as exc:  # a version registered without a usable reference: say so
            row |= {"drifted": False, "reason": f"no drift decision: {type(exc).__name__}: {exc}"[:300]}
        out.append(row)
    return {"rows": [clean(r) for r in out]}
