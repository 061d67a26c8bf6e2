"""``quantmm features`` and ``quantmm train``: the derived layer and the model layer over the user's own lake,
through Dagster on the instance (the UI shows every run), in the order the runbook gives."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import dagster as dg

from quantmm_assets.core.labels import HORIZONS
from quantmm_assets.defs.partitions import first_partition_day, partition_symbols
from quantmm_jobs.cli.runs import RangeRun, instance_for, run_candidates, run_features, run_training
from quantmm_resources.environment import build_resources
from quantmm_resources.lake_views import bar_span
from quantmm_resources.settings import QuantmmSettings


def raw_span(lake_dir: Path) -> tuple[date, date, list[str]] | None:
    """First and last UTC day of the lake's 5-minute bars and the universe symbols they cover (None: no bars)."""
    span = bar_span(lake_dir, market=None)
    if span is None:
        return None
    first, last, symbols = span
    universe = partition_symbols()
    return first.date(), last.date(), sorted((s for s in symbols if s in universe), key=universe.index)


def build_features(
    settings: QuantmmSettings,
    start: date | None = None,
    end: date | None = None,
    symbols: list[str] | None = None,
    fold_config: dict | None = None,
    instance: dg.DagsterInstance | None = None,
) -> list[RangeRun]:
    """Macro features, text items, the date x symbol features and labels, then the walk-forward folds over
    [start, end] x symbols (default: the span and symbols of the raw lake)."""
    unknown = [s for s in symbols or [] if s not in partition_symbols()]
    if unknown:
        raise ValueError(f"symbols not in the universe: {unknown}")
    span = raw_span(settings.lake_dir)
    if span is None and not (start and end and symbols):
        raise ValueError(
            f"the lake {settings.lake_dir} holds no market_bars_5m: import data first (`quantmm bundle import DIR`)"
        )
    start, end, symbols = start or span[0], end or span[1], symbols or span[2]
    first = first_partition_day()
    if end < first:
        raise ValueError(
            f"nothing to build: {start}..{end} ends before the first partition day {first} "
            "(QUANTMM_PARTITION_START; the partitions definition is loaded once per code location)"
        )
    if start < first:
        print(
            f"quantmm features: {start} is before the first partition day {first} (QUANTMM_PARTITION_START); "
            f"building from {first}"
        )
        start = first
    if start > end or not symbols:
        raise ValueError(f"nothing to build: {start}..{end} x {symbols}")
    print(f"quantmm features: {start} .. {end} x {', '.join(symbols)} (lake {settings.lake_dir})")
    instance = instance or instance_for(settings)
    return run_features(start, end, symbols, build_resources(settings), instance, fold_config=fold_config)


def train_config(horizons: list[str] | None, row_stride: int | None, overrides_json: str | None) -> dict:
    """The ``TrainConfig`` values given on the command line (the rest keep the asset's defaults)."""
    config: dict = {}
    if horizons:
        config["horizons"] = horizons
    if row_stride:
        config["row_stride"] = row_stride
    if overrides_json:
        try:
            parsed = json.loads(overrides_json)
        except json.JSONDecodeError as exc:
            raise ValueError(f"--overrides is not valid JSON: {exc}") from exc
        if not isinstance(parsed, dict):
            raise ValueError('--overrides must be a JSON object {"backbone": {"param": value}}')
        config["overrides_json"] = overrides_json
    return config


def train(
    settings: QuantmmSettings,
    backbones: list[str] | None = None,
    config: dict | None = None,
    instance: dg.DagsterInstance | None = None,
) -> list[RangeRun]:
    """``trained_backbones`` for each backbone (default: every registered one), then ``backbone_report``."""
    from quantmm_assets.models.finetune import all_keys
    from quantmm_assets.models.registry import BACKBONES

    backbones = backbones or list(BACKBONES)
    unknown = [b for b in backbones if b not in all_keys()]
    if unknown:
        raise ValueError(f"unknown backbones {unknown}; registered: {', '.join(BACKBONES)} (and <backbone>~ft1|2)")
    instance = instance or instance_for(settings)
    if instance.get_latest_materialization_event(dg.AssetKey("walk_forward_folds")) is None:
        raise ValueError("walk_forward_folds is not materialized on this instance: run `quantmm features` first")
    print(f"quantmm train: {', '.join(backbones)}, backbone_report, then the candidates (lake {settings.lake_dir})")
    resources = build_resources(settings)
    runs = run_training(backbones, resources, instance, config)
    if not all(r.success for r in runs):
        return runs
    trained = resources["lake"].read_partitions("trained_backbones", backbones)
    symbols = sorted(trained["symbol"].unique().to_list())
    horizons = [h for h in (config or {}).get("horizons", HORIZONS) if h in set(trained["horizon"].to_list())]
    return runs + run_candidates(symbols, horizons, resources, instance)


def report_location(instance: dg.DagsterInstance) -> str | None:
    """Where the newest ``backbone_report`` materialization wrote its JSON (None: none yet)."""
    event = instance.get_latest_materialization_event(dg.AssetKey("backbone_report"))
    if event is None or event.asset_materialization is None:
        return None
    path = event.asset_materialization.metadata.get("report_json")
    return str(path.value) if path is not None else None
