"""Feature families (market, derivatives, macro) and the matrix that joins them on availability."""
