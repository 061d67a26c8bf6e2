"""The evaluation family: metrics of the signal, bootstrap intervals, plots, the report."""
