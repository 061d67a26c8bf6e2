"""The operator CLI (``quantmm``): ``main`` parses the commands; ``runs`` materializes through Dagster on the
instance; ``bundle_import``, ``layers`` (features, train) and ``demo`` are what the commands run."""
