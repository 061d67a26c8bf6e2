"""The fusion network of the torch backbones and its Lightning training module (DESIGN section 3).

:class:`FusionNet`: an encoder + symbol embedding give ``h``; per output ``y_base`` / ``log rv`` heads, and the text
``delta`` / ``gate`` heads (the text path, ``TEXT_MODULES``). :func:`lit_fusion`'s module trains both in one
optimization with the base's gradient stopped at the text path's loss (so the base trains identically with and
without text), and keeps each part's best state (see :mod:`quantmm_assets.models.torch_base` for the protocol).
:func:`trust` is the validation-fitted text trust, :func:`mean_curve` averages per-network curves.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from quantmm_assets.models.torch_runtime import lightning, masked_mse


class FusionNet(nn.Module):
    """Encoder + symbol embedding -> ``h``; per-output ``y_base`` / ``log rv`` heads and the text delta / gate."""

    def __init__(self, encoder: nn.Module, hidden: int, n_out: int, n_symbols: int, symbol_dim: int,
                 text_dim: int, n_gate_extra: int, text_hidden: int) -> None:  # fmt: skip
        super().__init__()
        self.encoder, self.text_dim = encoder, text_dim
        self.symbol = nn.Embedding(n_symbols + 1, symbol_dim)
        self.ret_head, self.vol_head = nn.Linear(hidden, n_out), nn.Linear(hidden, n_out)
        if text_dim:
            self.delta = nn.Sequential(nn.Linear(text_dim, text_hidden), nn.GELU(), nn.Linear(text_hidden, n_out))
            self.gate = nn.Sequential(
                nn.Linear(hidden + n_gate_extra, text_hidden), nn.GELU(), nn.Linear(text_hidden, n_out)
            )
            nn.init.zeros_(self.delta[-1].weight)  # the text contribution starts at exactly 0
            nn.init.zeros_(self.delta[-1].bias)

    def forward(self, batch: dict[str, torch.Tensor], text_on: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Return ``y_base``, ``log rv``, ``gate`` and ``delta`` (B, n_out); gate and delta are 0 where not text_on."""
        h = self.encoder(batch["window"], self.symbol(batch["symbol"]))
        y, log_rv = self.ret_head(h), self.vol_head(h)
        if not self.text_dim:
            return y, log_rv, torch.zeros_like(y), torch.zeros_like(y)
        on = text_on[:, None].to(y.dtype)
        delta = self.delta(batch["text"]) * on
        gate = torch.sigmoid(self.gate(torch.cat([h.detach(), batch["extra"]], dim=1))) * on
        return y, log_rv, gate, delta


TEXT_MODULES = ("delta.", "gate.")  # FusionNet's text path; every other parameter is the base


def part_state(net: FusionNet, text: bool) -> dict[str, torch.Tensor]:
    """Return a detached CPU copy of the text path's (``text``) or the base's parameters and buffers."""
    return {k: v.detach().cpu().clone() for k, v in net.state_dict().items() if k.startswith(TEXT_MODULES) == text}


@functools.cache
def lit_fusion() -> type:
    """Return the LightningModule class (defined on first use, with the lazy Lightning import)."""

    class LitFusion(lightning().LightningModule):
        """Training wrapper: the two-part loss, the optimizer, the periodic validation and the best-state snapshots.

        ``model`` is the :class:`~quantmm_assets.models.torch_base.TorchBackbone` whose parameters it reads. With
        ``evaluate`` the base keeps its state at the lowest validation loss and the text path at the largest
        validation gain over the base of the same step; with ``snap_steps`` (``(base, text)``, the refit) each part
        keeps its state at its given step.
        """

        def __init__(self, net: FusionNet, model: Any, steps: int,
                     evaluate: Callable[[FusionNet], tuple[float, float, float]] | None,
                     snap_steps: tuple[int, int] | None = None,
                     zero_losses: tuple[float, float] = (float("nan"), float("nan"))):  # fmt: skip
            super().__init__()
            self.net, self.steps, self.evaluate, self.snap_steps = net, steps, evaluate, snap_steps
            self.lr, self.wd = float(model.learning_rate), float(model.weight_decay)
            self.text_l2, self.vol_weight = float(model.text_l2), float(model.vol_weight)
            self.dropout, self.every = float(model.modality_dropout), int(model.eval_every)
            # modality dropout draws from its own generator: the base's random stream (its dropout layers) is the
            # same with and without a text path
            self.text_rng = torch.Generator().manual_seed(int(model.random_seed))
            self.val_curve: list[tuple[int, float]] = []
            self.train_curve: list[tuple[int, float]] = []
            self.text_gain_curve: list[tuple[int, float]] = []
            self.ret_curve: list[tuple[int, float]] = []  # the return head's part of the base's validation loss
            self.zero_loss, self.zero_ret_loss = zero_losses  # the zero forecast's total and return validation loss
            self.best: dict[str, tuple[float, int, dict[str, torch.Tensor] | None]] = {
                "base": (float("inf"), steps, None),
                "text": (float("inf"), steps, None),
            }
            self._losses: list[float] = []

        def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
            keep = torch.rand(len(batch["has"]), generator=self.text_rng) >= self.dropout
            text_on = batch["has"] & keep.to(batch["has"].device)
            y, log_rv, gate, delta = self.net(batch, text_on)
            # y_base learns from price alone; the text path fits the residual of the (stopped-gradient) base
            loss = masked_mse(y, batch["ret"]) + self.vol_weight * masked_mse(log_rv, batch["log_rv"])
            if bool(text_on.any()):
                contrib = (gate * delta)[text_on]
                fused = y.detach()[text_on] + contrib
                loss = loss + masked_mse(fused, batch["ret"][text_on]) + self.text_l2 * (contrib**2).mean()
            self._losses.append(float(loss.detach()))
            return loss

        def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
            step = int(self.global_step)
            for part, at in zip(("base", "text"), self.snap_steps or (), strict=False):
                if step == at:
                    self.best[part] = (0.0, step, part_state(self.net, part == "text"))
            if step % self.every and step != self.steps:
                return
            self.train_curve.append((step, float(np.mean(self._losses))))
            self._losses = []
            if self.evaluate is None:
                return
            self.net.eval()
            loss, ret_loss, gain = self.evaluate(self.net)
            self.net.train()
            self.val_curve.append((step, loss))
            self.ret_curve.append((step, ret_loss))
            self.text_gain_curve.append((step, gain))
            for part, value in (("base", loss), ("text", gain)):
                if value < self.best[part][0]:
                    self.best[part] = (value, step, part_state(self.net, part == "text"))

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.AdamW(self.net.parameters(), lr=self.lr, weight_decay=self.wd, foreach=True)

    return LitFusion


def trust(resid: np.ndarray, contrib: np.ndarray, min_t: float) -> float:
    """Return the least-squares weight in [0, 1] of ``contrib`` on the validation residual ``resid``, or 0 unless
    their correlation is positive with a t-statistic of at least ``min_t`` (text that does not help out of sample)."""
    ok = np.isfinite(resid)
    r, c = resid[ok], contrib[ok]
    if len(r) < 10 or not c.std() > 0 or not r.std() > 0:
        return 0.0
    corr = float(np.corrcoef(r, c)[0, 1])
    if corr * np.sqrt(len(r) - 2) / np.sqrt(max(1 - corr**2, 1e-12)) < min_t:
        return 0.0
    return float(np.clip((r @ c) / (c @ c), 0.0, 1.0))


def mean_curve(curves: list[list[tuple[int, float]]]) -> list[tuple[int, float]]:
    """Average curves recorded at the same steps (one per network) into one."""
    if not curves or not curves[0]:
        return []
    return [(step, float(np.mean([c[i][1] for c in curves]))) for i, (step, _) in enumerate(curves[0])]
