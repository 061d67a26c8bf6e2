"""The backbone registry: name -> class (the contract test is parametrized over it)."""

from __future__ import annotations

from quantmm_assets.models.itransformer import ITransformerBackbone
from quantmm_assets.models.lightgbm_backbone import LightGBMBackbone
from quantmm_assets.models.patchtst import PatchTSTBackbone
from quantmm_assets.models.protocol import Backbone
from quantmm_assets.models.ridge import RidgeBackbone
from quantmm_assets.models.tft import TFTBackbone
from quantmm_assets.models.tsmixer import TSMixerBackbone

BACKBONES: dict[str, type[Backbone]] = {
    "ridge": RidgeBackbone,
    "lightgbm": LightGBMBackbone,
    "tsmixer": TSMixerBackbone,
    "itransformer": ITransformerBackbone,
    "patchtst": PatchTSTBackbone,
    "tft": TFTBackbone,
}
