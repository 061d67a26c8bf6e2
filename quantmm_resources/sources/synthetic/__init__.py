"""The seeded synthetic sample: the Dagster resources and the pure generators beside them.

``resources`` holds the thin resources the demo and most tests read; ``base``, ``market``,
``derivatives``, ``macro``, ``text`` and ``lexicon`` are the pure generators (numpy and polars, no
Dagster, no I/O) they cut their frames from. See docs/synthetic_sample.md.
"""

from quantmm_resources.sources.synthetic.resources import SyntheticExchange, SyntheticMacro, SyntheticSocial

__all__ = ["SyntheticExchange", "SyntheticMacro", "SyntheticSocial"]
