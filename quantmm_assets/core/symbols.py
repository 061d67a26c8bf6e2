"""The one function that links social text to symbols of the universe."""

from __future__ import annotations

import re

import polars as pl

from quantmm_assets.core.universe import Universe


def symbol_patterns(universe: Universe) -> dict[str, str]:
    """Regex per symbol: cashtag ($BTC, any case), upper-case ticker (BTC), names/aliases (any case)."""
    patterns = {}
    for listing in universe.listings:
        base = re.escape(listing.base)
        parts = [rf"(?i:\${base})\b", rf"\b{base}\b"]
        parts += [rf"(?i:\b{re.escape(alias)}\b)" for alias in listing.aliases]
        patterns[listing.symbol] = "|".join(parts)
    return patterns


def link_symbols(text: pl.Expr, universe: Universe) -> pl.Expr:
    """List of universe symbols that ``text`` names, in universe order (empty list when none)."""
    text = text.fill_null("")
    hits = [
        pl.when(text.str.contains(pattern)).then(pl.lit(symbol))
        for symbol, pattern in symbol_patterns(universe).items()
    ]
    return pl.concat_list(hits).list.drop_nulls()
