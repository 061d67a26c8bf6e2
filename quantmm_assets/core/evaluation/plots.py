"""Plots of the backbone comparison: cumulative after-cost PnL and confidence reliability diagrams.

Each returns a matplotlib ``Figure``; writing it (the lake's report folder, an MLflow artifact) is the caller's
business, outside core."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import polars as pl
from matplotlib.figure import Figure

from quantmm_assets.core.evaluation.metrics import horizon_order, trading_steps
from quantmm_assets.core.signal import SignalConfig


def close_figure(fig: Figure) -> None:
    """Release a figure once it has been written (pyplot keeps every open figure alive)."""
    plt.close(fig)


def _horizons(frame: pl.DataFrame) -> list[str]:
    return frame.sort(horizon_order())["horizon"].unique(maintain_order=True).to_list()


def _empty(title: str) -> Figure:
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.set_title(title)
    ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
    ax.set_axis_off()
    return fig


def plot_cumulative_pnl(
    predictions: pl.DataFrame,
    variants: Sequence[str] | None = None,
    signal: SignalConfig | None = None,
) -> Figure:
    """One subplot per horizon, one line per (backbone, variant): cumulative after-cost PnL over time.

    The PnL is that of the non-overlapping steps (:func:`core.evaluation.metrics.trading_steps`), summed across symbols
    and folds at each step time, in time order, under the signal ``signal`` (the default when None). ``variants``
    restricts the lines (all when None).
    """
    steps = trading_steps(predictions, None, signal)
    if variants is not None:
        steps = steps.filter(pl.col("variant").is_in(list(variants)))
    horizons = _horizons(steps)
    if not horizons:
        return _empty("Cumulative after-cost PnL")
    fig, axes = plt.subplots(len(horizons), 1, figsize=(11, 3.4 * len(horizons)), squeeze=False)
    for ax, horizon in zip(axes[:, 0], horizons, strict=True):
        by_line = steps.filter(pl.col("horizon") == horizon).group_by(["backbone", "variant", "ts_event"])
        curve = (
            by_line.agg(pl.col("pnl").sum())
            .sort(["backbone", "variant", "ts_event"])
            .with_columns(cum_pnl=pl.col("pnl").cum_sum().over(["backbone", "variant"]))
        )
        for (backbone, variant), line in curve.group_by(["backbone", "variant"], maintain_order=True):
            ax.plot(line["ts_event"].to_numpy(), line["cum_pnl"].to_numpy(), lw=1.0, label=f"{backbone} / {variant}")
        ax.axhline(0.0, color="grey", lw=0.6)
        ax.set_title(f"{horizon}: cumulative after-cost PnL (log-return units, summed over symbols)")
        ax.set_ylabel("cumulative PnL")
        ax.legend(fontsize=7, ncol=2, loc="upper left")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_calibration(cal_table: pl.DataFrame, variants: Sequence[str] | None = None) -> Figure:
    """A reliability diagram per horizon from :func:`core.evaluation.metrics.calibration_table`, with the diagonal."""
    need = ["backbone", "variant", "horizon", "mean_confidence", "hit_rate"]
    missing = [c for c in need if c not in cal_table.columns]
    if missing:
        raise ValueError(f"calibration table: missing columns {missing}")
    table = cal_table if variants is None else cal_table.filter(pl.col("variant").is_in(list(variants)))
    horizons = _horizons(table)
    if not horizons:
        return _empty("Confidence calibration")
    fig, axes = plt.subplots(1, len(horizons), figsize=(4.2 * len(horizons), 4.4), squeeze=False)
    for ax, horizon in zip(axes[0], horizons, strict=True):
        rows = table.filter(pl.col("horizon") == horizon).sort(["backbone", "variant", "mean_confidence"])
        ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1.0, label="perfect")
        for (backbone, variant), line in rows.group_by(["backbone", "variant"], maintain_order=True):
            ax.plot(
                line["mean_confidence"], line["hit_rate"], marker="o", ms=3, lw=1.0, label=f"{backbone} / {variant}"
            )
        ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="mean confidence", ylabel="observed hit rate", title=horizon)
        ax.set_aspect("equal")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6, loc="upper left")
    fig.tight_layout()
    return fig
