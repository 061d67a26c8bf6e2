"""The portfolio allocator (DESIGN section 5): per-horizon signals to target weights under the risk caps."""
