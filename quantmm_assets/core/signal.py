"""The signal of a prediction (DESIGN section 3): one rule for the evaluation, the gates, serving and the paper loop.

Per prediction of horizon h, with ``expected_return``, the round-trip ``cost_h``, ``vol_forecast`` and
``signal_confidence``:

- ``side = sign(expected_return)``;
- ``edge = |expected_return| - cost_h``;
- ``score = edge / max(vol_forecast, eps)``: the edge in units of the forecast volatility;
- ``position = side`` when ``edge > 0``, ``score > score_threshold[h]`` and ``confidence > confidence_threshold[h]``,
  else 0 (flat). A threshold is *cleared* only when exceeded: a value exactly at its threshold stays flat (as the
  confidence rule always did). A null or NaN in any input gives flat.

The thresholds live in one :class:`SignalConfig`, recorded with every run (``as_params``, ``config_hash``). The
default (score 0, confidence 0.5 on every horizon) is the signal the evaluation used before the score existed:
with a positive finite vol, ``score > 0`` exactly when ``edge > 0``.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
from numpy.typing import ArrayLike

from quantmm_assets.core.labels import HORIZONS

DEFAULT_SCORE_THRESHOLD = 0.0
DEFAULT_CONFIDENCE_THRESHOLD = 0.5
VOL_EPS = 1e-8  # the floor of the vol in the score (the models' rv floor): a zero vol does not divide by zero
PARAM_PREFIX = "signal."


def _per_horizon(values: Mapping[str, float], default: float, what: str) -> dict[str, float]:
    unknown = sorted(set(values) - set(HORIZONS))
    if unknown:
        raise ValueError(f"SignalConfig: {what} for unknown horizons {unknown}; known: {list(HORIZONS)}")
    return {h: float(values.get(h, default)) for h in HORIZONS}


@dataclass(frozen=True)
class SignalConfig:
    """Per-horizon score and confidence thresholds and the vol floor of the score.

    A horizon left out of a mapping takes the default threshold (score 0, confidence 0.5).
    """

    score_threshold: Mapping[str, float] = field(default_factory=dict)
    confidence_threshold: Mapping[str, float] = field(default_factory=dict)
    eps: float = VOL_EPS

    def __post_init__(self) -> None:
        score = _per_horizon(self.score_threshold, DEFAULT_SCORE_THRESHOLD, "score_threshold")
        conf = _per_horizon(self.confidence_threshold, DEFAULT_CONFIDENCE_THRESHOLD, "confidence_threshold")
        bad = [f"score_threshold[{h}]={v}" for h, v in score.items() if not (math.isfinite(v) and v >= 0)]
        bad += [f"confidence_threshold[{h}]={v}" for h, v in conf.items() if not 0 <= v < 1]
        if not (math.isfinite(self.eps) and self.eps > 0):
            bad.append(f"eps={self.eps}")
        if bad:
            raise ValueError(f"SignalConfig: out of range {bad} (score >= 0, confidence in [0, 1), eps > 0)")
        object.__setattr__(self, "score_threshold", score)
        object.__setattr__(self, "confidence_threshold", conf)
        object.__setattr__(self, "eps", float(self.eps))

    def thresholds(self, horizon: str) -> tuple[float, float]:
        """Return ``(score_threshold, confidence_threshold)`` of ``horizon``."""
        if horizon not in self.score_threshold:
            raise ValueError(f"SignalConfig: unknown horizon {horizon!r}; known: {list(HORIZONS)}")
        return self.score_threshold[horizon], self.confidence_threshold[horizon]

    def as_params(self) -> dict[str, float]:
        """Return the flat params ``signal.score_threshold.<h>``, ``signal.confidence_threshold.<h>`` and
        ``signal.eps`` (the MLflow params of a run)."""
        out = {f"{PARAM_PREFIX}score_threshold.{h}": v for h, v in self.score_threshold.items()}
        out |= {f"{PARAM_PREFIX}confidence_threshold.{h}": v for h, v in self.confidence_threshold.items()}
        return out | {f"{PARAM_PREFIX}eps": self.eps}

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> SignalConfig:
        """Return the config of :meth:`as_params` output (values may be strings, as MLflow returns them).

        Keys outside ``signal.`` are ignored (a whole run's params may be passed); an unknown ``signal.`` key raises.
        """
        score, conf, eps = {}, {}, VOL_EPS
        for key, value in params.items():
            if not key.startswith(PARAM_PREFIX) or key == f"{PARAM_PREFIX}config_hash":
                continue
            name, _, horizon = key.removeprefix(PARAM_PREFIX).partition(".")
            if name == "score_threshold" and horizon:
                score[horizon] = float(value)
            elif name == "confidence_threshold" and horizon:
                conf[horizon] = float(value)
            elif name == "eps" and not horizon:
                eps = float(value)
            else:
                raise ValueError(f"SignalConfig.from_params: unknown parameter {key!r}")
        return cls(score, conf, eps)

    def config_hash(self) -> str:
        """Return the first 12 hex digits of the sha256 of :meth:`as_params` as sorted JSON."""
        return hashlib.sha256(json.dumps(self.as_params(), sort_keys=True).encode()).hexdigest()[:12]

    def record(self) -> dict[str, float | str]:
        """What a run, a report or a registered version records: the params and ``signal.config_hash``."""
        return {**self.as_params(), f"{PARAM_PREFIX}config_hash": self.config_hash()}

    def __hash__(self) -> int:
        return hash(self.config_hash())

    def describe(self) -> str:
        """Return the rule and its thresholds in one line of Markdown (for reports)."""
        per_h = "; ".join(
            f"{h}: score > {self.score_threshold[h]:g} and confidence > {self.confidence_threshold[h]:g}"
            for h in HORIZONS
        )
        return (
            f"position = sign(expected_return) when edge = |expected_return| - cost > 0 and "
            f"score = edge / max(vol_forecast, {self.eps:g}) and confidence clear the thresholds ({per_h}); "
            f"signal config `{self.config_hash()}`"
        )


def _array(x: ArrayLike) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def edge(expected_return: ArrayLike, cost: ArrayLike) -> np.ndarray:
    """Return ``|expected_return| - cost``."""
    return np.abs(_array(expected_return)) - _array(cost)


def score(expected_return: ArrayLike, cost: ArrayLike, vol: ArrayLike, eps: float = VOL_EPS) -> np.ndarray:
    """Return ``edge / max(vol, eps)`` (NaN where vol is NaN)."""
    return edge(expected_return, cost) / np.maximum(_array(vol), eps)  # np.maximum keeps NaN


def signal(
    expected_return: ArrayLike,
    cost: ArrayLike,
    vol: ArrayLike,
    confidence: ArrayLike,
    horizon: str,
    config: SignalConfig | None = None,
) -> np.ndarray:
    """Return the position (-1, 0 or +1, as floats) of each prediction of ``horizon``; NaN inputs give 0."""
    config = config or SignalConfig()
    min_score, min_conf = config.thresholds(horizon)
    er, c, v, conf = (_array(a) for a in (expected_return, cost, vol, confidence))
    er, c, v, conf = np.broadcast_arrays(er, c, v, conf)
    finite = np.isfinite(er) & np.isfinite(c) & np.isfinite(v) & np.isfinite(conf)
    with np.errstate(invalid="ignore", divide="ignore"):
        e = edge(er, c)
        take = finite & (e > 0) & (score(er, c, v, config.eps) > min_score) & (conf > min_conf)
    return np.where(take, np.sign(er), 0.0)


def _col(x: str | pl.Expr) -> pl.Expr:
    return pl.col(x) if isinstance(x, str) else x


def _threshold(values: dict[str, float], horizon: str | None) -> pl.Expr:
    if horizon is not None:
        return pl.lit(values[horizon], dtype=pl.Float64)
    return pl.col("horizon").replace_strict(values, default=None, return_dtype=pl.Float64)


def score_expr(
    config: SignalConfig | None = None,
    expected_return: str | pl.Expr = "expected_return",
    cost: str | pl.Expr = "cost",
    vol: str | pl.Expr = "vol_forecast",
) -> pl.Expr:
    """Return :func:`score` as a polars expression (null where an input is null, NaN where vol is NaN)."""
    eps = (config or SignalConfig()).eps
    v = _col(vol)
    floor = pl.when(v < eps).then(pl.lit(eps)).otherwise(v)  # NaN is above every number in polars: kept
    return ((_col(expected_return).abs() - _col(cost)) / floor).cast(pl.Float64)


def signal_expr(
    config: SignalConfig | None = None,
    horizon: str | None = None,
    expected_return: str | pl.Expr = "expected_return",
    cost: str | pl.Expr = "cost",
    vol: str | pl.Expr = "vol_forecast",
    confidence: str | pl.Expr = "signal_confidence",
) -> pl.Expr:
    """Return :func:`signal` as a polars expression: the thresholds of ``horizon``, or of each row's ``horizon``
    column when None (a horizon the config does not know gives flat)."""
    config = config or SignalConfig()
    if horizon is not None:
        config.thresholds(horizon)  # an unknown horizon is an error, not a flat signal
    er, c, v, conf = (_col(x) for x in (expected_return, cost, vol, confidence))
    finite = er.is_finite() & c.is_finite() & v.is_finite() & conf.is_finite()  # polars orders NaN above all
    min_score = _threshold(dict(config.score_threshold), horizon)
    min_conf = _threshold(dict(config.confidence_threshold), horizon)
    clears = ((er.abs() - c) > 0) & (score_expr(config, er, c, v) > min_score) & (conf > min_conf)
    take = (finite & clears).fill_null(False)
    return pl.when(take).then(er.sign()).otherwise(0.0).cast(pl.Float64)
