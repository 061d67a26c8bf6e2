"""Benchmarks and the independent pandas reference of the feature formulas: beside ``tests/``, importing the
product, never imported by it. Run them with ``make bench`` or ``python -m bench ingest|features|train``."""
