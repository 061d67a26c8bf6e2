"""The hyper-parameter configurations tried per backbone (the nested purged k-fold picks one per fold).

Kept small on purpose: every report states how many were tried, and each one multiplies the inner fits.
The torch backbones get one configuration each (their step budget is the expensive part; see the bench).
"""

from __future__ import annotations

from typing import Any

from quantmm_assets.models.registry import BACKBONES

DEFAULT_GRIDS: dict[str, list[dict[str, Any]]] = {
    "ridge": [{"alpha": 10.0}, {"alpha": 1000.0}],
    "lightgbm": [
        {"max_steps": 200, "hidden_size": 15, "min_child_samples": 200, "learning_rate": 0.03},
        {"max_steps": 200, "hidden_size": 7, "min_child_samples": 400, "learning_rate": 0.03, "colsample_bytree": 0.5},
    ],
}


def grid_for(backbone: str, overrides: dict[str, Any] | None = None, seed: int = 7) -> list[dict[str, Any]]:
    """Return the configurations of ``backbone``: its default grid (or ``[{}]``) with ``overrides`` and the seed."""
    if backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {backbone!r}; registered: {sorted(BACKBONES)}")
    known = set(BACKBONES[backbone].defaults)
    unknown = sorted(set(overrides or {}) - known)
    if unknown:
        raise ValueError(f"{backbone}: unknown parameters {unknown} in the overrides; known: {sorted(known)}")
    return [{**g, **(overrides or {}), "random_seed": seed} for g in DEFAULT_GRIDS.get(backbone, [{}])]
