"""Shared set-up for the benchmarks: a database and Redis (configured or embedded), with the schema."""

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text

from hanoipay import db, jobs
from hanoipay.app import register_domains
from hanoipay.db import sqlalchemy_url
from hanoipay.embedded import EmbeddedPostgres, EmbeddedRedis
from hanoipay.runtime import migrate_to_head


@dataclass
class BenchServers:
    """Where the benchmark runs, and what to stop afterwards."""

    database_url: str
    redis_url: str
    postgres: EmbeddedPostgres | None
    redis: EmbeddedRedis | None

    def stop(self) -> None:
        if self.redis:
            self.redis.stop()
        if self.postgres:
            self.postgres.stop()


def start() -> BenchServers:
    """HANOIPAY_BENCH_DATABASE_URL / _REDIS_URL if set, else fresh embedded servers; schema by migrations."""
    tmp = Path(tempfile.mkdtemp(prefix="hanoipay-bench-"))
    pg = rd = None
    url = os.environ.get("HANOIPAY_BENCH_DATABASE_URL")
    if url is None:
        pg = EmbeddedPostgres(tmp / "postgres", cleanup="delete")
        url = pg.start()
    redis_url = os.environ.get("HANOIPAY_BENCH_REDIS_URL")
    if redis_url is None:
        rd = EmbeddedRedis(tmp / "redis", persist=False)
        redis_url = rd.start()
    url = sqlalchemy_url(url)
    engine = db.init_engine(url, pool_size=40)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    migrate_to_head(url)
    db.init_engine(url, pool_size=40)
    jobs.init_redis(redis_url)
    register_domains()
    return BenchServers(url, redis_url, pg, rd)
