"""Sharpe statistics the model gate reports (DESIGN section 4): the deflated Sharpe and the smallest detectable one.

- **Per-step Sharpe** of a PnL series: mean / std (ddof 1); 0 for a series that never moves (never in a position).
- **Deflated Sharpe ratio** (Bailey and Lopez de Prado, 2014): the probability that the candidate's true per-step
  Sharpe exceeds the best Sharpe N worthless configurations would show by chance,
  ``PSR(SR0) = Phi((SR - SR0) sqrt(T - 1) / sqrt(1 - g3 SR + (g4 - 1) / 4 SR^2))`` with ``SR0 = sqrt(V) ((1 - e)
  Phi^-1(1 - 1/N) + e Phi^-1(1 - 1/(N exp(1))))``, ``V`` the variance (ddof 1) of the N configurations' per-step
  Sharpes, ``e`` the Euler-Mascheroni constant, ``g3`` / ``g4`` the skewness and (non-excess) kurtosis of the
  candidate's step PnL and ``T`` its steps. With one configuration ``SR0 = 0`` (the probabilistic Sharpe ratio).
- **Smallest detectable Sharpe difference**: a one-sided test at ``alpha`` with power ``power`` on ``T`` steps
  detects a per-step Sharpe of ``(z_{1-alpha} + z_power) / sqrt(T)`` (the normal approximation, standard error
  ``1 / sqrt(T)``), annualized by ``sqrt(steps per year)``.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np

EULER_GAMMA = 0.5772156649015329
_NORMAL = NormalDist()


def step_sharpe(pnl: np.ndarray) -> float:
    """Return the per-step Sharpe (mean / std, ddof 1) of ``pnl``; 0 when it never moves, NaN with under 2 steps."""
    p = np.asarray(pnl, dtype=np.float64)
    if p.size < 2:
        return math.nan
    std = float(p.std(ddof=1))
    return float(p.mean()) / std if std > 0 else 0.0


def expected_max_sharpe(sharpes: np.ndarray) -> float:
    """Return ``SR0``: the expected largest of ``len(sharpes)`` Sharpes drawn with their variance around 0."""
    s = np.asarray(sharpes, dtype=np.float64)
    s = s[np.isfinite(s)]
    if s.size < 2:
        return 0.0
    n = s.size
    z = (1.0 - EULER_GAMMA) * _NORMAL.inv_cdf(1.0 - 1.0 / n) + EULER_GAMMA * _NORMAL.inv_cdf(1.0 - 1.0 / (n * math.e))
    return float(np.std(s, ddof=1)) * z


def deflated_sharpe(pnl: np.ndarray, sharpes: np.ndarray) -> float | None:
    """Return the deflated Sharpe probability of the step PnL ``pnl`` among configurations of per-step ``sharpes``.

    None with under 3 steps, a constant series or a non-positive variance term.
    """
    p = np.asarray(pnl, dtype=np.float64)
    if p.size < 3:
        return None
    centered = p - p.mean()
    sd = math.sqrt(float(np.mean(centered**2)))
    if sd == 0:
        return None
    skew = float(np.mean(centered**3)) / sd**3
    kurt = float(np.mean(centered**4)) / sd**4
    sr = step_sharpe(p)
    var_term = 1.0 - skew * sr + (kurt - 1.0) / 4.0 * sr**2
    if not var_term > 0:
        return None
    z = (sr - expected_max_sharpe(sharpes)) * math.sqrt(p.size - 1) / math.sqrt(var_term)
    return _NORMAL.cdf(z)


def min_detectable_sharpe(n_steps: int, steps_per_year: float, alpha: float = 0.05, power: float = 0.80) -> float:
    """Return the smallest annualized Sharpe (of a difference series) ``n_steps`` steps detect (NaN if none)."""
    if n_steps < 2:
        return math.nan
    z = _NORMAL.inv_cdf(1.0 - alpha) + _NORMAL.inv_cdf(power)
    return z / math.sqrt(n_steps) * math.sqrt(steps_per_year)


def detectable_sentence(observed: float, mde: float, n_steps: int, comparator: str) -> str:
    """Return the plain sentence comparing the observed annualized Sharpe difference with the detectable one."""
    if not (math.isfinite(mde) and math.isfinite(observed)):
        return f"{n_steps} steps are too few to say what difference they could detect."
    said = f"the observed Sharpe difference from {comparator} ({observed:.4g})"
    if observed < mde:
        return (
            f"{said} is below the smallest that {n_steps} steps could detect ({mde:.4g}): on this much data a good "
            "model often cannot pass; this is not evidence the model is bad."
        )
    return f"{said} is at or above the smallest that {n_steps} steps could detect ({mde:.4g})."
