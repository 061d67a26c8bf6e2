"""PatchTST backbone (Nie et al. 2023): channel-independent patches of the window through a transformer.

Every channel's series is cut into patches of ``patch_len`` steps every ``stride`` steps (front-padded with zeros
when the window is shorter than one patch); each patch is embedded linearly to ``d_model`` with a learned position
embedding, and one transformer encoder, shared by all channels, attends across the patches of each channel on its
own. Each channel's patch states are flattened and projected to ``d_model`` (PatchTST's flatten head), then the
channels are pooled by a learned linear map over all of them (a mean would weigh every variable alike) to
``hidden_size``, to which the projected symbol embedding is added.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn
from torch.nn import functional

from quantmm_assets.models.torch_base import TORCH_DEFAULTS, TorchBackbone


class PatchTSTNet(nn.Module):
    """Window (B, L, C) + static (B, S) -> (B, hidden)."""

    def __init__(self, length: int, channels: int, static_dim: int, hidden: int, d_model: int, patch_len: int,
                 stride: int, n_heads: int, n_layers: int, dropout: float) -> None:  # fmt: skip
        super().__init__()
        self.patch_len, self.stride = patch_len, stride
        self.padded = max(length, patch_len)
        n_patches = (self.padded - patch_len) // stride + 1
        self.embed = nn.Linear(patch_len, d_model)
        self.position = nn.Parameter(torch.randn(n_patches, d_model) * 0.02)
        layer = nn.TransformerEncoderLayer(
            d_model, n_heads, dim_feedforward=2 * d_model, dropout=dropout, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.head = nn.Linear(n_patches * d_model, d_model)
        self.pool = nn.Linear(channels * d_model, hidden)
        self.static = nn.Linear(static_dim, hidden)

    def forward(self, window: torch.Tensor, static: torch.Tensor) -> torch.Tensor:
        b, length, c = window.shape
        series = window.transpose(1, 2).reshape(b * c, length)
        series = functional.pad(series, (self.padded - length, 0))
        # keep the newest steps in the last patch: patches are cut from the end of the window backwards
        start = (self.padded - self.patch_len) % self.stride
        patches = series[:, start:].unfold(1, self.patch_len, self.stride)  # (B*C, P, patch_len)
        states = self.encoder(self.embed(patches) + self.position)
        per_channel = self.head(states.flatten(1)).reshape(b, -1)  # (B, C * d_model)
        return self.pool(per_channel) + self.static(static)


class PatchTSTBackbone(TorchBackbone):
    """PatchTST: patches of ``patch_len`` every ``stride`` steps, ``n_layers`` encoder layers of width ``d_model``."""

    name: ClassVar[str] = "patchtst"
    defaults: ClassVar[dict[str, Any]] = {
        **TORCH_DEFAULTS,
        "patch_len": 8,
        "stride": 4,
        "d_model": 32,
        "n_heads": 4,
        "n_layers": 2,
        "dropout": 0.1,
    }

    def _check_params(self) -> None:
        super()._check_params()
        ok = int(self.patch_len) >= 1 and int(self.stride) >= 1 and int(self.n_layers) >= 1 and int(self.n_heads) >= 1
        if not ok or int(self.d_model) % int(self.n_heads):
            raise ValueError(
                f"patchtst: needs patch_len, stride, n_layers >= 1 and d_model divisible by n_heads, "
                f"got {self.get_params()}"
            )

    def _encoder(self, n_channels: int, static_dim: int) -> nn.Module:
        return PatchTSTNet(int(self.input_size), n_channels, static_dim, int(self.hidden_size), int(self.d_model),
                           int(self.patch_len), int(self.stride), int(self.n_heads), int(self.n_layers),
                           float(self.dropout))  # fmt: skip
