"""Residual-gate text fusion for flat backbones: ``y = y_base + gate * delta(text)`` (DESIGN section 3).

Second stage, fitted after the base model, on the train window only:

- **projection**: PCA (numpy SVD of the covariance) of the ``2 * dim`` latents to ``k = text_dim`` whitened
  components, fitted on the train rows that have text; it ships inside the fitted model;
- **delta**: per horizon, a ridge regression (``RidgeCV``, generalized CV over a fixed alpha grid) of the base
  model's *out-of-fold* residual ``ret - y_base_oof`` (from the inner splits) on the projected text and the text
  flat columns (``data.TEXT_FLAT_COLUMNS``: bucket features, coverage, counts; train-median imputed and
  standardized). The base model never sees those columns: ``y_base(price, derivatives, macro)``;
- **gate**: per horizon ``sigmoid(w . z + b)`` with ``z`` = [log1p of the projected-text norm, post present,
  comment present, log1p of the count columns ``post_n`` / ``comment_n`` / ``text_items_1d`` when they are
  features], standardized. ``(w, b)`` minimize ``sum (r - gate * delta_cf)^2 / sum r^2 + l2 |w|^2`` where
  ``delta_cf`` is delta *cross-fitted* over the inner validation slices, so the gate learns how far an unseen
  delta is to be trusted (it goes to 0 when the text carries nothing). A least-squares shrinkage gate with a
  row-dependent shrinkage: it is the optimal blend weight, not a probability of improvement.

Rows without text: gate 0, delta 0 (the prediction degrades to ``y_base``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from sklearn.linear_model import RidgeCV

from quantmm_assets.models.data import ModelData, base_and_text_columns

COUNT_COLUMNS = ("post_n", "comment_n", "text_items_1d")
ALPHAS = tuple(float(a) for a in np.logspace(-2, 5, 15))
MIN_TEXT_ROWS = 30


@dataclass(frozen=True)
class TextProjection:
    """Fitted PCA of the text latents: ``z = (text - mean) @ components / scale``."""

    mean: np.ndarray
    components: np.ndarray  # (2 * dim, k)
    scale: np.ndarray  # (k,)

    @property
    def k(self) -> int:
        return self.components.shape[1]

    def transform(self, text: np.ndarray) -> np.ndarray:
        """Project ``text`` (n, 2 * dim) to (n, k) whitened components."""
        return ((text.astype(np.float64) - self.mean) @ self.components) / self.scale


def fit_projection(text: np.ndarray, k: int) -> TextProjection:
    """Fit the PCA projection on ``text`` rows (all of which have text)."""
    x = text.astype(np.float64)
    mean = x.mean(axis=0)
    xc = x - mean
    cov = xc.T @ xc / max(len(x) - 1, 1)
    u, s, _ = np.linalg.svd(cov, hermitian=True)
    keep = s > s[0] * 1e-10 if len(s) and s[0] > 0 else np.zeros(len(s), bool)
    k = int(min(k, keep.sum()))
    comps = u[:, :k]
    # deterministic signs (sklearn's svd_flip rule): the largest loading of each component is positive
    signs = np.sign(comps[np.abs(comps).argmax(axis=0), np.arange(k)])
    comps = comps * np.where(signs == 0, 1.0, signs)
    return TextProjection(mean=mean, components=comps, scale=np.sqrt(s[:k]))


def gate_features(data: ModelData, idx: np.ndarray, proj: np.ndarray) -> np.ndarray:
    """Return the raw gate inputs of rows ``idx`` with projected text ``proj``."""
    dim = data.latent_dim
    cols = [
        np.log1p(np.linalg.norm(proj, axis=1)),
        (np.abs(data.text[idx, :dim]).sum(axis=1) > 0).astype(np.float64),
        (np.abs(data.text[idx, dim:]).sum(axis=1) > 0).astype(np.float64),
    ]
    for name in COUNT_COLUMNS:
        if name in data.feature_names:
            v = data.x[idx, data.feature_names.index(name)].astype(np.float64)
            cols.append(np.log1p(np.clip(np.nan_to_num(v, nan=0.0), 0.0, None)))
    return np.column_stack(cols)


def _sigmoid(a: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * a))


def fit_gate(z: np.ndarray, r: np.ndarray, delta: np.ndarray, l2: float) -> np.ndarray:
    """Return ``[w..., b]`` minimizing the normalized squared residual after ``r - sigmoid(z w + b) * delta``."""
    zb = np.column_stack([z, np.ones(len(z))])
    denom = float(r @ r) or 1.0
    pen = np.r_[np.full(z.shape[1], l2), 0.0]

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        g = _sigmoid(zb @ theta)
        e = r - g * delta
        grad = -2.0 * zb.T @ (e * delta * g * (1.0 - g)) / denom + 2.0 * pen * theta
        return float(e @ e) / denom + float(pen @ theta**2), grad

    res = minimize(loss, np.zeros(zb.shape[1]), jac=True, method="L-BFGS-B", bounds=[(-20.0, 20.0)] * zb.shape[1])
    return res.x


@dataclass(frozen=True)
class TextFlatScaler:
    """Train-fitted imputation and standardization of the text flat columns."""

    columns: tuple[int, ...]
    fill: np.ndarray
    mean: np.ndarray
    scale: np.ndarray

    def transform(self, data: ModelData, idx: np.ndarray) -> np.ndarray:
        """Return the (n, len(columns)) standardized text flat columns of rows ``idx``."""
        x = data.x[np.ix_(idx, list(self.columns))].astype(np.float64)
        x = np.where(np.isfinite(x), x, self.fill)
        return (x - self.mean) / self.scale


def fit_text_flat(data: ModelData, rows: np.ndarray) -> TextFlatScaler:
    """Fit the scaler of the text flat columns on ``rows`` (median fill; a constant column gets scale 1)."""
    cols = base_and_text_columns(data.feature_names)[1]
    x = data.x[np.ix_(rows, cols)].astype(np.float64)
    present = np.isfinite(x)
    fill = np.array([np.median(x[present[:, j], j]) if present[:, j].any() else 0.0 for j in range(len(cols))])
    x = np.where(present, x, fill)
    scale = x.std(axis=0) if len(x) else np.ones(len(cols))
    return TextFlatScaler(tuple(cols), fill, x.mean(axis=0) if len(x) else fill, np.where(scale > 1e-12, scale, 1.0))


@dataclass(frozen=True)
class ResidualGate:
    """A fitted residual-gate stage (per horizon delta ridge and gate)."""

    projection: TextProjection
    text_flat: TextFlatScaler
    deltas: tuple[RidgeCV | None, ...]  # per horizon; None = no delta (too few rows)
    gates: np.ndarray  # (H, p + 1): gate weights then bias
    z_mean: np.ndarray
    z_std: np.ndarray

    def apply(self, data: ModelData, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return ``gate`` and ``delta`` (n, H) for rows ``idx``; both 0 where the row has no text."""
        n, h = len(idx), len(self.deltas)
        gate, delta = np.zeros((n, h)), np.zeros((n, h))
        has = data.text_mask[idx]
        if not has.any():
            return gate, delta
        rows = idx[has]
        proj = self.projection.transform(data.text[rows])
        z = (gate_features(data, rows, proj) - self.z_mean) / self.z_std
        design = np.hstack([proj, self.text_flat.transform(data, rows)])
        for j, model in enumerate(self.deltas):
            if model is None:
                continue
            delta[has, j] = model.predict(design)
            gate[has, j] = _sigmoid(z @ self.gates[j, :-1] + self.gates[j, -1])
        return gate, delta


def _ridge(proj: np.ndarray, r: np.ndarray) -> RidgeCV:
    return RidgeCV(alphas=ALPHAS).fit(proj, r)


def fit_residual_gate(
    data: ModelData,
    train_idx: np.ndarray,
    oof_idx: np.ndarray,
    resid: np.ndarray,
    val_folds: list[np.ndarray],
    text_dim: int,
    gate_l2: float,
) -> tuple[ResidualGate | None, np.ndarray]:
    """Fit the stage on the out-of-fold residuals ``resid`` (len(oof_idx), H; NaN = no label) of rows ``oof_idx``.

    ``val_folds`` are position arrays into ``oof_idx`` (the inner validation slices), used to cross-fit delta.
    Return the stage (None when the train window has too little text) and the cross-fitted contribution
    ``gate * delta`` on the ``oof_idx`` rows, for calibration.
    """
    n_h = resid.shape[1]
    contrib = np.zeros_like(resid)
    text_train = train_idx[data.text_mask[train_idx]]
    if len(text_train) < MIN_TEXT_ROWS:
        return None, contrib
    projection = fit_projection(data.text[text_train], text_dim)
    if projection.k == 0:
        return None, contrib
    text_flat = fit_text_flat(data, text_train)
    has = data.text_mask[oof_idx]
    proj_all = np.zeros((len(oof_idx), projection.k))
    proj_all[has] = projection.transform(data.text[oof_idx[has]])
    z_raw = np.zeros((len(oof_idx), 0))
    if has.any():
        z_raw = gate_features(data, oof_idx[has], proj_all[has])
    z_mean = z_raw.mean(axis=0) if len(z_raw) else np.zeros(z_raw.shape[1])
    z_std = z_raw.std(axis=0) if len(z_raw) else np.ones(z_raw.shape[1])
    z_std = np.where(z_std > 1e-12, z_std, 1.0)
    z_all = np.zeros((len(oof_idx), z_raw.shape[1]))
    if has.any():
        z_all[has] = (z_raw - z_mean) / z_std
    design = np.zeros((len(oof_idx), projection.k + len(text_flat.columns)))
    if has.any():
        design[has] = np.hstack([proj_all[has], text_flat.transform(data, oof_idx[has])])
    fold_of = np.full(len(oof_idx), -1)
    for i, va in enumerate(val_folds):
        fold_of[va] = i
    deltas: list[RidgeCV | None] = []
    gates = np.zeros((n_h, z_all.shape[1] + 1))
    gates[:, -1] = -20.0  # closed gate unless fitted
    for j in range(n_h):
        ok = has & np.isfinite(resid[:, j])
        if ok.sum() < MIN_TEXT_ROWS:
            deltas.append(None)
            continue
        cf = np.full(len(oof_idx), np.nan)
        for i in range(len(val_folds)):
            fit_rows, pred_rows = ok & (fold_of != i), ok & (fold_of == i)
            if fit_rows.sum() >= MIN_TEXT_ROWS and pred_rows.any():
                cf[pred_rows] = _ridge(design[fit_rows], resid[fit_rows, j]).predict(design[pred_rows])
        use = ok & np.isfinite(cf)
        deltas.append(_ridge(design[ok], resid[ok, j]))
        if use.sum() >= MIN_TEXT_ROWS:
            gates[j] = fit_gate(z_all[use], resid[use, j], cf[use], gate_l2)
            g = _sigmoid(z_all[use] @ gates[j, :-1] + gates[j, -1])
            contrib[use, j] = g * cf[use]
    stage = ResidualGate(
        projection=projection, text_flat=text_flat, deltas=tuple(deltas), gates=gates, z_mean=z_mean, z_std=z_std
    )
    return stage, contrib
