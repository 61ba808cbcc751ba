"""The connector library: evidence and integration connectors and the guide's core.

It never imports Dagster; ``aragora_pipelines`` wraps it as resources.
"""

from connectors.base import BaseConnector, Evidence
from connectors.provenance import ProvenanceManager, ProvenanceRecord, SourceType

__all__ = ["BaseConnector", "Evidence", "ProvenanceManager", "ProvenanceRecord", "SourceType"]
