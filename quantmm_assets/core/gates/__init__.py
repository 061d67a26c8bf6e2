"""Promotion gates (DESIGN section 4): pure decisions over evaluation frames, with the evidence behind them."""

from quantmm_assets.core.gates.model_gate import Criterion, GateLimits, GateReport, model_gate

__all__ = ["Criterion", "GateLimits", "GateReport", "model_gate"]
