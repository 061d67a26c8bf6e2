"""Rank the backbones, lay the ablations side by side and build the comparison report (DESIGN section 3).

Both tables start from :func:`core.evaluation.metrics.fold_metrics` (one row per backbone, variant, fold, symbol,
horizon).
A baseline is a row whose backbone is one of ``BASELINES`` (they run as variant ``full``) or whose variant is not an
ablation variant (``full / no_text / no_macro / event_window``); the latter is named by its variant.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import polars as pl
from matplotlib.figure import Figure

from quantmm_assets.core.evaluation.bootstrap import ablation_significance
from quantmm_assets.core.evaluation.metrics import (
    ABLATION_VARIANTS,
    FOLD_METRICS_SCHEMA,
    HEADLINE_METRICS,
    calibration_table,
    expected_calibration_error,
    fold_metrics,
    horizon_order,
)
from quantmm_assets.core.evaluation.plots import plot_calibration, plot_cumulative_pnl
from quantmm_assets.core.signal import SignalConfig

RANKING_COLUMNS = ("symbol", "horizon", "rank", "backbone", *(f"mean_{m}" for m in HEADLINE_METRICS), "n_folds")
ABLATION_METRICS = ("sharpe", "rank_ic", "mae")
BASELINES = ("zero", "momentum", "ridge_price")  # the names of models.baselines.BASELINES


def _is_baseline(baselines: tuple[str, ...]) -> pl.Expr:
    return pl.col("backbone").is_in(list(baselines)) | ~pl.col("variant").is_in(ABLATION_VARIANTS)


def _check_metrics(metrics: pl.DataFrame) -> None:
    missing = [c for c in FOLD_METRICS_SCHEMA if c not in metrics.columns]
    if missing:
        raise ValueError(f"metrics: missing columns {missing} (expected the output of fold_metrics)")


def rank_backbones(
    metrics: pl.DataFrame,
    variant: str = "full",
    include_baselines: bool = True,
    baselines: tuple[str, ...] = BASELINES,
) -> pl.DataFrame:
    """Return per (symbol, horizon) the contenders ranked by mean Sharpe over folds (nulls last), then mean rank IC.

    Contenders are the backbones' ``variant`` rows and, with ``include_baselines``, the baseline rows (variant
    ``full`` of ``baselines``, and rows of a non-ablation variant). Remaining ties are broken by name, so the order is
    deterministic. Columns: ``RANKING_COLUMNS``.
    """
    _check_metrics(metrics)
    baseline = _is_baseline(baselines)
    model_rows = (pl.col("variant") == variant) & ~baseline
    baseline_rows = baseline & ((pl.col("variant") == "full") | ~pl.col("variant").is_in(ABLATION_VARIANTS))
    name = pl.when(pl.col("variant").is_in(ABLATION_VARIANTS)).then(pl.col("backbone")).otherwise(pl.col("variant"))
    means = {f"mean_{m}": pl.col(m).mean() for m in HEADLINE_METRICS}
    ranked = (
        metrics.filter(model_rows | (baseline_rows & pl.lit(include_baselines)))
        .with_columns(backbone=name)
        .group_by(["symbol", "horizon", "backbone"])
        .agg(**means, n_folds=pl.col("fold").n_unique())
        .sort(
            [pl.col("symbol"), horizon_order(), pl.col("mean_sharpe"), pl.col("mean_rank_ic"), pl.col("backbone")],
            descending=[False, False, True, True, False],
            nulls_last=True,
        )
        .with_columns(rank=pl.int_range(1, pl.len() + 1).over(["symbol", "horizon"]))
    )
    return ranked.select(RANKING_COLUMNS).with_columns(pl.col("rank", "n_folds").cast(pl.Int64))


def ablation_table(metrics: pl.DataFrame, baselines: tuple[str, ...] = BASELINES) -> pl.DataFrame:
    """Return per (backbone, horizon) the mean over folds and symbols of each metric for each ablation variant.

    Columns: backbone, horizon, ``{metric}_{variant}`` for metric in sharpe / rank_ic / mae and every variant of
    ``ABLATION_VARIANTS`` (null where the variant was not run), and ``{metric}_full_minus_no_text``. Baselines are
    left out.
    """
    _check_metrics(metrics)
    is_v = pl.col("variant")
    cells = [pl.col(m).filter(is_v == v).mean().alias(f"{m}_{v}") for m in ABLATION_METRICS for v in ABLATION_VARIANTS]
    diffs = [(pl.col(f"{m}_full") - pl.col(f"{m}_no_text")).alias(f"{m}_full_minus_no_text") for m in ABLATION_METRICS]
    return (
        metrics.filter(~_is_baseline(baselines))
        .group_by(["backbone", "horizon"])
        .agg(cells)
        .with_columns(diffs)
        .sort(["backbone", horizon_order()])
    )


def per_fold_means(metrics: pl.DataFrame) -> pl.DataFrame:
    """Return the mean over symbols of the headline metrics per (variant, fold, horizon)."""
    _check_metrics(metrics)
    return (
        metrics.group_by("variant", "fold", "horizon")
        .agg([pl.col(c).mean() for c in HEADLINE_METRICS])
        .sort("variant", "fold", "horizon")
    )


def _fmt(value: object) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    if isinstance(value, float):
        return f"{value:.3f}" if value == 0 or abs(value) >= 0.01 else f"{value:.2e}"
    return str(value).replace("|", "\\|")


def markdown_table(frame: pl.DataFrame, columns: list[str] | None = None) -> str:
    """Return ``frame`` (or its ``columns``) as a Markdown table; nulls and NaN show as an em dash."""
    cols = columns or frame.columns
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in frame.select(cols).iter_rows()]
    return "\n".join(lines)


def report_markdown(
    ranking: pl.DataFrame,
    ablation: pl.DataFrame,
    ece: pl.DataFrame,
    n_configs: dict[str, int],
    significance: pl.DataFrame | None = None,
    signal: SignalConfig | None = None,
) -> str:
    """Return the comparison report: the signal, configurations tried, rankings per horizon, ablations,
    calibration."""
    names = sorted(set(ranking["backbone"].to_list()) | set(ablation["backbone"].to_list()) | set(n_configs))
    configs = pl.DataFrame(
        {"backbone": names, "configurations tried": [str(n_configs.get(b, "not reported")) for b in names]}
    )
    parts = [
        "# Backbone comparison (walk-forward, out of sample)",
        "",
        "Sharpe is after costs, on non-overlapping steps of the horizon, annualized; every metric is the mean over "
        "folds. Hyper-parameters were tuned on the inner purged k-fold of each train window only.",
        "",
        "## Signal",
        "",
        (signal or SignalConfig()).describe() + ".",
        "",
        "## Hyper-parameter configurations tried",
        "",
        markdown_table(configs),
        "",
        "## Ranking by after-cost Sharpe",
    ]
    shown = [c for c in RANKING_COLUMNS if c != "horizon"]
    for horizon in ranking.sort(horizon_order())["horizon"].unique(maintain_order=True).to_list():
        parts += ["", f"### {horizon}", "", markdown_table(ranking.filter(pl.col("horizon") == horizon), shown)]
    parts += [
        "",
        "## Ablations (mean over folds and symbols)",
        "",
        "`*_full_minus_no_text` > 0 means text helps for Sharpe and rank IC; for MAE, < 0 means text helps.",
        "",
        markdown_table(ablation),
    ]
    if significance is not None and significance.height:
        parts += ["", "## Ablation intervals (paired bootstrap over UTC days)", "", markdown_table(significance)]
    parts += [
        "",
        "## Confidence calibration (expected calibration error)",
        "",
        markdown_table(ece.sort(["backbone", "variant", horizon_order()])),
        "",
    ]
    return "\n".join(parts)


@dataclass(frozen=True)
class ComparisonReport:
    """The comparison of backbones and baselines: the JSON document, its Markdown and the figures."""

    doc: dict[str, Any]
    markdown: str
    figures: dict[str, Figure]  # file name -> figure (the cumulative PnL and the reliability diagram)


def build_report(
    predictions: pl.DataFrame,
    n_configs: dict[str, int],
    n_boot: int = 300,
    signal: SignalConfig | None = None,
) -> ComparisonReport:
    """The comparison of ``predictions`` under ``signal`` (the default when None): ranking, ablations, the
    significance of ``full - no_text`` over the backbones' rows (baselines left out), calibration, figures."""
    signal = signal or SignalConfig()
    metrics = fold_metrics(predictions, signal)
    ranking = rank_backbones(metrics)
    ablation = ablation_table(metrics)
    cal = calibration_table(predictions)
    ece = expected_calibration_error(cal)
    trained = predictions.filter(~_is_baseline(BASELINES))
    significance = ablation_significance(trained, "full", "no_text", "rank_ic", n_boot=n_boot)
    markdown = report_markdown(ranking, ablation, ece, n_configs, significance, signal)
    doc = {
        "signal_config": signal.record(),
        "ranking": ranking.to_dicts(),
        "ablation": ablation.to_dicts(),
        "text_significance": significance.to_dicts(),
        "calibration_ece": ece.to_dicts(),
        "calibration_table": cal.to_dicts(),
        "fold_metrics": metrics.to_dicts(),
        "n_configs": n_configs,
    }
    figures = {
        "cumulative_pnl.png": plot_cumulative_pnl(predictions, variants=["full"], signal=signal),
        "calibration.png": plot_calibration(cal, variants=["full"]),
    }
    return ComparisonReport(doc, markdown, figures)
