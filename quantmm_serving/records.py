"""Frames as JSON records: NaN and infinities become null (JSON has no NaN; a figure that is not a number is none)."""

from __future__ import annotations

import math
from typing import Any

import polars as pl


def records(frame: pl.DataFrame) -> list[dict[str, Any]]:
    """``frame.to_dicts()`` with every non-finite float as None."""
    return [{k: clean(v) for k, v in row.items()} for row in frame.to_dicts()]


def clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list):
        return [clean(v) for v in value]
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    return value
