"""Run materializations in-process on the Dagster instance: one single-run backfill per partitions definition
(date x symbol, and date) over a range of partitions, or one run of unpartitioned / statically partitioned
assets. The operator commands, the demo and the benches go through here, so the UI shows every run."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from datetime import date, timedelta

import dagster as dg

from quantmm_assets.defs.partitions import first_partition_day, partition_symbols
from quantmm_assets.defs.raw_assets import RAW_DATE_ASSETS, RAW_MARKET_ASSETS
from quantmm_jobs.schedules import range_tags
from quantmm_resources.environment import ensure_dagster_home
from quantmm_resources.settings import QuantmmSettings


@dataclass
class RangeRun:
    """What one run did."""

    assets: list[str]
    partition_range: str
    partitions: int
    success: bool
    wall_seconds: float
    rows: dict[str, int]
    rejected: dict[str, int]
    checks: dict[str, str]  # "asset:check" -> "passed", "WARN: <description>" or "FAILED: <description>"
    run_id: str
    errors: dict[str, str] = field(default_factory=dict)  # failed step -> its error message
    findings: dict[str, list[str]] = field(default_factory=dict)  # failed "asset:check" -> its first findings

    @property
    def failed_checks(self) -> dict[str, str]:
        """Checks that failed at ERROR severity (a blocking one stops the run)."""
        return {k: v for k, v in self.checks.items() if v.startswith("FAILED")}

    @property
    def warned_checks(self) -> dict[str, str]:
        """Checks that did not pass at WARN severity, e.g. a leakage check that compared nothing: not a pass, and
        not a reason to stop the pipeline."""
        return {k: v for k, v in self.checks.items() if v.startswith("WARN")}


def _verdict(ev: dg.AssetCheckEvaluation) -> str:
    if ev.passed:
        return "passed"
    return f"{'WARN' if ev.severity == dg.AssetCheckSeverity.WARN else 'FAILED'}: {ev.description}"


def instance_for(settings: QuantmmSettings) -> dg.DagsterInstance:
    """The persistent instance under $QUANTMM_HOME/dagster (SQLite) or PostgreSQL (DAGSTER_PG_URL)."""
    return dg.DagsterInstance.from_config(str(ensure_dagster_home(settings)))


def graph_with(assets: list[dg.AssetsDefinition]) -> list[dg.AssetsDefinition]:
    """Every asset of the code location (so the selected ones find their upstream assets)."""
    from quantmm_jobs.definitions import ASSETS

    keys = {a.key for a in assets}
    return [*assets, *(a for a in ASSETS if a.key not in keys)]


def symbol_span(symbols: list[str]) -> tuple[str, str]:
    """First and last of ``symbols`` in universe order (a range covers everything between)."""
    ordered = sorted(symbols, key=partition_symbols().index)
    return ordered[0], ordered[-1]


def _materialize(
    assets: list[dg.AssetsDefinition],
    resources: dict,
    instance: dg.DagsterInstance,
    label: str,
    tags: dict[str, str] | None = None,
    partition_key: str | None = None,
    config: dict | None = None,
    log_level: str = "INFO",
) -> RangeRun:
    """Materialize ``assets`` in one run (op config for the first, when given) and collect what it did."""
    names = [a.key.to_user_string() for a in assets]
    print(f"materializing {', '.join(names)} [{label}] in one run", file=sys.stderr, flush=True)
    run_config: dict = {"loggers": {"console": {"config": {"log_level": log_level}}}}
    if config:
        run_config["ops"] = {assets[0].op.name: {"config": config}}
    t0 = time.perf_counter()
    result = dg.materialize(
        graph_with(assets),
        selection=assets,
        resources=resources,
        instance=instance,
        tags=tags,
        partition_key=partition_key,
        raise_on_error=False,
        run_config=run_config,
    )
    wall = time.perf_counter() - t0
    rows, rejected, partitions = {}, {}, 1
    for mat in result.get_asset_materialization_events():
        m = mat.step_materialization_data.materialization
        md = m.metadata
        if "run_rows" in md:
            rows[m.asset_key.to_user_string()] = md["run_rows"].value
            if "run_rejected_rows" in md:  # raw assets quarantine; derived ones have nothing to quarantine
                rejected[m.asset_key.to_user_string()] = md["run_rejected_rows"].value
            partitions = md["run_partitions"].value
    checks = {
        f"{ev.asset_key.to_user_string()}:{ev.check_name}": _verdict(ev) for ev in result.get_asset_check_evaluations()
    }
    findings = {
        f"{ev.asset_key.to_user_string()}:{ev.check_name}": [str(f) for f in ev.metadata["failures"].value[:5]]
        for ev in result.get_asset_check_evaluations()
        if not ev.passed and "failures" in ev.metadata
    }
    errors = {  # a blocking check's failure is named in ``checks`` already
        ev.step_key: _root_cause(ev.step_failure_data.error)
        for ev in result.get_step_failure_events()
        if ev.step_failure_data.error is None or ev.step_failure_data.error.cls_name != "DagsterAssetCheckFailedError"
    }
    return RangeRun(
        names, label, partitions, result.success, wall, rows, rejected, checks, result.run_id, errors, findings
    )


def _root_cause(error) -> str:
    """The innermost error message of a step failure (Dagster wraps the user's exception)."""
    if error is None:
        return "failed"
    while error.cause is not None:
        error = error.cause
    return error.message.strip()


def run_range(
    assets: list[dg.AssetsDefinition],
    start: date,
    end: date,
    symbols: list[str] | None,
    resources: dict,
    instance: dg.DagsterInstance,
    log_level: str = "INFO",
    config: dict | None = None,
) -> RangeRun:
    """Materialize ``assets`` over [start, end] (inclusive days; x symbols when given) in one run."""
    if symbols:
        first, last = symbol_span(symbols)
        start_key, end_key = f"{start}|{first}", f"{end}|{last}"
    else:
        start_key, end_key = str(start), str(end)
    tags = range_tags(start_key, end_key)
    return _materialize(assets, resources, instance, f"{start_key}...{end_key}", tags, None, config, log_level)


def run_selection(
    assets: list[dg.AssetsDefinition],
    resources: dict,
    instance: dg.DagsterInstance,
    config: dict | None = None,
    partition_key: str | None = None,
    log_level: str = "INFO",
) -> RangeRun:
    """Materialize ``assets`` in one run (op config for the first, when given), unpartitioned or one partition."""
    label = partition_key or "unpartitioned"
    return _materialize(assets, resources, instance, label, None, partition_key, config, log_level)


def run_raw(
    start: date,
    end: date,
    symbols: list[str],
    resources: dict,
    instance: dg.DagsterInstance,
    market_assets: list[dg.AssetsDefinition] | None = None,
    date_assets: list[dg.AssetsDefinition] | None = None,
) -> list[RangeRun]:
    """The raw layer over a date range: one run for date x symbol assets, one for date assets."""
    market_assets = RAW_MARKET_ASSETS if market_assets is None else market_assets
    date_assets = RAW_DATE_ASSETS if date_assets is None else date_assets
    runs = []
    if market_assets:
        runs.append(run_range(market_assets, start, end, symbols, resources, instance))
    if date_assets:
        runs.append(run_range(date_assets, start, end, None, resources, instance))
    return runs


def run_features(
    start: date,
    end: date,
    symbols: list[str],
    resources: dict,
    instance: dg.DagsterInstance,
    with_folds: bool = True,
    fold_config: dict | None = None,
    log_level: str = "INFO",
) -> list[RangeRun]:
    """The derived layer over a date range: macro features (date), then every date x symbol feature and label
    asset in one run (Dagster orders them), then the walk-forward folds."""
    from quantmm_assets.core.text.features import TEXT_LOOKBACK_DAYS
    from quantmm_assets.defs.feature_assets import derivatives_features, macro_features, market_features
    from quantmm_assets.defs.matrix_assets import feature_matrix_main, labels_multi_horizon, walk_forward_folds
    from quantmm_assets.defs.text_assets import TEXT_ASSETS

    # text_items feeds a look-back: its earlier days must exist before the bucket features read them (the days
    # before the first partition do not exist: the look-back clips there, as the partition mappings do)
    text_items, *text_features = TEXT_ASSETS
    text_start = max(start - timedelta(days=TEXT_LOOKBACK_DAYS), first_partition_day())
    runs = [
        run_range([macro_features], start, end, None, resources, instance, log_level),
        run_range([text_items], text_start, end, symbols, resources, instance, log_level),
    ]
    per_symbol = [market_features, derivatives_features, *text_features, feature_matrix_main, labels_multi_horizon]
    runs.append(run_range(per_symbol, start, end, symbols, resources, instance, log_level))
    if with_folds and runs[-1].success:
        runs.append(run_selection([walk_forward_folds], resources, instance, fold_config, log_level=log_level))
    return runs


def run_partitions(
    assets: list[dg.AssetsDefinition],
    partition_keys: list[str],
    resources: dict,
    instance: dg.DagsterInstance,
    config: dict | None = None,
) -> list[RangeRun]:
    """Materialize statically partitioned ``assets`` one partition per run (op config for the first asset)."""
    return [run_selection(assets, resources, instance, config, key) for key in partition_keys]


def run_training(
    backbones: list[str], resources: dict, instance: dg.DagsterInstance, config: dict | None = None
) -> list[RangeRun]:
    """``trained_backbones`` one backbone per run, then ``backbone_report`` (same training config): it ranks every
    materialized backbone beside the baselines."""
    from quantmm_assets.defs.model_assets import trained_backbones
    from quantmm_assets.defs.report_assets import backbone_report

    runs = run_partitions([trained_backbones], backbones, resources, instance, config)
    return [*runs, run_selection([backbone_report], resources, instance, config)]


def run_candidates(
    symbols: list[str], horizons: list[str], resources: dict, instance: dg.DagsterInstance
) -> list[RangeRun]:
    """``frozen_baseline``, then ``candidate_models`` one (symbol, horizon) partition per run: each registers the
    candidate of its partition and evaluates its gates (a refused gate is a check result, not a failed run)."""
    from quantmm_assets.defs.candidate_assets import candidate_models, frozen_baseline

    runs = [run_selection([frozen_baseline], resources, instance)]
    keys = [str(dg.MultiPartitionKey({"horizon": h, "symbol": s})) for s in symbols for h in horizons]
    return runs + run_partitions([candidate_models], keys, resources, instance)
