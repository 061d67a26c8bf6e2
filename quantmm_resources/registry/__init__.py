"""The model registry (MLflow, one registered model per symbol and horizon) and the promotion ledger."""

from quantmm_resources.registry.model_registry import ModelRegistry
from quantmm_resources.registry.promotion import (
    AliasMoveFailed,
    PromotionConflict,
    current_active,
    history,
    promote,
    reconcile,
    record_promotion,
    rollback,
)
from quantmm_resources.registry.pyfunc_model import QuantmmPyfunc, to_model_input

__all__ = [
    "AliasMoveFailed",
    "ModelRegistry",
    "PromotionConflict",
    "QuantmmPyfunc",
    "current_active",
    "history",
    "promote",
    "reconcile",
    "record_promotion",
    "rollback",
    "to_model_input",
]
