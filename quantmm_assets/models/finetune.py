"""The fine-tune attempts: what is tried when a candidate fails the model gate (at most ``MAX_ATTEMPTS``).

An attempt is a ``trained_backbones`` partition of its own, ``<backbone>~ft<k>``: the same protocol (nested tuning
on the inner purged k-fold only, never on the test windows, every walk-forward fold) over a small grid that moves
three things, each documented below: the look-back (torch windows), the regularization, and how much the text
stage may use (its width ``text_dim`` and the gate's shrinkage ``gate_l2`` / ``text_l2``: a narrower, more
shrunk text stage is the text dropout of the flat heads). Its out-of-sample predictions are a configuration of their
own in ``candidate_models``, so every configuration tried is counted in the gate's selection-aware bootstrap, and
the candidate may be an attempt.
"""

from __future__ import annotations

from typing import Any

from quantmm_assets.models.grids import grid_for
from quantmm_assets.models.registry import BACKBONES

MAX_ATTEMPTS = 2
SEPARATOR = "~ft"

# attempt 1: more regularization and a shrunk text stage; attempt 2: less regularization, a narrow text stage
FLAT_GRIDS: dict[str, dict[int, list[dict[str, Any]]]] = {
    "ridge": {
        1: [{"alpha": 3000.0, "gate_l2": 1e-2}, {"alpha": 10000.0, "gate_l2": 1e-1}],
        2: [{"alpha": 100.0, "text_dim": 16}, {"alpha": 300.0, "text_dim": 16, "gate_l2": 1e-2}],
    },
    "lightgbm": {
        1: [
            {"max_steps": 200, "hidden_size": 7, "min_child_samples": 800, "learning_rate": 0.03, "gate_l2": 1e-2},
            {"max_steps": 300, "hidden_size": 5, "min_child_samples": 1200, "learning_rate": 0.02, "gate_l2": 1e-1},
        ],
        2: [
            {"max_steps": 200, "hidden_size": 31, "min_child_samples": 100, "learning_rate": 0.03, "text_dim": 16},
            {"max_steps": 200, "hidden_size": 15, "min_child_samples": 200, "colsample_bytree": 0.5, "text_dim": 16},
        ],
    },
}
# torch: attempt 1 doubles the look-back and shrinks the text stage; attempt 2 halves it with a narrow text stage
TORCH_GRIDS: dict[int, list[dict[str, Any]]] = {
    1: [{"input_size": 48, "text_l2": 10.0}],  # the default text_l2 is 1.0
    2: [{"input_size": 12, "text_dim": 16}],
}


def attempt_key(backbone: str, attempt: int) -> str:
    """The ``trained_backbones`` partition of fine-tune ``attempt`` of ``backbone`` (attempt 0: the backbone)."""
    if backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {backbone!r}; registered: {sorted(BACKBONES)}")
    if not 0 <= attempt <= MAX_ATTEMPTS:
        raise ValueError(f"fine-tune attempts are 1..{MAX_ATTEMPTS}, got {attempt}")
    return backbone if attempt == 0 else f"{backbone}{SEPARATOR}{attempt}"


def parse_key(key: str) -> tuple[str, int]:
    """``(backbone, attempt)`` of a ``trained_backbones`` partition key."""
    backbone, _, attempt = key.partition(SEPARATOR)
    n = int(attempt) if attempt else 0
    attempt_key(backbone, n)  # validates both
    return backbone, n


def all_keys() -> list[str]:
    """Every ``trained_backbones`` partition: each backbone and its attempts."""
    return sorted(attempt_key(b, k) for b in BACKBONES for k in range(MAX_ATTEMPTS + 1))


def grid_for_key(key: str, overrides: dict[str, Any] | None = None, seed: int = 7) -> list[dict[str, Any]]:
    """The configurations of a partition: the default grid (attempt 0) or the attempt's fine-tune grid, with the
    run's ``overrides`` (e.g. a torch step budget) and seed."""
    backbone, attempt = parse_key(key)
    if attempt == 0:
        return grid_for(backbone, overrides, seed)
    grid = FLAT_GRIDS[backbone][attempt] if backbone in FLAT_GRIDS else TORCH_GRIDS[attempt]
    return [{**g, **(overrides or {}), "random_seed": seed} for g in grid]
