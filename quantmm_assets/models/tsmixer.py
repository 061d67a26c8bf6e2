"""TSMixer backbone (Chen et al. 2023): time-mixing and feature-mixing MLP blocks over the window.

Each block mixes along time (an MLP over the ``L`` steps, shared by every channel) and then along features (an
MLP over the channels, shared by every step), each with a residual and a layer norm. The symbol embedding is
broadcast over time as extra channels (as TSMixer's extended variant does with static covariates); the mixed
window is flattened and projected to ``hidden_size``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from quantmm_assets.models.torch_base import TORCH_DEFAULTS, TorchBackbone


class MixerBlock(nn.Module):
    """One time-mixing + feature-mixing block on (B, L, C)."""

    def __init__(self, length: int, channels: int, ff_dim: int, dropout: float) -> None:
        super().__init__()
        self.time_norm, self.feature_norm = nn.LayerNorm(channels), nn.LayerNorm(channels)
        self.time_mlp = nn.Sequential(nn.Linear(length, length), nn.ReLU(), nn.Dropout(dropout))
        self.feature_mlp = nn.Sequential(
            nn.Linear(channels, ff_dim),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(ff_dim, channels),
            nn.Dropout(dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.time_mlp(self.time_norm(x).transpose(1, 2)).transpose(1, 2)
        return x + self.feature_mlp(self.feature_norm(x))


class TSMixerNet(nn.Module):
    """Window (B, L, C) + static (B, S) -> (B, hidden)."""

    def __init__(self, length: int, channels: int, static_dim: int, hidden: int, n_blocks: int, ff_dim: int,
                 dropout: float) -> None:  # fmt: skip
        super().__init__()
        width = channels + static_dim
        self.blocks = nn.Sequential(*[MixerBlock(length, width, ff_dim, dropout) for _ in range(n_blocks)])
        self.out = nn.Linear(length * width, hidden)

    def forward(self, window: torch.Tensor, static: torch.Tensor) -> torch.Tensor:
        steps = static[:, None, :].expand(-1, window.shape[1], -1)
        mixed = self.blocks(torch.cat([window, steps], dim=-1))
        return self.out(mixed.flatten(1))


class TSMixerBackbone(TorchBackbone):
    """TSMixer: ``n_blocks`` mixer blocks with feature-MLP width ``ff_dim``."""

    name: ClassVar[str] = "tsmixer"
    defaults: ClassVar[dict[str, Any]] = {**TORCH_DEFAULTS, "n_blocks": 2, "ff_dim": 64, "dropout": 0.1}

    def _check_params(self) -> None:
        super()._check_params()
        if int(self.n_blocks) < 1 or int(self.ff_dim) < 1 or not 0 <= float(self.dropout) < 1:
            raise ValueError(f"tsmixer: needs n_blocks >= 1, ff_dim >= 1, 0 <= dropout < 1, got {self.get_params()}")

    def _encoder(self, n_channels: int, static_dim: int) -> nn.Module:
        return TSMixerNet(int(self.input_size), n_channels, static_dim, int(self.hidden_size), int(self.n_blocks),
                          int(self.ff_dim), float(self.dropout))  # fmt: skip
