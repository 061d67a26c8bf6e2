"""Leakage checks that do not trust stored stamps: as-of alignment, truncation invariance, labels/items/folds."""
