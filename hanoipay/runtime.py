"""Connect a process to its database and Redis: configured servers, or embedded ones started here."""

import gc
import json
import secrets
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config

from hanoipay.db import init_engine, sqlalchemy_url
from hanoipay.embedded import EmbeddedPostgres, EmbeddedRedis
from hanoipay.jobs import init_redis
from hanoipay.settings import Settings, get_settings

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


@dataclass
class Runtime:
    """The servers this process talks to, and the embedded ones it started (to stop on exit)."""

    database_url: str
    redis_url: str
    embedded_postgres: EmbeddedPostgres | None = None
    embedded_redis: EmbeddedRedis | None = None

    def stop(self) -> None:
        """Stop the embedded servers this process started; their data stays for the next start."""
        if self.embedded_redis is not None:
            self.embedded_redis.stop()
        if self.embedded_postgres is not None:
            self.embedded_postgres.stop()

    def child_environment(self) -> dict[str, str]:
        """Environment for worker and cron processes, so they use the same servers."""
        return {"HANOIPAY_DATABASE_URL": self.database_url, "HANOIPAY_REDIS_URL": self.redis_url}


def start_runtime(settings: Settings | None = None, *, migrate: bool = False, api: bool = False) -> Runtime:
    """Use the configured servers, starting embedded ones for whatever is not configured.

    A process that serves the API (`api`) also needs JWT signing keys: configured ones, or, when running
    embedded, keys kept in the data directory so that tokens survive a restart.
    """
    settings = settings or get_settings()
    data_dir = settings.data_dir.resolve()
    runtime = Runtime(database_url=settings.database_url or "", redis_url=settings.redis_url or "")
    if not settings.database_url:
        runtime.embedded_postgres = EmbeddedPostgres(data_dir / "postgres")
        runtime.database_url = sqlalchemy_url(runtime.embedded_postgres.start())
    if not settings.redis_url:
        runtime.embedded_redis = EmbeddedRedis(data_dir / "redis")
        runtime.redis_url = runtime.embedded_redis.start()
    if api and not settings.jwt_keys:
        settings.jwt_keys = _local_jwt_keys(data_dir, required=settings.embedded)
    init_engine(runtime.database_url)
    init_redis(runtime.redis_url)
    if migrate:
        migrate_to_head(runtime.database_url)
    return runtime


def _local_jwt_keys(data_dir: Path, *, required: bool) -> dict[str, str]:
    if not required:
        raise RuntimeError("HANOIPAY_JWT_KEYS must be set when running against configured servers")
    path = data_dir / "jwt_keys.json"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"local-1": secrets.token_urlsafe(48)}))
        path.chmod(0o600)
    keys: dict[str, str] = json.loads(path.read_text())
    return keys


def freeze_startup_objects() -> None:
    """Exempt everything built at start-up from garbage collection, in a long-running server process.

    Routes, models, mappers and modules (about 250 000 objects for the API) live as long as the process,
    yet each full collection walks them all: about 150 ms on a busy 2-core machine, with every request of
    the process waiting. Frozen, they are never walked again.
    """
    gc.collect()
    gc.freeze()


def alembic_config(database_url: str) -> Config:
    """Alembic configuration pointing at this project's migrations and `database_url`."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", sqlalchemy_url(database_url).replace("%", "%%"))
    return config


def migrate_to_head(database_url: str) -> None:
    """Apply every migration not yet applied."""
    command.upgrade(alembic_config(database_url), "head")
