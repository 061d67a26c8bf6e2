"""iTransformer backbone (Liu et al. 2024): every variable's whole window is one token.

Each channel's ``L`` values are embedded by one shared linear map to ``hidden_size``, plus a learned per-variable
embedding (the encoder is permutation-equivariant, so without it the pooled state could not weigh variables
differently); the symbol embedding is one more token. A transformer encoder attends across the variable tokens;
the tokens are pooled by a learned linear map over all of them (flattened) to ``hidden_size``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from quantmm_assets.models.torch_base import TORCH_DEFAULTS, TorchBackbone


class ITransformerNet(nn.Module):
    """Window (B, L, C) + static (B, S) -> (B, hidden)."""

    def __init__(self, length: int, channels: int, static_dim: int, hidden: int, n_heads: int, n_layers: int,
                 dropout: float) -> None:  # fmt: skip
        super().__init__()
        self.embed = nn.Linear(length, hidden)
        self.variable = nn.Parameter(torch.randn(channels, hidden) * 0.02)
        self.static = nn.Linear(static_dim, hidden)
        layer = nn.TransformerEncoderLayer(
            hidden, n_heads, dim_feedforward=2 * hidden, dropout=dropout, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(hidden)
        self.pool = nn.Linear((channels + 1) * hidden, hidden)

    def forward(self, window: torch.Tensor, static: torch.Tensor) -> torch.Tensor:
        tokens = self.embed(window.transpose(1, 2)) + self.variable  # (B, C, d)
        tokens = torch.cat([tokens, self.static(static)[:, None, :]], dim=1)
        return self.pool(self.norm(self.encoder(tokens)).flatten(1))


class ITransformerBackbone(TorchBackbone):
    """iTransformer: ``n_layers`` encoder layers of ``n_heads`` heads over variable tokens of width hidden_size."""

    name: ClassVar[str] = "itransformer"
    defaults: ClassVar[dict[str, Any]] = {**TORCH_DEFAULTS, "n_heads": 4, "n_layers": 2, "dropout": 0.1}

    def _check_params(self) -> None:
        super()._check_params()
        if int(self.n_layers) < 1 or int(self.n_heads) < 1 or int(self.hidden_size) % int(self.n_heads):
            raise ValueError(
                f"itransformer: needs n_layers >= 1 and hidden_size divisible by n_heads, got {self.get_params()}"
            )

    def _encoder(self, n_channels: int, static_dim: int) -> nn.Module:
        return ITransformerNet(int(self.input_size), n_channels, static_dim, int(self.hidden_size), int(self.n_heads),
                               int(self.n_layers), float(self.dropout))  # fmt: skip
