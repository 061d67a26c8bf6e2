"""The Dagster layer: thin assets over core, partitions, checks."""

import warnings

import dagster as dg

# single-run backfill policies and asset kinds are used on purpose; their beta notices are noise in every run.
warnings.filterwarnings("ignore", category=dg.BetaWarning)
warnings.filterwarnings("ignore", category=dg.PreviewWarning)
