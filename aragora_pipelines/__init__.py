"""The aragora-pipelines code location: Dagster definitions, resources, the DuckDB store and the CLI."""
