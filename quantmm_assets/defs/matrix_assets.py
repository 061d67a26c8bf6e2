"""``feature_matrix_main`` (with its feature contract), ``labels_multi_horizon`` and ``walk_forward_folds``."""

import dataclasses
from datetime import UTC, datetime, time, timedelta
from typing import Any, get_type_hints

import dagster as dg
import duckdb
import polars as pl
import pydantic

from quantmm_assets.core import labels as lab
from quantmm_assets.core.costs import CostConfig
from quantmm_assets.core.features.matrix import assemble_matrix, feature_contract, with_schema
from quantmm_assets.core.folds import FoldSpec
from quantmm_assets.core.folds import walk_forward_folds as build_folds
from quantmm_assets.core.leakage.derived import fold_hygiene, label_alignment
from quantmm_assets.defs.checks.leakage_checks import matrix_check_specs, matrix_leakage_results
from quantmm_assets.defs.checks.leakage_results import leakage_result, run_check
from quantmm_assets.defs.derived_window import (
    COMMON,
    derived_output,
    owned_rows,
    run_window,
    timed,
    window_in,
)
from quantmm_assets.defs.partitions import SAME_DAY, date_x_symbol, first_partition_day, partition_symbols
from quantmm_assets.defs.readiness import readiness_report
from quantmm_resources.lake import LakeResource
from quantmm_resources.text_encoder import TextEncoder


@dg.asset(
    partitions_def=date_x_symbol,
    group_name="features",
    ins={"macro_features": dg.AssetIn(partition_mapping=SAME_DAY)},
    check_specs=matrix_check_specs(),
    description="One row per (symbol, 5m t) of the perpetual: every feature family joined on availability "
    "(exact on the shared grid, as-of for macro releases), missing flags, text latents at full width. Its "
    "feature contract (ordered names, dtypes, version) is in the metadata and beside the lake.",
    **COMMON,
)
def feature_matrix_main(
    context: dg.AssetExecutionContext,
    market_features: pl.DataFrame,
    derivatives_features: pl.DataFrame,
    macro_features: pl.DataFrame,
    text_bucket_features: pl.DataFrame,
    text_latents: pl.DataFrame,
    lake: LakeResource,
    text_encoder: TextEncoder,
):
    win = run_window(context)
    dim = text_encoder.dim
    contract = feature_contract(dim)
    out, secs = timed(
        lambda: owned_rows(
            assemble_matrix(
                market_features,
                derivatives_features,
                macro_features,
                text_bucket_features,
                text_latents,
                partition_symbols(),
                dim,
            ),
            win,
        )
    )
    lake.write_feature_contract(contract.to_dict())
    yield derived_output(
        context,
        out,
        win,
        secs,
        {
            "feature_contract_version": contract.version,
            "features": len(contract.names),
            "feature_contract": dg.MetadataValue.json(contract.to_dict()),
            "rows_without_text": int(out["text_missing"].sum()) if len(out) else 0,
        },
    )
    yield from matrix_leakage_results(
        out, lake, lambda texts, hashes: text_encoder.embed(texts, hashes)[0], dim, partition_symbols()
    )


class _CostConfigFields(dg.Config):
    def cost(self) -> CostConfig:
        """Return the cost model these fields configure."""
        return CostConfig(**self.model_dump())


def _cost_config_fields() -> dict[str, Any]:
    """Return ``CostConfig``'s fields as pydantic field definitions: ``{name: (type, default)}``."""
    hints = get_type_hints(CostConfig)
    return {f.name: (hints[f.name], f.default) for f in dataclasses.fields(CostConfig)}


# Generated from the dataclass: the run-config keys (``fee_bps``, ...) are CostConfig's fields, one source.
LabelConfig = pydantic.create_model(
    "LabelConfig",
    __base__=_CostConfigFields,
    __doc__="The recorded cost configuration (written into the metadata and, later, every training run's params).",
    __module__=__name__,
    **_cost_config_fields(),
)


@dg.asset(
    partitions_def=date_x_symbol,
    group_name="labels",
    # one day back: the row at 00:00 starts from the bar that closes then (it opened at 23:55 the day before)
    ins={
        "market_bars_5m": window_in(1, ahead=lab.LABEL_LOOKAHEAD_DAYS),
        "funding_rates": window_in(1, ahead=lab.LABEL_LOOKAHEAD_DAYS),  # a day back: the settlement before t
        "market_features": dg.AssetIn(),
    },
    check_specs=[
        dg.AssetCheckSpec(
            "label_alignment",
            asset="labels_multi_horizon",
            blocking=True,
            description="Blocking: each label's ts_available is t + h, sampled labels (their funding included) "
            "rebuild from the bars and funding available at t + h, and none can be built from the bars available "
            "5 minutes earlier",
        )
    ],
    description="Per perp row t and horizon (1h, 4h, 1d, 7d): gross forward log return, round-trip cost from the "
    "recorded cost configuration, the funding a long pays over the window, forward realized volatility; known at "
    "t + h (long format).",
    **COMMON,
)
def labels_multi_horizon(
    context: dg.AssetExecutionContext,
    config: LabelConfig,
    market_bars_5m: pl.DataFrame,
    funding_rates: pl.DataFrame,
    market_features: pl.DataFrame,
):
    win = run_window(context)
    bars = with_schema(market_bars_5m, "market_bars_5m")
    funding = with_schema(funding_rates, "funding_rates")
    spread = market_features.select("symbol", "ts_event", "cs_spread_1d")
    cost = config.cost()
    out, secs = timed(
        lambda: owned_rows(lab.labels_multi_horizon(bars, spread, win.start, win.end, cost, funding=funding), win)
    )
    yield derived_output(
        context,
        out,
        win,
        secs,
        {
            "cost_config": dg.MetadataValue.json(cost.as_params()),
            "complete_labels": int(out["complete"].sum()) if len(out) else 0,
            # complete labels whose funding is unknown (settlements missing): left out of every PnL
            "complete_without_funding": int((out["complete"] & out["funding"].is_null()).sum()) if len(out) else 0,
        },
        complete_rows=pl.col("complete"),  # a day's labels are complete once its 7-day windows are in the lake
    )
    yield from run_check(
        "labels_multi_horizon", "label_alignment", lambda: label_alignment(out, bars, spread, cost, funding)
    )


FOLD_MODES = ("production", "research")


class FoldConfig(dg.Config):
    """The one fold spec every backbone uses (see core.folds.FoldSpec).

    ``production``: train windows grow from ``min_train_days`` and roll once they reach ``train_days`` (365), and
    the registered refit trains on the last ``train_days`` of complete data. ``research``: every window trains on
    all history, allowed only when the readiness audit (research window) passes for ``required_kinds``.
    """

    n_folds: int = 3
    test_days: int = 30
    min_train_days: int = 90
    embargo_days: float = 1.0
    purge_days: float = 7.0
    inner_k: int = 3
    mode: str = "production"
    train_days: int = 365
    required_kinds: list[str] = ["perp_bars_5m", "funding"]

    def spec(self) -> FoldSpec:
        if self.mode not in FOLD_MODES:
            raise ValueError(f"walk_forward_folds: unknown mode {self.mode!r}; expected one of {FOLD_MODES}")
        return FoldSpec(
            n_folds=self.n_folds,
            test_days=self.test_days,
            min_train_days=self.min_train_days,
            embargo=timedelta(days=self.embargo_days),
            purge=timedelta(days=self.purge_days),
            inner_k=self.inner_k,
            expanding=self.mode == "research",
            train_days=self.train_days,
        )


@dg.asset(
    group_name="labels",
    deps=["labels_multi_horizon"],
    io_manager_key="lake_io_manager",
    kinds={"polars"},
    check_specs=[
        dg.AssetCheckSpec(
            "fold_hygiene",
            asset="walk_forward_folds",
            blocking=True,
            description="Blocking: on the materialized intervals, every train label window ends a purge (and an "
            "embargo) before its evaluation window, nothing trains right after one, test windows never overlap",
        )
    ],
    description="Walk-forward test windows with purged, embargoed train windows and a purged k-fold inside each "
    "train window: one spec across all symbols and every backbone, over the span of the labels in the lake; the "
    "test windows sit on a grid anchored at the partitions' start, so a retrain adds windows and moves none.",
)
def walk_forward_folds(context: dg.AssetExecutionContext, config: FoldConfig, lake: LakeResource):
    if not lake.has("labels_multi_horizon"):
        raise ValueError("walk_forward_folds: no labels in the lake; materialize labels_multi_horizon first")
    first, last, horizons = duckdb.sql(
        "SELECT min(ts_event), max(ts_event), list(DISTINCT horizon) "
        f"FROM read_parquet('{lake.pattern('labels_multi_horizon')}')"
    ).fetchall()[0]
    if first is None:
        raise ValueError("walk_forward_folds: no labels in the lake; materialize labels_multi_horizon first")
    spec = config.spec()
    if config.mode == "research":
        _require_research_readiness(lake, config.required_kinds)
    # the grid is anchored at the partitions' start, not at the first label: windows line up across retrains
    anchor = datetime.combine(first_partition_day(), time(), UTC)
    folds = build_folds(first, last, spec, anchor)
    # the spec beside the folds: the training assets refit with it (purge, embargo, inner k)
    lake.write_fold_spec(spec.plain())
    yield dg.Output(
        folds,
        metadata={
            "label_span": f"{first} .. {last}",
            "grid_anchor": str(anchor),
            "spec": dg.MetadataValue.json({k: str(v) for k, v in spec.to_params().items()}),
            "folds": dg.MetadataValue.md(_folds_md(folds)),
        },
    )
    # verified against the longest label horizon in the lake, not only the spec's own purge
    outcome = fold_hygiene(folds, spec.purge, spec.embargo, horizons)
    yield leakage_result("walk_forward_folds", "fold_hygiene", outcome, 0.0)


def _require_research_readiness(lake: LakeResource, required: list[str]) -> None:
    """Refuse research mode (all history) unless the readiness audit over all history passes for ``required``."""
    report = readiness_report(lake, "research", lookback_days=0)
    unknown = sorted(set(required) - set(report["kinds"]))
    if unknown:
        raise ValueError(f"walk_forward_folds: unknown required data kinds {unknown}; known: {sorted(report['kinds'])}")
    short = {k: report["kinds"][k]["coverage"] for k in required if not report["kinds"][k]["ready"]}
    if short:
        window = " .. ".join(report["window"])
        raise ValueError(
            f"walk_forward_folds: research mode trains on all history ({window}), allowed only when the readiness "
            f"audit passes for {required}; below the ready share: {short}. Backfill them (`quantmm readiness "
            "--mode research` lists the commands) or use mode production"
        )


def _folds_md(folds: pl.DataFrame) -> str:
    rows = folds.filter(pl.col("kind") == "walk_forward")
    lines = ["| fold | role | start | end |", "|---|---|---|---|"]
    lines += [f"| {r['fold']} | {r['role']} | {r['start']} | {r['end']} |" for r in rows.iter_rows(named=True)]
    return "\n".join(lines)


MATRIX_ASSETS = [feature_matrix_main, labels_multi_horizon, walk_forward_folds]
