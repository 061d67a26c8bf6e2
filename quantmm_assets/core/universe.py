"""The trading universe: symbols with listing dates and the aliases used to link social text."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date


@dataclass(frozen=True)
class Listing:
    """One USDT-M perpetual: ``symbol`` like ``BTCUSDT``; ``base`` like ``BTC``."""

    symbol: str
    listing_date: date
    aliases: tuple[str, ...] = field(default_factory=tuple)

    @property
    def base(self) -> str:
        return self.symbol.removesuffix("USDT")


@dataclass(frozen=True)
class Universe:
    listings: tuple[Listing, ...]

    @property
    def symbols(self) -> list[str]:
        return [x.symbol for x in self.listings]

    def listing(self, symbol: str) -> Listing:
        for x in self.listings:
            if x.symbol == symbol:
                return x
        raise KeyError(f"symbol {symbol!r} is not in the universe {self.symbols}")

    def is_listed(self, symbol: str, day: date) -> bool:
        """Whether ``symbol`` traded on ``day`` (partitions before the listing date are empty by design)."""
        return day >= self.listing(symbol).listing_date

    @classmethod
    def from_dict(cls, raw: dict) -> Universe:
        """Build from the parsed ``universe.toml`` (``[[symbol]]`` tables)."""
        entries = raw.get("symbol")
        if not entries:
            raise ValueError("universe config has no [[symbol]] entries")
        listings = []
        for e in entries:
            sym = str(e["symbol"]).upper()
            if not sym.endswith("USDT"):
                raise ValueError(f"universe symbol {sym!r} must be a USDT-M pair like BTCUSDT")
            listings.append(
                Listing(sym, date.fromisoformat(str(e["listing_date"])), tuple(a.lower() for a in e.get("aliases", [])))
            )
        if len({x.symbol for x in listings}) != len(listings):
            raise ValueError("universe config lists a symbol twice")
        return cls(tuple(listings))
