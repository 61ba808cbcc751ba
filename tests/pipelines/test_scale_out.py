"""Scale-out parts that need no running Dagster deployment: the Postgres instance YAML (Dagster's schema and a real
PostgreSQL), the executor setting, the Celery workers' settings, the Helm values, `dg check defs` with Celery, and
the rate limit shared through Redis. The deployment itself is tested end to end in tests/e2e/test_scale_out.py."""

from __future__ import annotations

import json
import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from dagster import DagsterInstance, asset, materialize
from dagster._core.errors import DagsterInvalidConfigError
from dagster._core.instance.config import dagster_instance_config

from aragora_pipelines.definitions import POOL_LIMITS, apply_pool_limits
from aragora_pipelines.executor import celery_worker_settings, executor_choice, selected_executor
from connectors.resilience import AsyncRateLimiter, RedisRateLimiter, get_rate_limiter
from tests.conftest import ROOT
from tests.support.services import (  # noqa: F401  (fixtures)
    PgDatabase,
    RedisPrefix,
    postgres_db,
    rabbitmq_vhost,
    redis_prefix,
)

DEPLOY = ROOT / "deploy"
VENV_BIN = Path(sys.executable).parent
PG_ENV = {"ARAGORA_PG_HOST": "db.example.internal", "ARAGORA_PG_PORT": "5432", "ARAGORA_PG_USER": "dagster",
          "ARAGORA_PG_PASSWORD": "s3cret-pg", "ARAGORA_PG_DB": "dagster"}
BROKER = "redis://:s3cret-broker@127.0.0.1:6379/0"


def instance_home(tmp_path: Path, text: str | None = None) -> Path:
    """A DAGSTER_HOME holding deploy/dagster.yaml (or ``text``)."""
    home = tmp_path / "dagster_home"
    home.mkdir(exist_ok=True)
    (home / "dagster.yaml").write_text(text if text is not None else (DEPLOY / "dagster.yaml").read_text())
    return home


def test_the_postgres_instance_yaml_passes_dagsters_schema(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in PG_ENV.items():
        monkeypatch.setenv(name, value)
    config, _ = dagster_instance_config(str(instance_home(tmp_path)))
    postgres = config["storage"]["postgres"]["postgres_db"]
    assert postgres["password"] == {"env": "ARAGORA_PG_PASSWORD"}  # the file names variables, never a secret
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert config["concurrency"]["runs"]["max_concurrent_runs"] >= 1
    assert config["concurrency"]["pools"]["granularity"] == "op"
    assert config["run_retries"] == {"enabled": True, "max_retries": 2, "retry_on_asset_or_op_failure": True}
    # The local default stays SQLite: no storage block, no Postgres variable needed by `make run` or `dg dev`.
    assert "storage" not in yaml.safe_load((ROOT / "dagster_home" / "dagster.yaml").read_text())


def test_the_schema_check_refuses_a_broken_instance_yaml(tmp_path: Path) -> None:
    broken = (DEPLOY / "dagster.yaml").read_text().replace("max_retries: 2", "max_retries: two")
    with pytest.raises(DagsterInvalidConfigError, match="max_retries"):
        dagster_instance_config(str(instance_home(tmp_path, broken)))


def test_the_postgres_instance_keeps_runs_events_schedules_and_pool_slots(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, postgres_db: PgDatabase) -> None:  # noqa: F811
    for name, value in postgres_db.env().items():
        monkeypatch.setenv(name, value)

    @asset(pool="hackernews_api")
    def probe() -> int:
        return 1

    with DagsterInstance.from_config(str(instance_home(tmp_path))) as instance:
        storages = {type(s).__name__ for s in (instance.run_storage, instance.event_log_storage,
                                                instance.schedule_storage)}
        assert storages == {"PostgresRunStorage", "PostgresEventLogStorage", "PostgresScheduleStorage"}
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        result = materialize([probe], instance=instance)
        assert result.success
        apply_pool_limits(instance)
    # A second process sees the same run, its materialization and the pools' limits: they live in Postgres.
    with DagsterInstance.from_config(str(instance_home(tmp_path))) as again:
        [run] = again.get_runs()
        assert run.run_id == result.run_id and run.is_success
        assert again.get_latest_materialization_event(probe.key) is not None
        assert again.event_log_storage.get_concurrency_info("hackernews_api").slot_count == POOL_LIMITS[
            "hackernews_api"]


def test_the_executor_is_dagsters_default_unless_celery_is_chosen(monkeypatch: pytest.MonkeyPatch) -> None:
    assert executor_choice() == "multiprocess"
    assert selected_executor() is None
    monkeypatch.setenv("ARAGORA_EXECUTOR", "celery")
    monkeypatch.setenv("ARAGORA_CELERY_BROKER", BROKER)
    executor = selected_executor()
    assert executor is not None and executor.name == "celery"


@pytest.mark.parametrize(("settings", "message"), [
    ({"ARAGORA_EXECUTOR": "k8s"}, "ARAGORA_EXECUTOR must be one of multiprocess, celery (unset: multiprocess), "
                                  "got 'k8s'"),
    ({"ARAGORA_EXECUTOR": "celery"}, "ARAGORA_EXECUTOR=celery needs ARAGORA_CELERY_BROKER set to a "
                                     "redis://host:6379/0 or amqp://user:password@host:5672// URL, got no URL"),
    ({"ARAGORA_EXECUTOR": "celery", "ARAGORA_CELERY_BROKER": "http://user:s3cret@host/"}, "got a http:// URL"),
    ({"ARAGORA_EXECUTOR": "celery", "ARAGORA_CELERY_BROKER": "amqp://guest:s3cret@host:5672//"},
     "an amqp:// broker needs ARAGORA_CELERY_BACKEND"),
    ({"ARAGORA_EXECUTOR": "celery", "ARAGORA_CELERY_BROKER": BROKER, "ARAGORA_CELERY_VISIBILITY_TIMEOUT": "soon"},
     "ARAGORA_CELERY_VISIBILITY_TIMEOUT must be a whole number of seconds >= 1"),
])
def test_a_wrong_executor_setting_is_refused_in_one_line_without_the_secret(
        monkeypatch: pytest.MonkeyPatch, settings: dict[str, str], message: str) -> None:
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValueError) as raised:
        selected_executor()
    assert message in str(raised.value) and "\n" not in str(raised.value)
    assert "s3cret" not in str(raised.value)


def test_the_worker_config_module_gives_celery_what_the_executor_uses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARAGORA_CELERY_BROKER", BROKER)
    monkeypatch.setenv("ARAGORA_CELERY_PREFIX", "team-a:")
    worker = runpy.run_path(str(DEPLOY / "celery" / "dagster_celery_config.py"))
    assert worker["broker_url"] == worker["result_backend"] == BROKER
    assert worker["task_acks_late"] is True and worker["task_reject_on_worker_lost"] is True
    assert worker["broker_transport_options"]["global_keyprefix"] == "team-a:"
    assert worker["broker_transport_options"]["visibility_timeout"] == 3600
    assert {k: v for k, v in worker.items() if not k.startswith("_")} == celery_worker_settings()


def test_a_rabbitmq_broker_with_a_redis_backend_carries_a_task(monkeypatch: pytest.MonkeyPatch,
                                                               rabbitmq_vhost: str,  # noqa: F811
                                                               redis_prefix: RedisPrefix) -> None:  # noqa: F811
    from celery import Celery

    monkeypatch.setenv("ARAGORA_CELERY_BROKER", rabbitmq_vhost)
    monkeypatch.setenv("ARAGORA_CELERY_BACKEND", redis_prefix.url)
    monkeypatch.setenv("ARAGORA_CELERY_PREFIX", redis_prefix.prefix)
    app = Celery("probe")
    app.conf.update(celery_worker_settings(), task_always_eager=False)
    with app.connection_for_write() as connection:
        connection.ensure_connection(max_retries=2)
        with connection.SimpleQueue("aragora-probe") as queue:
            queue.put({"step": "probe"})
            message = queue.get(timeout=10)
            message.ack()
    assert message.payload == {"step": "probe"}
    assert app.backend.client.ping()  # the result backend is the Redis one, under the test's prefix


def test_the_helm_values_match_the_instance_yaml_and_the_code_location() -> None:
    values = yaml.safe_load((DEPLOY / "helm" / "values.yaml").read_text())
    instance = yaml.safe_load((DEPLOY / "dagster.yaml").read_text())
    [deployment] = values["dagster-user-deployments"]["deployments"]
    args = deployment["dagsterApiGrpcArgs"]
    module, attribute = args[args.index("--module-name") + 1], args[args.index("--attribute") + 1]
    assert attribute in vars(__import__(module, fromlist=[attribute]))
    assert {e["name"]: e["value"] for e in deployment["env"]}["ARAGORA_EXECUTOR"] in ("celery", "multiprocess")
    daemon = values["dagsterDaemon"]
    assert daemon["runCoordinator"]["type"] == "QueuedRunCoordinator"
    assert (daemon["runCoordinator"]["config"]["queuedRunCoordinator"]["maxConcurrentRuns"]
            == instance["concurrency"]["runs"]["max_concurrent_runs"])
    assert daemon["runRetries"]["maxRetries"] == instance["run_retries"]["max_retries"]
    assert values["runLauncher"]["type"] in ("K8sRunLauncher", "CeleryK8sRunLauncher")
    assert "password" not in json.dumps(values["postgresql"]).lower()  # the password is the secret's, not a value


def test_the_deploy_scripts_are_valid_shell_naming_installed_commands() -> None:
    for script in sorted((DEPLOY / "bin").iterdir()):
        assert os.access(script, os.X_OK), f"{script} is not executable"
        assert subprocess.run(["sh", "-n", str(script)], check=False).returncode == 0
        command = next(w for line in script.read_text().splitlines() if line.startswith("exec ")
                       for w in line.split()[1:2])
        assert (VENV_BIN / command).exists(), f"{script.name} runs {command}, which the venv lacks"


@pytest.mark.slow
def test_dg_check_defs_passes_with_the_celery_executor(tmp_path: Path) -> None:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ARAGORA_", "DAGSTER_", "VIRTUAL_ENV"))}
    env = {**base, "PATH": f"{VENV_BIN}{os.pathsep}{base.get('PATH', '')}", "VIRTUAL_ENV": str(VENV_BIN.parent),
           "DAGSTER_HOME": str(instance_home(tmp_path, "telemetry:\n  enabled: false\n")), "NO_COLOR": "1",
           "ARAGORA_DUCKDB_PATH": str(tmp_path / "evidence.duckdb"), "ARAGORA_EXECUTOR": "celery",
           "ARAGORA_CELERY_BROKER": BROKER}
    done = subprocess.run([str(VENV_BIN / "dg"), "check", "defs"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "s3cret" not in done.stdout + done.stderr
    broken = subprocess.run([str(VENV_BIN / "dg"), "check", "defs"], cwd=ROOT, capture_output=True, text=True,
                            env={**env, "ARAGORA_EXECUTOR": "celery", "ARAGORA_CELERY_BROKER": "http://x/"},
                            timeout=300, check=False)
    assert broken.returncode != 0 and "ARAGORA_CELERY_BROKER" in broken.stdout + broken.stderr


RESERVE = """
import json, sys
from connectors.resilience import RedisRateLimiter
limiter = RedisRateLimiter(sys.argv[1], "api.example.com", rate=1, period=60, prefix=sys.argv[2])
print(json.dumps([limiter.reserve() for _ in range(int(sys.argv[3]))]))
"""


def reserve_in_new_process(redis: RedisPrefix, count: int) -> list[float]:
    """Waits a fresh process is told for ``count`` requests to one host paced at 1 per minute."""
    done = subprocess.run([sys.executable, "-c", RESERVE, redis.url, redis.prefix, str(count)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=True)
    return json.loads(done.stdout)


def test_two_processes_share_one_hosts_rate_limit_through_redis(redis_prefix: RedisPrefix) -> None:  # noqa: F811
    first = reserve_in_new_process(redis_prefix, 3)
    assert first[0] == 0 and 59 < first[1] <= 60 and 119 < first[2] <= 120
    # A second worker process continues the same schedule instead of starting its own (which would send at once).
    [second] = reserve_in_new_process(redis_prefix, 1)
    assert 60 < second <= 180


def test_the_limiter_is_shared_when_redis_is_configured(monkeypatch: pytest.MonkeyPatch,
                                                         redis_prefix: RedisPrefix) -> None:  # noqa: F811
    key = f"{redis_prefix.prefix}host"
    assert type(get_rate_limiter(key, 5, 1.0)) is AsyncRateLimiter
    monkeypatch.setenv("ARAGORA_RATE_LIMIT_REDIS_URL", redis_prefix.url)
    limiter = get_rate_limiter(key, 5, 1.0)
    assert isinstance(limiter, RedisRateLimiter) and get_rate_limiter(key, 5, 1.0) is limiter
    assert limiter.reserve() == 0 and limiter.reserve() > 0  # its key expires once its schedule is past


def test_an_unreachable_redis_falls_back_to_pacing_in_the_process() -> None:
    limiter = RedisRateLimiter("redis://127.0.0.1:9/0", "api.example.com", rate=1, period=60)
    assert limiter.reserve() == 0 and 59 < limiter.reserve() <= 60


def test_the_shared_limiter_needs_a_redis_client_named_in_the_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)
    with pytest.raises(ImportError, match=r"ARAGORA_RATE_LIMIT_REDIS_URL needs the redis package"):
        RedisRateLimiter("redis://127.0.0.1:6379/0", "api.example.com", rate=1)
