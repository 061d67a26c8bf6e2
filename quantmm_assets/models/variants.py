"""Ablation variants of the model inputs (DESIGN section 3): ``full / no_text / no_macro / event_window``.

A variant is the same backbone *retrained* on other inputs, never the full model with inputs masked at inference:

- ``full``: every feature, text latents through the fusion stage;
- ``no_text``: no text at all: the text-bucket, coverage and count columns are dropped and the fusion is off;
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


def variant_data(data: ModelData, variant: str) -> tuple[ModelData, bool]:
    """Return the inputs of ``variant`` and whether the text stage is used."""
    if variant == "full":
        return data, True
    if variant == "no_text":
        plain = _drop(data, set(TEXT_FLAT_COLUMNS))
        # a one-wide empty latent pair: no copy of the full-width text block
        return replace(plain, text=np.zeros((plain.n, 2), np.float32), text_mask=np.zeros(plain.n, bool)), False
    if variant == "no_macro":
        return _drop(data, {n for n in data.feature_names if n.startswith("macro_")}), True
    if variant == "event_window":
        inside = event_rows(data)
        x = data.x.copy()
        text_cols = [j for j, n in enumerate(data.feature_names) if n in TEXT_FLAT_COLUMNS]
        x[np.ix_(~inside, text_cols)] = np.nan
        text = np.where(inside[:, None], data.text, 0.0).astype(np.float32)
        return replace(data, x=x, text=text, text_mask=data.text_mask & inside), True
    raise ValueError(f"unknown variant {variant!r}; known: {VARIANTS}")
