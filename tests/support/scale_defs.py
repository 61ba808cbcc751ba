"""The scale-out e2e code location: the production assets, jobs, resources and executor (ARAGORA_EXECUTOR from
each process's environment), with every schedule and sensor off.

The test adds the topics partitions and sets the pool limits itself: the topics sensor would reset
hackernews_api to its production limit, and the test proves that a limit of 1 holds across two workers.
"""

from __future__ import annotations

from dagster import Definitions

from aragora_pipelines.definitions import defs as production_defs

defs = Definitions(
    assets=production_defs.assets, asset_checks=production_defs.asset_checks, jobs=production_defs.jobs,
    resources=production_defs.resources, executor=production_defs.executor,
)
