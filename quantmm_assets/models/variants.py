"""Ablation variants of the model inputs (DESIGN section 3): ``full / no_text / no_macro / event_window``.

A variant is the same backbone *retrained* on other inputs, never the full model with inputs masked at inference:

- ``full``: every feature, text latents through the fusion stage;
- ``no_text``: no text at all: the text-bucket, coverage and count columns and the latents are dropped, so the
  fusion is off (a backbone reads whether text is on from the data: ``ModelData.has_text``);
- ``no_macro``: the ``macro_*`` columns are dropped;
- ``event_window``: text is kept only on rows inside an event window (a symbol burst of
  ``sym_burst_z_1d >= EVENT_BURST_Z`` or any event words in the last hour); elsewhere the latents are absent and the
  text columns null. It asks whether text earns its place only around events.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from quantmm_assets.models.data import TEXT_FLAT_COLUMNS, ModelData

VARIANTS = ("full", "no_text", "no_macro", "event_window")
EVENT_BURST_Z = 2.0


def _drop(data: ModelData, drop: set[str]) -> ModelData:
    keep = [j for j, n in enumerate(data.feature_names) if n not in drop]
    return replace(data, x=data.x[:, keep], feature_names=tuple(data.feature_names[j] for j in keep))


def event_rows(data: ModelData) -> np.ndarray:
    """Return the mask of rows inside an event window (all False when the event columns are absent)."""
    names = data.feature_names
    out = np.zeros(data.n, bool)
    if "sym_burst_z_1d" in names:
        out |= np.nan_to_num(data.x[:, names.index("sym_burst_z_1d")], nan=-np.inf) >= EVENT_BURST_Z
    if "sym_event_density_1h" in names:
        out |= np.nan_to_num(data.x[:, names.index("sym_event_density_1h")], nan=0.0) > 0
    return out


def without_latents(data: ModelData) -> ModelData:
    """Return ``data`` with no text latent on any row (a one-wide empty pair, no copy of the full-width block);
    the flat columns are kept. A backbone fitted on it has no text stage (``has_text`` is False)."""
    return replace(data, text=np.zeros((data.n, 2), np.float32), text_mask=np.zeros(data.n, bool))


def variant_data(data: ModelData, variant: str) -> ModelData:
    """Return the inputs of ``variant`` (the text stage follows from them: ``ModelData.has_text``)."""
    if variant == "full":
        return data
    if variant == "no_text":
        return without_latents(_drop(data, set(TEXT_FLAT_COLUMNS)))
    if variant == "no_macro":
        return _drop(data, {n for n in data.feature_names if n.startswith("macro_")})
    if variant == "event_window":
        inside = event_rows(data)
        x = data.x.copy()
        text_cols = [j for j, n in enumerate(data.feature_names) if n in TEXT_FLAT_COLUMNS]
        x[np.ix_(~inside, text_cols)] = np.nan
        text = np.where(inside[:, None], data.text, 0.0).astype(np.float32)
        return replace(data, x=x, text=text, text_mask=data.text_mask & inside)
    raise ValueError(f"unknown variant {variant!r}; known: {VARIANTS}")
