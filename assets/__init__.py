"""Dagster assets, asset checks and freshness: thin declarations over resources and connectors.

Factories here take partitions and sources from the code location (``aragora_pipelines``),
so the import direction stays ``aragora_pipelines -> assets -> connectors``.
"""
