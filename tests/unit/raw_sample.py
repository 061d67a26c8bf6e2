"""Raw lake frames from the synthetic sources, normalized by core (no Dagster): input of feature tests."""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path

from quantmm_assets.core.features.matrix import RawInputs
from quantmm_assets.core.ingest import IngestParams, normalize
from quantmm_assets.core.universe import Universe
from quantmm_resources.sources.synthetic import SyntheticExchange, SyntheticMacro, SyntheticSocial

UNIVERSE_FILE = Path(__file__).resolve().parents[2] / "quantmm_resources" / "config" / "universe.toml"
SYMBOLS = ("BTCUSDT", "ETHUSDT")
START = datetime(2025, 3, 1, tzinfo=UTC)


def universe() -> Universe:
    with open(UNIVERSE_FILE, "rb") as fh:
        return Universe.from_dict(tomllib.load(fh))


@lru_cache(maxsize=4)
def synthetic_raw(days: int = 14, macro_days: int = 110) -> RawInputs:
    """``days`` days of every raw asset from START for SYMBOLS (macro from ``macro_days`` before the end)."""
    end = START + timedelta(days=days)
    uni = universe()
    ex = SyntheticExchange(seed=7, symbols=list(uni.symbols))
    social = SyntheticSocial(seed=7, symbols=list(uni.symbols), text_signal=True)
    now = end + timedelta(days=30)

    def norm(asset: str, frame, start: datetime = START, symbols=SYMBOLS):
        params = IngestParams(start=start, end=end, symbols=symbols, universe=uni, now=now)
        out = normalize(asset, frame, params)
        assert not len(out.rejects), out.rejects.head()
        return out.clean

    import polars as pl

    def per_symbol(fetch):
        return pl.concat([fetch(s, START, end) for s in SYMBOLS], how="diagonal_relaxed")

    bars = per_symbol(lambda s, a, b: pl.concat([ex.fetch_bars(s, m, a, b) for m in ("perp", "spot")]))
    macro_start = end - timedelta(days=macro_days)
    return RawInputs(
        bars=norm("market_bars_5m", bars),
        funding=norm("funding_rates", per_symbol(ex.fetch_funding)),
        open_interest=norm("open_interest", per_symbol(ex.fetch_open_interest)),
        metrics=norm("derivatives_metrics", per_symbol(ex.fetch_derivatives_metrics)),
        macro=norm("macro_series", SyntheticMacro(seed=7).fetch_macro(macro_start, end), macro_start, None),
        posts=norm("social_posts_raw", social.fetch_posts(START, end), START, None),
        comments=norm("social_comments_raw", social.fetch_comments(START, end), START, None),
    )
