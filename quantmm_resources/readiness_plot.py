"""Readiness heatmap: one row per data kind, one column per day, colour = share of the universe covered."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import polars as pl


def plot_coverage(grid: pl.DataFrame, title: str, path: Path) -> Path:
    """Write the coverage heatmap of ``grid`` (kind, date, share) to ``path`` (PNG) and return it."""
    kinds = list(dict.fromkeys(grid["kind"].to_list()))
    wide = grid.pivot(on="date", index="kind", values="share", sort_columns=True)
    dates = wide.columns[1:]
    values = np.ma.masked_invalid(wide.select(dates).to_numpy().astype(float))
    cmap = plt.get_cmap("RdYlGn").with_extremes(bad="#dddddd")  # grey: nothing expected that day
    fig, ax = plt.subplots(figsize=(min(18, 4 + len(dates) / 25), 0.45 * len(kinds) + 1.6))
    image = ax.imshow(values, aspect="auto", cmap=cmap, vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_yticks(range(len(kinds)), labels=wide["kind"].to_list())
    step = max(1, len(dates) // 12)
    ax.set_xticks(range(0, len(dates), step), labels=[str(d)[:10] for d in dates[::step]], rotation=45, ha="right")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, label="share of listed symbols with data")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
