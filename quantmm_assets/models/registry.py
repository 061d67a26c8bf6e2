"""The backbone registry: name -> class (the contract test is parametrized over it)."""

from __future__ import annotations

from quantmm_assets.models.base import Backbone
from quantmm_assets.models.lightgbm_backbone import LightGBMBackbone
from quantmm_assets.models.ridge import RidgeBackbone

BACKBONES: dict[str, type[Backbone]] = {"ridge": RidgeBackbone, "lightgbm": LightGBMBackbone}
