"""Settings of every Celery worker: deploy/bin/worker puts this folder on the worker's PYTHONPATH and
dagster_celery.app imports this module by name.

Broker, result backend and the shared settings come from the worker's environment through the same function the
executor uses (aragora_pipelines.executor), so the two sides cannot disagree.
"""

from aragora_pipelines import executor as _executor  # underscored: Celery reads every other name as a setting

globals().update(_executor.celery_worker_settings())
