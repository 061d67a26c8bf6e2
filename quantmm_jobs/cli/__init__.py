"""The operator CLI (``quantmm``): ``main`` parses the commands; ``runs`` materializes through Dagster on the
instance; ``bundle_import``, ``layer_commands`` (features, train) and ``demo`` are what the commands run."""
