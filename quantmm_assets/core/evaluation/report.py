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
from quantmm_assets.core.evaluation.evidence import (
    EVIDENCE_SCHEMA,
    FOR,
    MIN_HELD_STEPS,
    MIN_UNITS,
    SERIES_KEYS,
    VERDICT_ORDER,
    evidence_table,
    verdict,
)
from quantmm_assets.core.evaluation.metrics import (
    ABLATION_VARIANTS,
    FOLD_METRICS_SCHEMA,
    HEADLINE_METRICS,
    calibration_table,
    expected_calibration_error,
    fold_metrics,
    horizon_order,
    trading_steps,
)
from quantmm_assets.core.evaluation.plots import plot_calibration, plot_cumulative_pnl
from quantmm_assets.core.signal import SignalConfig

EVIDENCE_COLUMNS = ("verdict", "evidence_sharpe", "n_counted", "n_windows", "n_held", "n_steps")
RANKING_COLUMNS = (
    "symbol",
    "horizon",
    "rank",
    "backbone",
    *EVIDENCE_COLUMNS,
    *(f"mean_{m}" for m in HEADLINE_METRICS),
    "n_folds",
)
ABLATION_METRICS = ("sharpe", "rank_ic", "mae")
BASELINES = ("zero", "momentum", "ridge_price")  # the names of models.baselines.BASELINES
EVIDENCE_RULE = (
    f"A test window counts with at least {MIN_HELD_STEPS} non-overlapping steps holding a position (for 1d and "
    f"longer, consecutive windows are pooled until they do); `evidence_sharpe` is the mean Sharpe of the counted "
    f"windows, `n_counted` of `n_windows` counted, `n_held` of `n_steps` steps held a position. Fewer than "
    f"{MIN_UNITS} counted windows is *insufficient evidence* (the data cannot tell), not evidence against; only "
    f"*evidence for* (Sharpe and rank IC > 0) gets a rank."
)


def _is_baseline(baselines: tuple[str, ...]) -> pl.Expr:
    return pl.col("backbone").is_in(list(baselines)) | ~pl.col("variant").is_in(ABLATION_VARIANTS)


def _check_metrics(metrics: pl.DataFrame) -> None:
    missing = [c for c in FOLD_METRICS_SCHEMA if c not in metrics.columns]
    if missing:
        raise ValueError(f"metrics: missing columns {missing} (expected the output of fold_metrics)")


def rank_backbones(
    metrics: pl.DataFrame,
    evidence: pl.DataFrame,
    variant: str = "full",
    include_baselines: bool = True,
    baselines: tuple[str, ...] = BASELINES,
) -> pl.DataFrame:
    """Return per (symbol, horizon) the contenders with their evidence (:mod:`core.evaluation.evidence`), ordered
    by verdict (evidence for, against, insufficient), then the Sharpe over counted windows (nulls last), then mean
    rank IC; only ``evidence for`` rows get a ``rank`` (1 = best), so neither a Sharpe from a few trades nor one
    with the evidence against it ranks first.

    Contenders are the backbones' ``variant`` rows and, with ``include_baselines``, the baseline rows (variant
    ``full`` of ``baselines``, and rows of a non-ablation variant). Remaining ties are broken by name, so the order is
    deterministic. ``evidence`` is :func:`~core.evaluation.evidence.evidence_table` of the same predictions.
    Columns: ``RANKING_COLUMNS`` (``mean_*`` over folds, every fold included).
    """
    _check_metrics(metrics)
    missing = [c for c in EVIDENCE_SCHEMA if c not in evidence.columns]
    if missing:
        raise ValueError(f"evidence: missing columns {missing} (expected the output of evidence_table)")
    baseline = _is_baseline(baselines)
    model_rows = (pl.col("variant") == variant) & ~baseline
    baseline_rows = baseline & ((pl.col("variant") == "full") | ~pl.col("variant").is_in(ABLATION_VARIANTS))
    name = pl.when(pl.col("variant").is_in(ABLATION_VARIANTS)).then(pl.col("backbone")).otherwise(pl.col("variant"))
    means = {f"mean_{m}": pl.col(m).mean() for m in HEADLINE_METRICS}
    counts = [pl.col(c).first().fill_null(0) for c in ("n_counted", "n_windows", "n_held")]
    ranked = (
        metrics.filter(model_rows | (baseline_rows & pl.lit(include_baselines)))
        .join(evidence.select(list(EVIDENCE_SCHEMA)).rename({"n_steps": "all_steps"}), on=list(SERIES_KEYS), how="left")
        .with_columns(backbone=name)
        .group_by(["symbol", "horizon", "backbone"])
        .agg(
            *counts,
            **means,
            n_folds=pl.col("fold").n_unique(),
            evidence_sharpe=pl.col("evidence_sharpe").first(),
            n_steps=pl.col("all_steps").first().fill_null(0),
        )
        .with_columns(verdict=verdict(pl.col("n_counted"), pl.col("evidence_sharpe"), pl.col("mean_rank_ic")))
        .sort(
            [
                pl.col("symbol"),
                horizon_order(),
                pl.col("verdict").replace_strict(VERDICT_ORDER, return_dtype=pl.Int64),
                pl.col("evidence_sharpe"),
                pl.col("mean_rank_ic"),
                pl.col("backbone"),
            ],
            descending=[False, False, False, True, True, False],
            nulls_last=True,
        )
    )
    rank = pl.when(pl.col("verdict") == FOR).then(pl.int_range(1, pl.len() + 1).over(["symbol", "horizon"]))
    ranked = ranked.with_columns(rank=rank)
    ints = ("rank", "n_folds", "n_counted", "n_windows", "n_held", "n_steps")
    return ranked.select(RANKING_COLUMNS).with_columns(pl.col(*ints).cast(pl.Int64))


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
        "## Ranking by after-cost Sharpe, with the evidence behind it",
        "",
        EVIDENCE_RULE,
    ]
    shown = [c for c in RANKING_COLUMNS if c not in ("horizon", "mean_sharpe")]
    for horizon in ranking.sort(horizon_order())["horizon"].unique(maintain_order=True).to_list():
        rows = ranking.filter(pl.col("horizon") == horizon)
        parts += ["", f"### {horizon}", ""]
        for symbol in rows["symbol"].unique(maintain_order=True).to_list():
            if not rows.filter((pl.col("symbol") == symbol) & (pl.col("verdict") == FOR)).height:
                parts.append(f"- {symbol}: no contender shows evidence of an edge; nothing is ranked.")
        parts += ["", markdown_table(rows, shown)]
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
    evidence = evidence_table(trading_steps(predictions, signal=signal))
    ranking = rank_backbones(metrics, evidence)
    ablation = ablation_table(metrics)
    cal = calibration_table(predictions)
    ece = expected_calibration_error(cal)
    trained = predictions.filter(~_is_baseline(BASELINES))
    significance = ablation_significance(trained, "full", "no_text", "rank_ic", n_boot=n_boot)
    markdown = report_markdown(ranking, ablation, ece, n_configs, significance, signal)
    doc = {
        "signal_config": signal.record(),
        "ranking": ranking.to_dicts(),
        "evidence_rule": EVIDENCE_RULE,
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
