"""Temporal Fusion Transformer backbone (Lim et al. 2021), simplified to one encoder over the past window.

Kept: per-variable embeddings and a variable selection network (a gated residual network, GRN, per variable and
softmax selection weights from a GRN over all of them, conditioned on the static symbol context); an LSTM encoder
whose initial state comes from the static context; a gated (GLU) skip with layer norm around it; static
enrichment (a GRN with the static context); one interpretable multi-head attention layer (per-head queries and
keys, one shared value projection, heads averaged) over the time steps, with grid steps that have no row masked
out; a gated skip, a position-wise GRN and a final gated skip. The state of the last step (the row itself) is
the output. Dropped: the decoder / future known inputs and the quantile outputs (the heads are shared).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
from torch import nn
from torch.nn import functional

from quantmm_assets.models.torch_base import TORCH_DEFAULTS, TorchBackbone


class GatedSkip(nn.Module):
    """``LayerNorm(skip + GLU(dropout(x)))``."""

    def __init__(self, d: int, dropout: float) -> None:
        super().__init__()
        self.glu, self.norm, self.dropout = nn.Linear(d, 2 * d), nn.LayerNorm(d), nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.norm(skip + functional.glu(self.glu(self.dropout(x)), dim=-1))


class GRN(nn.Module):
    """Gated residual network ``d_in -> d_out`` with an optional context vector."""

    def __init__(self, d_in: int, d: int, d_out: int, dropout: float, d_context: int = 0) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(d_in, d), nn.Linear(d, d_out)
        self.context = nn.Linear(d_context, d, bias=False) if d_context else None
        self.skip = nn.Linear(d_in, d_out) if d_in != d_out else nn.Identity()
        self.gate = GatedSkip(d_out, dropout)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        a = self.fc1(x)
        if self.context is not None and context is not None:
            a = a + self.context(context)
        return self.gate(self.fc2(functional.elu(a)), self.skip(x))


class VariableGRNs(nn.Module):
    """``n`` independent GRNs ``d -> d`` applied at once to (..., n, d) (one weight set per variable)."""

    def __init__(self, n: int, d: int, dropout: float) -> None:
        super().__init__()
        self.w1, self.b1 = nn.Parameter(torch.randn(n, d, d) / math.sqrt(d)), nn.Parameter(torch.zeros(n, d))
        self.w2, self.b2 = nn.Parameter(torch.randn(n, d, d) / math.sqrt(d)), nn.Parameter(torch.zeros(n, d))
        self.wg, self.bg = nn.Parameter(torch.randn(n, d, 2 * d) / math.sqrt(d)), nn.Parameter(torch.zeros(n, 2 * d))
        self.norm, self.dropout = nn.LayerNorm(d), nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = functional.elu(torch.einsum("...nd,nde->...ne", x, self.w1) + self.b1)
        a = self.dropout(torch.einsum("...nd,nde->...ne", a, self.w2) + self.b2)
        return self.norm(x + functional.glu(torch.einsum("...nd,nde->...ne", a, self.wg) + self.bg, dim=-1))


class InterpretableAttention(nn.Module):
    """Multi-head attention with one value projection shared by the heads, heads averaged (TFT's variant)."""

    def __init__(self, d: int, n_heads: int, dropout: float) -> None:
        super().__init__()
        self.n_heads, self.d_head = n_heads, max(1, d // n_heads)
        self.q, self.k = nn.Linear(d, n_heads * self.d_head), nn.Linear(d, n_heads * self.d_head)
        self.v, self.out, self.dropout = nn.Linear(d, self.d_head), nn.Linear(self.d_head, d), nn.Dropout(dropout)

    def forward(self, query: torch.Tensor, keys: torch.Tensor, key_present: torch.Tensor) -> torch.Tensor:
        b, lq, lk = query.shape[0], query.shape[1], keys.shape[1]
        q = self.q(query).view(b, lq, self.n_heads, self.d_head).transpose(1, 2)
        k = self.k(keys).view(b, lk, self.n_heads, self.d_head).transpose(1, 2)
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.d_head)  # (B, H, Lq, Lk)
        scores = scores.masked_fill(~key_present[:, None, None, :], float("-inf"))
        weights = self.dropout(torch.softmax(scores, dim=-1))
        return self.out((weights @ self.v(keys)[:, None]).mean(dim=1))


class TFTNet(nn.Module):
    """Window (B, L, C) + static (B, S) -> (B, hidden); the last channel of the window is the ``present`` flag."""

    def __init__(self, channels: int, static_dim: int, d: int, n_heads: int, dropout: float) -> None:
        super().__init__()
        self.var_weight, self.var_bias = nn.Parameter(torch.randn(channels, d)), nn.Parameter(torch.zeros(channels, d))
        self.static = GRN(static_dim, d, d, dropout)
        self.variable_grns = VariableGRNs(channels, d, dropout)
        self.selection = GRN(channels * d, d, channels, dropout, d_context=d)
        self.h0, self.c0 = nn.Linear(d, d), nn.Linear(d, d)
        self.lstm = nn.LSTM(d, d, batch_first=True)
        self.lstm_skip = GatedSkip(d, dropout)
        self.enrich = GRN(d, d, d, dropout, d_context=d)
        self.attention = InterpretableAttention(d, n_heads, dropout)
        self.attention_skip = GatedSkip(d, dropout)
        self.positionwise = GRN(d, d, d, dropout)
        self.final_skip = GatedSkip(d, dropout)

    def forward(self, window: torch.Tensor, static: torch.Tensor) -> torch.Tensor:
        b, length, _ = window.shape
        context = self.static(static)  # (B, d)
        embedded = window[..., None] * self.var_weight + self.var_bias  # (B, L, C, d)
        steps = context[:, None, :].expand(-1, length, -1)
        weights = torch.softmax(self.selection(embedded.flatten(2), steps), dim=-1)  # (B, L, C)
        selected = (self.variable_grns(embedded) * weights[..., None]).sum(dim=2)  # (B, L, d)
        state = (self.h0(context)[None].contiguous(), self.c0(context)[None].contiguous())
        encoded, _ = self.lstm(selected, state)
        temporal = self.lstm_skip(encoded, selected)
        enriched = self.enrich(temporal, steps)
        last = enriched[:, -1:, :]  # only the last step's output is used: attend from it alone
        attended = self.attention_skip(self.attention(last, enriched, window[..., -1] > 0), last)
        return self.final_skip(self.positionwise(attended), temporal[:, -1:, :])[:, 0, :]


class TFTBackbone(TorchBackbone):
    """TFT: width ``hidden_size`` throughout, ``n_heads`` interpretable attention heads."""

    name: ClassVar[str] = "tft"
    defaults: ClassVar[dict[str, Any]] = {**TORCH_DEFAULTS, "hidden_size": 32, "n_heads": 4, "dropout": 0.1}

    def _check_params(self) -> None:
        super()._check_params()
        if int(self.n_heads) < 1 or not 0 <= float(self.dropout) < 1:
            raise ValueError(f"tft: needs n_heads >= 1 and 0 <= dropout < 1, got {self.get_params()}")

    def _encoder(self, n_channels: int, static_dim: int) -> nn.Module:
        return TFTNet(n_channels, static_dim, int(self.hidden_size), int(self.n_heads), float(self.dropout))
