"""PyTorch Lightning backbones on windows of the feature matrix, with jointly trained residual-gate text fusion.

One network maps a window of the base (non-text) flat features (:mod:`quantmm_assets.models.torch_windows`) and
the symbol embedding to a hidden state ``h``; per horizon ``y_base = ret_head(h)`` and ``log rv = vol_head(h)``, so
``y_base`` never sees text (DESIGN section 3). The text of the *current row* (its latents projected to ``text_dim``
dims by :func:`~quantmm_assets.models.fusion.fit_projection`, and its text flat columns ``TEXT_FLAT_COLUMNS``,
standardized on train rows) feeds a small ``delta`` head, and ``gate = sigmoid(net([h, post / comment present,
log1p counts]))`` (``h`` detached, so the base representation is not shaped by the gate);
``expected_return = y_base + gate * delta``. Both are 0 where the row has no text, and, with probability
``modality_dropout`` per training sample, where it has (drawn from a generator of its own).

The base and the text path are trained together, in one optimization with one loss of two parts:
``MSE(y_base, ret) + vol_weight * MSE(log rv)`` for the base (``ret`` standardized per horizon by its train std,
so horizons weigh equally; ``log rv`` standardized), and, over the rows whose text is on,
``MSE(stop_grad(y_base) + contribution, ret) + text_l2 * mean(contribution^2)`` for the text path. The stopped
gradient makes the text path fit the base's residual (the torch analogue of the flat second stage) and keeps the
base's training identical with and without text: the base's initialization, random stream, batches and gradients
are the same, so the ``no_text`` ablation of a torch backbone has bit-identical ``y_base`` and ``full - no_text``
measures the text alone (a jointly shaped base made that difference mostly seed noise).

Fit (DESIGN section 3): on the newest inner split, train on its train rows and evaluate every ``eval_every`` steps
the base's validation loss (``val_curve_``; ``improved_`` when its best beats the zero forecast's loss
``val_zero_loss_``; ``val_ret_skill_`` is the return head's alone: 1 - its best validation MSE / the zero
forecast's) and the text gain, fused minus base ``ret`` loss on the validation rows with text
(``text_gain_curve_``). The base keeps its state at its best loss and the text path at its best gain
(``best_steps_``: (base, text) per network). On the validation rows fit the meta-aggregator
(``multi_model_meta``), the text trust and the confidence calibration; then refit on all of ``train_idx`` for the
larger of the two steps, each part keeping its state at its own step (``refit=True``). Without inner splits:
``max_steps`` on ``train_idx``, confidence 0.5, trust 1. The **text trust** (``text_trust_``, per horizon, in
[0, 1]) is the out-of-sample analogue of the flat fusion's cross-fitted gate: the least-squares weight of the
validation contribution on the validation residual, 0 unless their correlation has a t-statistic >=
``text_min_t``. An in-sample gate cannot tell noise it has fitted from signal; the trust can. The reported
``gate`` is ``trust * sigmoid(...)``, so ``contribution = gate * delta``.

``strategy`` is passed to Lightning as is; the tested path is a single process (``"auto"`` on one device).
Multi-process strategies run the same seeded batches on every rank and ``ddp_spawn`` does not return the best
state to the caller: use them only for the final fit where the trade-off is understood.
"""

from __future__ import annotations

import time
import warnings
from abc import abstractmethod
from typing import Any, ClassVar

import numpy as np
import torch
from sklearn.linear_model import LinearRegression
from torch import nn

from quantmm_assets.models.calibration import apply_meta, confidences, fit_calibrators
from quantmm_assets.models.data import ModelData
from quantmm_assets.models.protocol import (
    CALIBRATIONS,
    COMMON_DEFAULTS,
    FUSION_MODES,
    MODES,
    Backbone,
    Predictions,
    Splits,
    checked_splits,
    predictions,
)
from quantmm_assets.models.torch_fusion import FusionNet, lit_fusion, mean_curve, trust
from quantmm_assets.models.torch_runtime import lightning, masked_mse, preflight, torch_state
from quantmm_assets.models.torch_windows import (
    BatchStream,
    WindowIndex,
    WindowPrep,
    fit_prep,
    make_batch,
    row_step_us,
)

__all__ = ["TORCH_DEFAULTS", "FusionNet", "TorchBackbone", "preflight"]  # preflight: re-exported for the jobs

PREDICT_BATCH = 4096
TORCH_DEFAULTS: dict[str, Any] = {
    **{k: v for k, v in COMMON_DEFAULTS.items() if k != "gate_l2"},  # the flat fusion's gate_l2 -> text_l2
    "input_size": 24,
    "hidden_size": 64,
    "learning_rate": 1e-3,
    "max_steps": 1000,
    "batch_size": 256,
    "modality_dropout": 0.3,
    "text_l2": 1.0,
    "text_hidden": 16,
    "text_min_t": 3.0,  # at 2 a noise-text fold opened its trust in the honesty worlds (contrast 4.5x < 5x)
    "weight_decay": 1e-4,
    "vol_weight": 0.5,
    "symbol_dim": 8,
    "eval_every": 50,
    "max_val_rows": 8192,
    "missing_indicators": "per_feature",
    "refit": True,
    "accelerator": "auto",
    "devices": "auto",
    "strategy": "auto",
    "num_threads": 1,  # 2 threads under a second busy process ran 10x slower (OpenMP spinning); 1 is also reproducible
}


class TorchBackbone(Backbone):
    """A window network trained with PyTorch Lightning; subclasses give ``name``, ``defaults`` and ``_encoder``."""

    name: ClassVar[str] = "torch"
    defaults: ClassVar[dict[str, Any]] = TORCH_DEFAULTS

    @abstractmethod
    def _encoder(self, n_channels: int, static_dim: int) -> nn.Module:
        """Return a module mapping a window (B, L, C) and a static embedding (B, S) to (B, hidden_size)."""

    def _check_params(self) -> None:
        """Raise ValueError for parameter values out of range."""
        checks = {
            "mode": self.mode in MODES,
            "fusion_mode": self.fusion_mode in FUSION_MODES,
            "calibration": self.calibration in CALIBRATIONS,
            "text_dim (16..64)": 16 <= int(self.text_dim) <= 64,
            "input_size >= 1": int(self.input_size) >= 1,
            "hidden_size >= 1": int(self.hidden_size) >= 1,
            "learning_rate > 0": float(self.learning_rate) > 0,
            "max_steps >= 1": int(self.max_steps) >= 1,
            "batch_size >= 1": int(self.batch_size) >= 1,
            "eval_every >= 1": int(self.eval_every) >= 1,
            "modality_dropout in [0, 1)": 0 <= float(self.modality_dropout) < 1,
            "text_l2 >= 0": float(self.text_l2) >= 0,
            "max_val_rows >= 1": int(self.max_val_rows) >= 1,
            "missing_indicators (per_feature | aggregate)": self.missing_indicators in ("per_feature", "aggregate"),
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"{self.name}: invalid {bad} in {self.get_params()} (modes {MODES}, {FUSION_MODES})")

    def _forward(self, net: FusionNet, data: ModelData, index: WindowIndex, prep: WindowPrep, idx: np.ndarray,
                 device: torch.device | str = "cpu") -> np.ndarray:  # fmt: skip
        """Return the (4, len(idx), n_out) standardized ``[y_base, log rv, gate, delta]`` of rows ``idx``."""
        parts = []
        with torch.no_grad():
            for start in range(0, len(idx), PREDICT_BATCH):
                batch = make_batch(data, index, prep, idx[start : start + PREDICT_BATCH])
                batch = {k: v.to(device) for k, v in batch.items()}
                parts.append(torch.stack(net(batch, batch["has"])).cpu().numpy().astype(np.float64))
        n_out = net.ret_head.out_features
        return np.concatenate(parts, axis=1) if parts else np.zeros((4, 0, n_out))

    # -- training -----------------------------------------------------------------------------------------
    def _train(self, data: ModelData, index: WindowIndex, prep: WindowPrep, rows: np.ndarray, cols: list[int],
               steps: int, val: np.ndarray | None, snap_steps: tuple[int, int] | None = None,
               ) -> tuple[FusionNet, Any]:  # fmt: skip
        """Train one network on ``rows`` for ``steps`` steps; keep the best states on ``val`` when given, else the
        states at ``snap_steps`` (base, text) when given, else the last."""
        labelled = rows[np.isfinite(prep.targets(data, rows, cols)[0]).any(axis=1)]
        if len(labelled) < 2:
            raise ValueError(f"{self.name}: fewer than 2 train rows with a complete label for horizons {cols}")
        pl = lightning()
        pl.seed_everything(int(self.random_seed), workers=True, verbose=False)
        n_symbols, static_dim = len(prep.symbols), int(self.symbol_dim)
        encoder = self._encoder(prep.n_channels, static_dim)
        net = FusionNet(encoder, int(self.hidden_size), len(cols), n_symbols, static_dim, prep.delta_dim,
                        prep.n_gate_extra, int(self.text_hidden))  # fmt: skip
        # the training stream is the same with or without the text modules' initialization before it
        pl.seed_everything(int(self.random_seed) + 1, workers=True, verbose=False)
        evaluate, zero_ret, zero_loss = None, float("nan"), float("nan")
        if val is not None:
            ret, log_rv = (torch.from_numpy(a) for a in prep.targets(data, val, cols))
            vol_weight, has = float(self.vol_weight), torch.from_numpy(data.text_mask[val])
            zeros = torch.zeros_like(ret)
            zero_ret = float(masked_mse(zeros, ret))
            zero_loss = zero_ret + vol_weight * float(masked_mse(zeros, log_rv))

            def evaluate(candidate: FusionNet) -> tuple[float, float, float]:
                """Return the base's validation loss, its return part, and the text gain (fused minus base return
                loss on the rows with text)."""
                out = self._forward(candidate, data, index, prep, val, next(candidate.parameters()).device)
                y, lrv, gate, delta = (torch.from_numpy(a) for a in out)
                ret_loss = float(masked_mse(y, ret))
                loss = ret_loss + vol_weight * float(masked_mse(lrv, log_rv))
                if not bool(has.any()):
                    return loss, ret_loss, 0.0
                gain = masked_mse((y + gate * delta)[has], ret[has]) - masked_mse(y[has], ret[has])
                return loss, ret_loss, float(gain)

        lit = lit_fusion()(net, self, steps, evaluate, snap_steps, (zero_loss, zero_ret))
        stream = BatchStream(lambda b: make_batch(data, index, prep, b, cols), labelled, int(self.batch_size),
                             int(self.random_seed))  # fmt: skip
        trainer = pl.Trainer(
            max_steps=steps, accelerator=self.accelerator, devices=self.devices, strategy=self.strategy,
            deterministic=True, enable_progress_bar=False, enable_model_summary=False, logger=False,
            enable_checkpointing=False, num_sanity_val_steps=0,
        )  # fmt: skip
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # num_workers / iterable-length advice from Lightning
            trainer.fit(lit, torch.utils.data.DataLoader(stream, batch_size=None, num_workers=0))
        net = lit.net.cpu().eval()
        for _, _, state in lit.best.values():
            if state is not None:
                net.load_state_dict(state, strict=False)
        return net, lit

    def fit(self, data: ModelData, train_idx: np.ndarray, inner_splits: Splits) -> TorchBackbone:
        """Train on the newest inner split with validation, calibrate on its validation rows, refit on ``train_idx``.

        The text path is on when ``fusion_mode="residual_gate"`` and the data carries text."""
        start = time.perf_counter()
        self._check_params()
        train_idx, splits = checked_splits(self.name, train_idx, inner_splits)
        self.devices_ = preflight(self.accelerator, self.devices, self.strategy)
        n_h = len(data.horizons)
        self.horizons_, self.feature_names_, self.latent_dim_ = data.horizons, data.feature_names, data.latent_dim
        text = data.has_text and self.fusion_mode == "residual_gate"
        groups = [list(range(n_h))] if self.mode == MODES[0] else [[j] for j in range(n_h)]
        self.window_step_us_ = row_step_us(data.t[train_idx], data.symbol_code[train_idx])
        index = WindowIndex(data.t, data.symbol_code, int(self.input_size), self.window_step_us_)
        self.meta_, self.calibrators_, self.text_trust_ = None, [None] * n_h, np.ones(n_h)
        rows, val = splits[-1] if splits else (train_idx, None)
        with torch_state(int(self.num_threads)):
            prep = fit_prep(data, rows, int(self.text_dim), text, self.missing_indicators == "aggregate")
            val_eval = None if val is None else val[:: max(1, -(-len(val) // int(self.max_val_rows)))]
            fitted = [self._train(data, index, prep, rows, cols, int(self.max_steps), val_eval) for cols in groups]
            nets, lits = [net for net, _ in fitted], [lit for _, lit in fitted]
            # (base, text) steps of each network: max_steps when there is no validation
            self.best_steps_ = [(max(1, lit.best["base"][1]), max(1, lit.best["text"][1])) for lit in lits]
            self.steps_ = int(self.max_steps) * len(groups)
            if val is not None:
                self._calibrate(data, index, prep, val, nets, groups)
                if self.refit:
                    prep = fit_prep(data, train_idx, int(self.text_dim), text, self.missing_indicators == "aggregate")
                    nets = [
                        self._train(data, index, prep, train_idx, cols, max(snap), None, snap)[0]
                        for cols, snap in zip(groups, self.best_steps_, strict=True)
                    ]
                    self.steps_ += sum(max(snap) for snap in self.best_steps_)
        self.val_curve_ = mean_curve([lit.val_curve for lit in lits])
        self.train_curve_ = mean_curve([lit.train_curve for lit in lits])
        self.text_gain_curve_ = mean_curve([lit.text_gain_curve for lit in lits]) if text else []
        # the zero forecast's validation loss (standardized units: about 1 + vol_weight); "improved" means beating it
        self.val_zero_loss_ = float(np.mean([lit.zero_loss for lit in lits]))
        # the return head alone: 1 - its best validation MSE / the zero forecast's (> 0: it beats predicting 0)
        ret_curve = mean_curve([lit.ret_curve for lit in lits])
        zero_ret = float(np.mean([lit.zero_ret_loss for lit in lits]))
        self.val_ret_skill_ = 1 - min(v for _, v in ret_curve) / zero_ret if ret_curve else float("nan")
        if self.val_curve_:
            best = min(self.val_curve_, key=lambda p: p[1])
            self.best_step_, self.improved_ = int(best[0]), best[1] < self.val_zero_loss_ * (1 - 1e-3)
        else:  # without validation: did the train loss go down
            curve = self.train_curve_
            self.best_step_ = int(self.max_steps)
            self.improved_ = bool(curve) and min(v for _, v in curve) < curve[0][1] * (1 - 1e-3)
        self.prep_, self.networks_, self.groups_ = prep, nets, groups
        self.text_path_ = prep.projection is not None
        self.n_train_ = len(train_idx)
        self.fit_seconds_ = round(time.perf_counter() - start, 3)
        return self

    def _calibrate(self, data: ModelData, index: WindowIndex, prep: WindowPrep, val: np.ndarray,
                   nets: list[FusionNet], groups: list[list[int]]) -> None:  # fmt: skip
        """Fit the meta-aggregator (``multi_model_meta``), the text trust and the calibration on validation rows."""
        y_base, _, _, contrib = self._outputs(data, index, prep, val, nets, groups)
        y = np.where(data.label_ok[val] & np.isfinite(data.ret[val]), data.ret[val], np.nan)
        n_h = y.shape[1]
        if self.mode == MODES[1]:
            meta = []
            for j in range(n_h):
                ok = np.isfinite(y[:, j])
                meta.append(LinearRegression().fit(y_base[ok], y[ok, j]) if ok.sum() > n_h + 1 else None)
            self.meta_ = meta
        y_base = apply_meta(self.meta_, y_base)
        has = data.text_mask[val]
        self.text_trust_ = np.array(
            [trust(y[has, j] - y_base[has, j], contrib[has, j], self.text_min_t) for j in range(n_h)]
        )
        er = y_base + contrib * self.text_trust_
        self.calibrators_ = fit_calibrators(er, y, np.ones_like(er, dtype=bool), self.calibration)

    def _outputs(self, data: ModelData, index: WindowIndex, prep: WindowPrep, idx: np.ndarray,
                 nets: list[FusionNet], groups: list[list[int]]) -> tuple[np.ndarray, ...]:  # fmt: skip
        """Return ``y_base``, ``log rv``, ``gate`` and the text contribution (n, H) in the units of the labels."""
        n_h = len(data.horizons)
        out = np.zeros((4, len(idx), n_h))
        device = "cuda" if self.devices_.get("accelerator") == "cuda" and torch.cuda.is_available() else "cpu"
        with torch_state(int(self.num_threads)):
            for net, cols in zip(nets, groups, strict=True):
                net.to(device)
                out[:, :, cols] = self._forward(net, data, index, prep, idx, device)
                net.cpu()
        y_base = out[0] * prep.ret_scale
        log_rv = out[1] * prep.rv_scale + prep.rv_mean
        gate = out[2] * self.text_trust_
        return y_base, log_rv, gate, gate * (out[3] * prep.ret_scale)

    def predict(self, data: ModelData, idx: np.ndarray) -> dict[str, Predictions]:
        """Return ``{horizon: Predictions}`` for rows ``idx`` of ``data`` (eval mode, no grad, batched)."""
        idx = self._predict_rows(data, idx, "networks_")
        index = WindowIndex(data.t, data.symbol_code, int(self.input_size), self.window_step_us_)
        y_base_raw, log_rv, gate, contrib = self._outputs(data, index, self.prep_, idx, self.networks_, self.groups_)
        y_base = apply_meta(self.meta_, y_base_raw)
        degraded = ~data.text_mask[idx] if self.text_path_ else np.ones(len(idx), bool)
        conf = confidences(self.calibrators_, y_base + contrib)
        return predictions(self.horizons_, y_base, np.exp(log_rv), conf, gate, contrib, degraded)
